"""Quantization for export: ``quantize(model, recipe, calibration) -> nn.Module``.

The float model is never mutated: it is deep-copied, put in delegate form (LayerNorm written as
ops XNNPACK takes, see ``XnnpackLayerNorm``), then quantized per the recipe:

- word embedding: ``QuantizedEmbedding``, which calls ExecuTorch's
  ``quantized_decomposed::embedding_byte`` / ``embedding_4bit`` directly (torchao's weight-only
  config leaves ``dequantize_affine`` in the graph, which ``to_executorch`` rejects);
- linears, int8: PT2E with ``XNNPACKQuantizer`` (dynamic, per-channel, symmetric): export,
  prepare, calibrate, convert; the result is a GraphModule;
- linears, int4: torchao ``Int8DynamicActivationIntxWeightConfig`` (int4 weights per group of
  ``group_size``, int8 dynamic activations), which XNNPACK lowers as its 8da4w GEMM.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from albert_edge._quiet import quiet_libraries
from albert_edge.config import GELU_ACTIVATIONS
from albert_edge.recipes import GELU_FORMS, Recipe

log = logging.getLogger(__name__)
quiet_libraries()  # before anything here imports torchao or ExecuTorch


def register_quantized_ops() -> None:
    """Make ExecuTorch's quantized embedding ops and their out-variants known to torch.

    Needed before exporting a program that uses them and before loading one in Python.
    """
    import executorch.exir.passes._quant_patterns_and_replacements  # noqa: F401  (defines the ops)
    import executorch.kernels.quantized  # noqa: F401  (loads the out-variant library)


class XnnpackLayerNorm(nn.Module):
    """LayerNorm over the last dim, written as ops XNNPACK delegates under a dynamic length.

    XNNPACK has no layer-norm op and its mean only reduces the two innermost dims of a 4-D
    tensor, so (B, S, H) is viewed as (B, S, H, 1). Holds the original weight and bias.
    """

    def __init__(self, ln: nn.LayerNorm):
        super().__init__()
        self.weight, self.bias, self.eps = ln.weight, ln.bias, ln.eps

    def forward(self, x: Tensor) -> Tensor:
        B, H = x.shape[0], x.shape[-1]
        x4 = x.reshape(B, -1, H, 1)  # (B, S, H, 1)
        centered = x4 - x4.mean(dim=(2, 3), keepdim=True)
        var = (centered * centered).mean(dim=(2, 3), keepdim=True)  # (B, S, 1, 1)
        y = (centered * torch.rsqrt(var + self.eps)).reshape(B, -1, H)  # (B, S, H)
        return y * self.weight + self.bias


class QuantizedEmbedding(nn.Module):
    """A symmetric per-row (int8) or per-group (int4, two values per byte) embedding table."""

    def __init__(self, weight: Tensor, bits: int = 8, group_size: int = 0):
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"embedding bits must be 4 or 8, got {bits}")
        V, E = weight.shape
        group = group_size or E
        if E % group or (bits == 4 and group % 2):
            raise ValueError(f"embedding width {E} is not divisible into groups of {group}")
        qmax = 2 ** (bits - 1) - 1
        w = weight.detach().float().reshape(V, E // group, group)  # (V, G, group)
        scales = (w.abs().amax(dim=-1) / qmax).clamp(min=1e-12)  # (V, G)
        q = torch.clamp(torch.round(w / scales[..., None]), -qmax - 1, qmax).to(torch.int8).reshape(V, E)
        self.bits = bits
        if bits == 4:  # pack: high nibble = even column, low nibble = odd column, offset by 8
            u = (q + 8).to(torch.uint8).reshape(V, E // 2, 2)
            q = (u[..., 0] * 16 + u[..., 1]).to(torch.uint8)  # (V, E/2)
        self.register_buffer("weight", q)
        self.register_buffer("scales", scales.squeeze(-1) if scales.shape[1] == 1 else scales)

    def forward(self, indices: Tensor) -> Tensor:
        """int64 indices (B, S) -> float (B, S, E)."""
        if self.bits == 8:
            return torch.ops.quantized_decomposed.embedding_byte.default(
                self.weight, self.scales, None, -128, 127, indices
            )
        return torch.ops.quantized_decomposed.embedding_4bit.default(self.weight, self.scales, None, -8, 7, indices)


def fold_attention_scale(model: nn.Module) -> None:
    """Multiply each attention's query projection by its 1/sqrt(head_dim) and set the scale to 1.

    The same scores (to fp32 rounding) without a multiply over every (head, S, S) score per layer
    step. A shared attention module is folded once, however many layer steps run it.
    """
    from albert_edge.model import AlbertAttention

    for module in {id(m): m for m in model.modules() if isinstance(m, AlbertAttention)}.values():
        if module.scale != 1.0:
            with torch.no_grad():
                module.query.weight.mul_(module.scale)
                if module.query.bias is not None:
                    module.query.bias.mul_(module.scale)
            module.scale = 1.0


def to_delegate_form(model: nn.Module, gelu: str = "exact") -> nn.Module:
    """Rewrite ``model`` in place for the XNNPACK delegate (an eval-mode copy); returns it.

    Every ``nn.LayerNorm`` becomes ``XnnpackLayerNorm`` (same parameters); every ``nn.Dropout``
    becomes ``nn.Identity`` (what it is in eval mode; exported, it would be a copy the delegate
    runs: three per layer step); the attention scale is folded into the query projection
    (``fold_attention_scale``). With ``gelu="xnnpack"``, GELU-family activations become
    ``F.gelu``, one XNNPACK op.
    """
    if gelu not in GELU_FORMS:
        raise ValueError(f"gelu must be one of {', '.join(GELU_FORMS)}, got {gelu!r}")
    for name, child in list(model.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.LayerNorm):
                setattr(child, attr, XnnpackLayerNorm(sub))
            elif isinstance(sub, nn.Dropout):
                setattr(child, attr, nn.Identity())
    fold_attention_scale(model)
    if gelu == "xnnpack" and model.config.hidden_act in GELU_ACTIVATIONS:
        for module in model.modules():
            if hasattr(module, "activation") and callable(module.activation):
                module.activation = F.gelu
    return model


def _quantize_word_embedding(model: nn.Module, recipe: Recipe) -> None:
    if recipe.embedding == "fp32":
        return
    # Wherever the embeddings sit: a model's ``albert.embeddings``, or an adaptive program's piece
    # (``embed`` has them at ``embeddings``, ``first_step`` at ``embed.embeddings``); a piece
    # without them (a layer step, an exit head) has none.
    tables = [m for m in model.modules() if isinstance(getattr(m, "word_embeddings", None), nn.Embedding)]
    if not tables:
        return
    register_quantized_ops()
    bits = {"int8": 8, "int4": 4}[recipe.embedding]
    for emb in tables:
        # The MLM decoder is tied to this table; it keeps its own float copy (a linear layer).
        emb.word_embeddings = QuantizedEmbedding(
            emb.word_embeddings.weight, bits, recipe.group_size if bits == 4 else 0
        )


def _pt2e_int8(model: nn.Module, calibration: Sequence[tuple[Tensor, ...]], dynamic_shapes) -> nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True)
    )
    graph = torch.export.export(model, calibration[0], dynamic_shapes=dynamic_shapes).module()
    prepared = prepare_pt2e(graph, quantizer)
    for inputs in calibration:  # dynamic activations: this only runs the observers' placeholders
        prepared(*inputs)
    return convert_pt2e(prepared)


def _torchao_8da4w(model: nn.Module, group_size: int) -> nn.Module:
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    def groupable(module: nn.Module, fqn: str) -> bool:
        keep = isinstance(module, nn.Linear) and module.in_features % group_size == 0
        if isinstance(module, nn.Linear) and not keep:
            log.info("int4: %s stays float (in_features %d not divisible by %d)", fqn, module.in_features, group_size)
        return keep

    config = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(group_size))
    quantize_(model, config, filter_fn=groupable)
    return model


def quantize(
    model: nn.Module,
    recipe: Recipe,
    calibration: Iterable[tuple[Tensor, ...]] | None = None,
    dynamic_shapes=None,
) -> nn.Module:
    """A quantized copy of ``model`` in delegate form, ready for ``lowering.lower``.

    calibration: model inputs to run through the observers (int8); default: one example.
    dynamic_shapes: as for ``torch.export`` (int8 exports the model to quantize it).
    The float ``model`` is left untouched.
    """
    from albert_edge.model import example_inputs

    q = to_delegate_form(copy.deepcopy(model), recipe.gelu).eval()
    _quantize_word_embedding(q, recipe)
    calibration = list(calibration) if calibration is not None else [example_inputs(model.config, 16)]
    if recipe.linear == "int8-dynamic":
        q = _pt2e_int8(q, calibration, dynamic_shapes)
    elif recipe.linear == "int4-8da4w":
        q = _torchao_8da4w(q, recipe.group_size)  # else "fp32" (Recipe checks its fields)
    q.config = model.config  # keep the config reachable on GraphModules too
    return q
