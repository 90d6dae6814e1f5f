"""Early exits for ALBERT classifiers: a classifier after every layer step, and the rules that stop.

ALBERT runs one shared layer ``num_hidden_layers`` times, so an input that is already decided
after a few steps can stop there: the work skipped is whole layer steps, and a program that runs
one step can be called again without packing anything twice. The pieces:

- ``ExitHeads``: for every layer step but the last, a head of the model's own form (pooler
  ``H -> H`` + tanh on the [CLS] state, then ``H -> num_labels``). The last step's head is the
  model's own pooler and classifier, so full depth is the model, unchanged.
- ``exit_rules.ExitRule``: when to stop (patience or confidence; torch-free, as the runtime and
  the bundle readers use it).
- ``train_exits``: trains the heads on a frozen model, distilled from its final classifier
  (soft targets at temperature T) and, where labels are given, from the labels. The model's own
  weights are not touched: its ``model.safetensors`` and full-depth outputs stay exactly what
  they were, and transformers keeps loading it.
- ``save_exits`` / ``load_exits``: the heads live beside the checkpoint in ``exits.safetensors``
  (tensors ``heads.{i}.dense.*`` and ``heads.{i}.classifier.*``, the head after layer step
  i + 1 for i = 0..L-2, and metadata: format, hidden size, labels, steps, and the rule the
  training recommended).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from albert_edge._io import atomic_write
from albert_edge.errors import ExitError
from albert_edge.exit_rules import ExitRule

EXITS_FILE = "exits.safetensors"
EXITS_FORMAT = "albert-edge-exits/1"


class ExitHead(nn.Module):
    """The sequence classifier's form on one step's [CLS] state: tanh(dense(h)) -> classifier."""

    def __init__(self, hidden_size: int, num_labels: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, cls_state: Tensor) -> Tensor:
        return self.classifier(torch.tanh(self.dense(cls_state)))


class ExitHeads(nn.Module):
    """``heads[k - 1]`` classifies the [CLS] state after layer step k, for k = 1..num_steps-1."""

    def __init__(self, hidden_size: int, num_labels: int, num_steps: int):
        super().__init__()
        if num_steps < 2:
            raise ExitError(f"exit heads need a model of at least 2 layer steps, this one has {num_steps}")
        self.hidden_size, self.num_labels, self.num_steps = hidden_size, num_labels, num_steps
        self.heads = nn.ModuleList(ExitHead(hidden_size, num_labels) for _ in range(num_steps - 1))
        self.recommended: ExitRule | None = None

    @classmethod
    def for_model(cls, model: nn.Module) -> ExitHeads:
        """Heads for ``model`` (an AlbertForSequenceClassification), each started as a copy of its
        own pooler and classifier."""
        _check_classifier(model)
        c = model.config
        exits = cls(c.hidden_size, c.num_labels, c.num_hidden_layers)
        with torch.no_grad():
            for head in exits.heads:
                head.dense.load_state_dict(model.albert.pooler.state_dict())
                head.classifier.load_state_dict(model.classifier.state_dict())
        return exits

    def check_fits(self, model: nn.Module, where: str = EXITS_FILE) -> None:
        _check_classifier(model)
        c = model.config
        if (self.hidden_size, self.num_labels, self.num_steps) != (c.hidden_size, c.num_labels, c.num_hidden_layers):
            raise ExitError(
                f"{where}: exit heads for hidden size {self.hidden_size}, {self.num_labels} labels and "
                f"{self.num_steps} layer steps do not fit this model (hidden size {c.hidden_size}, "
                f"{c.num_labels} labels, {c.num_hidden_layers} layer steps)"
            )


def _check_classifier(model: nn.Module) -> None:
    from albert_edge.model import AlbertForSequenceClassification

    if not isinstance(model, AlbertForSequenceClassification):
        raise ExitError(f"early exits are for sequence classifiers (AlbertForSequenceClassification), "
                        f"not {type(model).__name__}")
    if model.config.num_labels < 2:
        raise ExitError("early exits need a classifier with at least 2 labels (regression has no prediction to agree on)")


def final_logits(model: nn.Module, hidden: Tensor) -> Tensor:
    """The model's own head on the last hidden state (the classifier's forward, dropout aside)."""
    return model.classifier(model.dropout(model.albert.pool(hidden)))


@torch.no_grad()
def step_logits(model: nn.Module, exits: ExitHeads, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
    """Every step's logits, (num_steps, B, num_labels); the last row is the model's own output."""
    states = model.albert.encode_steps(input_ids, attention_mask, token_type_ids)
    rows = [head(h[:, 0]) for head, h in zip(exits.heads, states)]
    rows.append(final_logits(model, states[-1]))
    return torch.stack(rows)


def encode_batches(tokenizer: Any, texts: Sequence[str], max_seq_len: int,
                   batch_size: int = 64) -> list[tuple[Tensor, Tensor, Tensor]]:
    """``texts`` as padded (input_ids, attention_mask, token_type_ids) batches, cut to ``max_seq_len``."""
    out = []
    for i in range(0, len(texts), batch_size):
        encs = tokenizer.encode_batch(list(texts[i:i + batch_size]), max_length=max_seq_len)
        out.append(tuple(torch.tensor([getattr(e, f) for e in encs])
                         for f in ("input_ids", "attention_mask", "token_type_ids")))
    return out


def _cls_features(model: nn.Module, batches: Sequence[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """The [CLS] state after every step but the last, (L-1, N, H), and the final logits (N, C)."""
    feats, finals = [], []
    with torch.no_grad():
        for ids, mask, types in batches:
            states = model.albert.encode_steps(ids, mask, types)
            feats.append(torch.stack([h[:, 0] for h in states[:-1]]))
            finals.append(final_logits(model, states[-1]))
    return torch.cat(feats, dim=1), torch.cat(finals)


def train_exits(
    model: nn.Module,
    batches: Sequence[tuple[Tensor, Tensor, Tensor]],
    labels: Sequence[int] | None = None,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    temperature: float = 2.0,
    alpha: float = 0.5,
    seed: int = 0,
) -> ExitHeads:
    """Exit heads for ``model`` (left untouched), trained on its [CLS] states over ``batches``
    (input_ids, attention_mask, token_type_ids). The loss per head is
    ``alpha * CE(labels) + (1 - alpha) * T^2 * KL(final classifier at T || head at T)``, averaged
    over heads; without labels it is the distillation term alone. The backbone is frozen, so its
    states are computed once and each epoch costs only the heads."""
    if not 0.0 <= alpha <= 1.0 or not temperature > 0:
        raise ExitError(f"alpha must be in [0, 1] and temperature > 0, got alpha={alpha}, temperature={temperature}")
    if epochs < 1 or batch_size < 1:
        raise ExitError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    model.eval()
    exits = ExitHeads.for_model(model)
    feats, finals = _cls_features(model, batches)
    N = finals.shape[0]
    if N == 0:
        raise ExitError("no training inputs for the exit heads")
    y = None
    if labels is not None:
        y = torch.tensor(list(labels), dtype=torch.long)
        if y.shape[0] != N:
            raise ExitError(f"{y.shape[0]} labels for {N} inputs")
        if alpha == 0.0:
            y = None
    w_label = alpha if y is not None else 0.0
    soft = F.softmax(finals / temperature, dim=-1)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(exits.parameters(), lr=lr, weight_decay=0.01)
    drop = nn.Dropout(model.dropout.p if isinstance(model.dropout, nn.Dropout) else 0.0)
    exits.train()
    order = list(range(N))
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, N, batch_size):
            idx = torch.tensor(order[start:start + batch_size])
            loss = torch.zeros(())
            for k, head in enumerate(exits.heads):
                logits = head(drop(feats[k, idx]))
                kd = F.kl_div(F.log_softmax(logits / temperature, -1), soft[idx], reduction="batchmean")
                term = (1.0 - w_label) * temperature**2 * kd
                if y is not None:
                    term = term + w_label * F.cross_entropy(logits, y[idx])
                loss = loss + term
            opt.zero_grad()
            (loss / len(exits.heads)).backward()
            opt.step()
    exits.eval()
    return exits


def save_exits(exits: ExitHeads, directory: str | Path, labels: Sequence[str] = ()) -> Path:
    """Write ``exits.safetensors`` into a checkpoint folder (atomically); returns its path."""
    from safetensors.torch import save_file

    path = Path(directory) / EXITS_FILE
    meta = {"format": EXITS_FORMAT, "hidden_size": str(exits.hidden_size), "num_labels": str(exits.num_labels),
            "num_steps": str(exits.num_steps), "form": "pooler+classifier",
            "labels": json.dumps(list(labels))}
    if exits.recommended is not None:
        meta["recommended"] = json.dumps(exits.recommended.to_dict())
    state = {k: v.detach().contiguous() for k, v in exits.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=meta))
    return path


def has_exits(directory: str | Path) -> bool:
    return (Path(directory) / EXITS_FILE).is_file()


def load_exits(directory: str | Path, model: nn.Module | None = None) -> ExitHeads:
    """The exit heads saved beside a checkpoint (checked against ``model`` when given)."""
    from safetensors import safe_open

    path = Path(directory) / EXITS_FILE
    if not path.is_file():
        raise ExitError(f"{path}: no exit heads here; train them with `albert-edge finetune --exits` "
                        "or albert_edge.exits.train_exits")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise ExitError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != EXITS_FORMAT:
        raise ExitError(f"{path}: metadata format is {meta.get('format')!r}, expected {EXITS_FORMAT!r}")
    try:
        hidden, num_labels, steps = (int(meta[k]) for k in ("hidden_size", "num_labels", "num_steps"))
    except (KeyError, ValueError):
        raise ExitError(f"{path}: metadata needs integer hidden_size, num_labels and num_steps, got {meta}") from None
    exits = ExitHeads(hidden, num_labels, steps)
    expected = set(exits.state_dict())
    if set(state) != expected:
        raise ExitError(f"{path}: tensors {sorted(set(state) ^ expected)[:4]} are missing or unexpected "
                        f"(expected heads.0..{steps - 2}.dense/classifier weight and bias)")
    for k, v in exits.state_dict().items():
        if tuple(state[k].shape) != tuple(v.shape) or not state[k].is_floating_point():
            raise ExitError(f"{path}: tensor {k} has shape {tuple(state[k].shape)} {state[k].dtype}, "
                            f"expected {tuple(v.shape)} float")
        if not torch.isfinite(state[k]).all():
            raise ExitError(f"{path}: tensor {k} holds non-finite values")
    exits.load_state_dict({k: v.float() for k, v in state.items()})
    if "recommended" in meta:
        try:
            exits.recommended = ExitRule.from_dict(json.loads(meta["recommended"]), f"{path}: recommended")
        except json.JSONDecodeError:
            raise ExitError(f"{path}: metadata 'recommended' is not JSON") from None
    if model is not None:
        exits.check_fits(model, str(path))
    return exits.eval()
