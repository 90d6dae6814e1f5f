"""Adaptive-depth programs: the pieces of an early-exit classifier as methods of one ``.pte``.

An app (or ``runtime.Program.run_adaptive``) runs them in a loop::

    h = embed(input_ids, token_type_ids)              # (1, S, H)
    for k in 1..num_steps:
        h = layer(h, attention_mask)                  # the shared layer, step k
        logits = exit_k(h)                            # (1, num_labels)
        if k == num_steps or rule.stops(logits so far): break

The program also keeps ``forward`` (full depth in one call, the classifier's usual program), so
everything that runs a plain bundle runs this one. It also holds ``first_step`` and ``step_k``
(the same loop in one call per step; ``fused_steps=False`` leaves them out). ``layer`` is one
method whatever the depth, and every method shares the same constants: ALBERT's shared layer is
stored once. ``exit_{num_steps}`` is the model's own pooler
and classifier, so full depth through the loop is the model; in fp32 it gives forward's logits
bit for bit (tested).

Constant methods: the bounds every program has, plus ``get_num_steps`` and ``get_num_labels``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import Tensor, nn

from albert_edge.errors import ExitError
from albert_edge.exits import ExitHeads
from albert_edge.lowering import (
    LoweredProgram,
    check_max_seq_len,
    delegation_report,
    dynamic_shapes,
    program_constants,
    to_edge,
)
from albert_edge.model import example_inputs as make_example_inputs
from albert_edge.quantize import quantize, register_quantized_ops
from albert_edge.recipes import Recipe

log = logging.getLogger(__name__)

STEP_METHODS = ("embed", "layer")


def exit_method(step: int) -> str:
    """The method that classifies the hidden state after layer step ``step`` (1-based)."""
    return f"exit_{step}"


class EmbedPiece(nn.Module):
    """(input_ids, token_type_ids) -> the first hidden state (1, S, H)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.config = model.config
        self.embeddings = model.albert.embeddings
        self.embedding_hidden_mapping_in = model.albert.encoder.embedding_hidden_mapping_in

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        return self.embedding_hidden_mapping_in(self.embeddings(input_ids, token_type_ids))


class LayerPiece(nn.Module):
    """(hidden (1, S, H), attention_mask (1, S) int64) -> hidden: one step of the shared layer,
    under the additive mask ``AlbertModel.additive_mask`` builds (the same operations)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.config = model.config
        self.group = model.albert.encoder.albert_layer_groups[0]

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        keep = attention_mask[:, None, :].to(hidden.dtype)
        return self.group(hidden, (1.0 - keep) * torch.finfo(hidden.dtype).min)


class ExitPiece(nn.Module):
    """hidden (1, S, H) -> logits (1, num_labels): tanh(dense([CLS])) -> classifier."""

    def __init__(self, config: Any, dense: nn.Linear, classifier: nn.Linear):
        super().__init__()
        self.config = config
        self.dense = dense
        self.classifier = classifier

    def forward(self, hidden: Tensor) -> Tensor:
        return self.classifier(torch.tanh(self.dense(hidden[:, 0])))


class FirstStepPiece(nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> (hidden after step 1, exit_1's logits): embed,
    layer and exit_1 in one call."""

    def __init__(self, embed: EmbedPiece, layer: LayerPiece, exit_: ExitPiece):
        super().__init__()
        self.config = embed.config
        self.embed, self.layer, self.exit = embed, layer, exit_

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> tuple[Tensor, Tensor]:
        h = self.layer(self.embed(input_ids, token_type_ids), attention_mask)
        return h, self.exit(h)


class StepPiece(nn.Module):
    """(hidden, attention_mask) -> (next hidden, this step's exit logits): layer and exit_k in one call."""

    def __init__(self, layer: LayerPiece, exit_: ExitPiece):
        super().__init__()
        self.config = layer.config
        self.layer, self.exit = layer, exit_

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.layer(hidden, attention_mask)
        return h, self.exit(h)


def step_method(step: int) -> str:
    """The fused method of layer step ``step`` (1-based): ``first_step``, then ``step_2`` .. ``step_L``."""
    return "first_step" if step == 1 else f"step_{step}"


def pieces(model: nn.Module, exits: ExitHeads, fused_steps: bool = True) -> dict[str, tuple[nn.Module, tuple[str, ...]]]:
    """The methods of an adaptive program (besides forward): name -> (module, input names)."""
    exits.check_fits(model, "exit heads")
    if model.config.num_hidden_groups != 1:
        raise ExitError(f"adaptive programs need one shared layer group (num_hidden_groups=1); this model has "
                        f"{model.config.num_hidden_groups}, so a layer step is not one method")
    L = model.config.num_hidden_layers
    out: dict[str, tuple[nn.Module, tuple[str, ...]]] = {
        "embed": (EmbedPiece(model), ("input_ids", "token_type_ids")),
        "layer": (LayerPiece(model), ("hidden", "attention_mask")),
    }
    for k, head in enumerate(exits.heads, start=1):
        out[exit_method(k)] = (ExitPiece(model.config, head.dense, head.classifier), ("hidden",))
    out[exit_method(L)] = (ExitPiece(model.config, model.albert.pooler, model.classifier), ("hidden",))
    # The same loop in one call per step: each call costs about 7 us of fixed overhead in Python,
    # a visible share of a small model's step on short inputs. The step methods share the
    # layer's and heads' constants with the methods above (stored once; default model int8:
    # 2.52 MB against 2.47 MB without them).
    if not fused_steps:
        return out
    embed, layer = out["embed"][0], out["layer"][0]
    out[step_method(1)] = (FirstStepPiece(embed, layer, out[exit_method(1)][0]),
                           ("input_ids", "attention_mask", "token_type_ids"))
    for k in range(2, L + 1):
        out[step_method(k)] = (StepPiece(layer, out[exit_method(k)][0]), ("hidden", "attention_mask"))
    return out


def _examples(config: Any, seq: int) -> dict[str, Tensor]:
    ids, mask, types = make_example_inputs(config, seq)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
            "hidden": torch.randn(1, seq, config.hidden_size, generator=torch.Generator().manual_seed(0))}


def export_adaptive_program(
    model: nn.Module,
    exits: ExitHeads,
    recipe: Recipe,
    *,
    max_seq_len: int = 128,
    dynamic: bool = True,
    calibration: list[tuple[Tensor, ...]] | None = None,
    fused_steps: bool = True,
) -> LoweredProgram:
    """Quantize (copies), export and lower ``forward`` and the loop's methods into one program.

    fused_steps: also write ``first_step`` (embed, layer and exit_1) and ``step_k`` (layer and
    exit_k), the same loop in one call per step, which the runtime then uses (measured on the
    default model's int8 program, 2 threads: 0.66x ``forward``'s latency at the recommended rule
    instead of 0.80x with three calls per step; 2% more file, the constants being shared)."""
    config = model.config
    check_max_seq_len(config, max_seq_len)
    start = time.perf_counter()
    register_quantized_ops()
    model = model.eval()
    seq = min(max_seq_len, 16) if dynamic else max_seq_len
    examples = _examples(config, seq)
    full_example = tuple(examples[n] for n in ("input_ids", "attention_mask", "token_type_ids"))
    seq_dim = torch.export.Dim("seq", min=1, max=max_seq_len) if dynamic else None
    programs = {}
    full_shapes = dynamic_shapes(max_seq_len) if dynamic else None
    q = quantize(model, recipe, calibration or [full_example], dynamic_shapes=full_shapes)
    with torch.no_grad():
        programs["forward"] = torch.export.export(q, full_example, dynamic_shapes=full_shapes)
    for name, (piece, inputs) in pieces(model, exits, fused_steps).items():
        example = tuple(examples[n] for n in inputs)
        shapes = tuple({1: seq_dim} for _ in inputs) if dynamic else None
        qp = quantize(piece, recipe, [example], dynamic_shapes=shapes)
        with torch.no_grad():
            programs[name] = torch.export.export(qp, example, dynamic_shapes=shapes)
    constants = {**program_constants(config, max_seq_len, dynamic), "get_num_steps": config.num_hidden_layers,
                 "get_num_labels": config.num_labels}
    edge = to_edge(programs, constants)
    report = delegation_report(edge.exported_program("forward"))
    reports = {name: delegation_report(edge.exported_program(name)) for name in programs if name != "forward"}
    buffer = edge.to_executorch().buffer
    seconds = time.perf_counter() - start
    log.info("lowered adaptive %s: %d bytes, %d methods, %.1f s", recipe.name, len(buffer), len(programs), seconds)
    return LoweredProgram(buffer, recipe, max_seq_len, dynamic, report, seconds, method_reports=reports)
