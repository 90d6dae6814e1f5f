"""A pretrained extractive-QA teacher for distillation, at build time only.

:func:`finetune_qa_teacher` puts a start/end head on a Hugging Face ``BertModel`` checkpoint (by
default the installed all-MiniLM-L6-v2, ``make teacher``) and fine-tunes it on questions
(``qa_data.QAExample``) in windows of its own WordPiece tokens. :func:`distillation_features`
then labels the *student's* windows (``qa_data.training_features``) with the teacher's start
and end distributions, carried over through character offsets, so nothing depends on the two
tokenizers agreeing:

- the teacher reads the question and the window's stretch of context (the characters the
  student window covers);
- its start (end) probability of a context token goes to the student token holding that token's
  first (last) character, the rule ``training_features`` labels answers with; the teacher's
  ``[CLS]`` (no answer in this window) goes to the student's ``[CLS]``;
- each student position gets ``log`` of its summed probability (``LOG_ZERO`` where nothing
  lands): the teacher's distribution over the student's positions, as logits the training
  objective softens with its temperature.

transformers is imported lazily (a build- and test-time dependency, not a runtime one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from albert_edge._io import atomic_write, atomic_write_json, replaced_dir
from albert_edge.qa import QASettings, make_windows
from albert_edge.qa_data import QAExample, QAFeature
from albert_edge.teacher import TeacherError, adamw_warmup_decay, default_teacher_dir, load_teacher_encoder
from albert_edge.tokenizer import AlbertTokenizer

log = logging.getLogger(__name__)

LOG_ZERO = -1e4  # a student position the teacher gives no probability
HEAD_FILE = "span_head.safetensors"
SETTINGS_FILE = "qa_teacher.json"


class SpanHead(nn.Module):
    """``BertModel`` -> linear (H, 2) -> start and end logits, each (B, S)."""

    def __init__(self, encoder: nn.Module, hidden_size: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(hidden_size, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        start, end = self.head(states).unbind(-1)
        return start, end


@dataclass
class QATeacher:
    """A fine-tuned QA teacher: the model, its (fast) tokenizer and window settings."""

    model: SpanHead
    tokenizer: Any
    max_seq_len: int
    stride: int


def _encode(tokenizer: Any, questions: Sequence[str], contexts: Sequence[str], max_seq_len: int,
            stride: int) -> Any:
    """Windows of (question, context) in the teacher's tokens, with offsets and the example each
    window came from (``overflow_to_sample_mapping``)."""
    return tokenizer(list(questions), list(contexts), truncation="only_second", max_length=max_seq_len,
                     stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                     padding="longest", return_tensors="pt")


def _context_tokens(enc: Any, i: int) -> list[int]:
    return [j for j, s in enumerate(enc.sequence_ids(i)) if s == 1]


def _labels(enc: Any, examples: Sequence[QAExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Start/end token of the first answer in each teacher window, or 0 ([CLS]) where the window
    does not hold the whole answer."""
    starts, ends = [], []
    for i, k in enumerate(enc["overflow_to_sample_mapping"].tolist()):
        s = e = 0
        if examples[k].answers:
            text, a = examples[k].answers[0]
            b = a + len(text)
            ctx, off = _context_tokens(enc, i), enc["offset_mapping"][i].tolist()
            if ctx and off[ctx[0]][0] <= a and off[ctx[-1]][1] >= b:
                s = next(j for j in ctx if off[j][1] > a)
                e = next(j for j in reversed(ctx) if off[j][0] < b)
        starts.append(s)
        ends.append(e)
    return torch.tensor(starts), torch.tensor(ends)


def _check_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TeacherError("the QA teacher needs a fast tokenizer (tokenizer.json) for character offsets")


def finetune_qa_teacher(
    examples: Sequence[QAExample],
    *,
    teacher_dir: str | Path | None = None,
    steps: int = 1000,
    batch_size: int = 16,
    lr: float = 5e-5,
    warmup_steps: int = 100,
    max_seq_len: int | None = None,
    stride: int | None = None,
    seed: int = 0,
) -> QATeacher:
    """Fine-tune the teacher (all weights, AdamW, linear warm-up then decay) on `examples`: each
    step takes `batch_size` questions and trains on all their windows (cross-entropy of start and
    end, as ``training.QuestionAnsweringObjective``); deterministic for a seed on one machine.
    Windows of `max_seq_len` tokens (default 256, or the teacher's maximum if smaller) overlapping
    by `stride` (default a quarter of the window)."""
    if len(examples) < batch_size:
        raise TeacherError(f"{len(examples)} questions; need at least batch_size {batch_size}")
    torch.manual_seed(seed)
    encoder, tokenizer = load_teacher_encoder(teacher_dir or default_teacher_dir())
    _check_fast(tokenizer)
    if max_seq_len is None:
        max_seq_len = min(256, encoder.config.max_position_embeddings)
    stride = max_seq_len // 4 if stride is None else stride
    if max_seq_len > encoder.config.max_position_embeddings:
        raise TeacherError(f"max_seq_len {max_seq_len} exceeds the teacher's max_position_embeddings "
                           f"{encoder.config.max_position_embeddings}")
    model = SpanHead(encoder, encoder.config.hidden_size)
    opt, sched = adamw_warmup_decay(model, lr, warmup_steps, steps)
    rng, order, t0, seen = random.Random(seed), [], time.time(), 0
    model.train()
    for step in range(steps):
        if len(order) < batch_size:
            order = list(range(len(examples)))
            rng.shuffle(order)
        batch = [examples[order.pop()] for _ in range(batch_size)]
        enc = _encode(tokenizer, [e.question for e in batch], [e.context for e in batch], max_seq_len, stride)
        s, e = _labels(enc, batch)
        start, end = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        pad = enc["attention_mask"] == 0
        start, end = start.masked_fill(pad, LOG_ZERO), end.masked_fill(pad, LOG_ZERO)
        loss = (nn.functional.cross_entropy(start, s) + nn.functional.cross_entropy(end, e)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seen += len(s)
        if step % 50 == 0 or step == steps - 1:
            log.info("QA teacher step %d/%d loss %.4f (%.1f windows/s)", step + 1, steps, loss.item(),
                     seen / (time.time() - t0))
    model.eval()
    return QATeacher(model, tokenizer, max_seq_len, stride)


def _allowed(enc: Any, i: int) -> list[int]:
    """[CLS] and the context tokens of teacher window i: where an answer may start or end."""
    return [0, *_context_tokens(enc, i)]


@torch.no_grad()
def teacher_answers(teacher: QATeacher, examples: Sequence[QAExample], *, max_answer_len: int = 30,
                    batch_size: int = 16) -> list[str]:
    """The teacher's best answer to each question: the span (start <= end, at most
    `max_answer_len` teacher tokens, inside the context) of highest start + end logit over all its
    windows. For reporting the teacher's own EM/F1 next to the student's."""
    teacher.model.eval()
    answers = []
    for b in range(0, len(examples), batch_size):
        batch = examples[b:b + batch_size]
        enc = _encode(teacher.tokenizer, [e.question for e in batch], [e.context for e in batch],
                      teacher.max_seq_len, teacher.stride)
        start, end = teacher.model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        best: dict[int, tuple[float, str]] = {}
        for i, k in enumerate(enc["overflow_to_sample_mapping"].tolist()):
            ctx, off = _context_tokens(enc, i), enc["offset_mapping"][i].tolist()
            if not ctx:
                continue
            st, en = start[i, ctx[0]:ctx[-1] + 1], end[i, ctx[0]:ctx[-1] + 1]
            n = len(st)
            score = st[:, None] + en[None, :]  # (n, n): start row, end column
            valid = torch.ones(n, n, dtype=torch.bool).triu() & ~torch.ones(n, n, dtype=torch.bool).triu(max_answer_len)
            score = score.masked_fill(~valid, -math.inf)
            flat = int(score.argmax())
            s, e = ctx[0] + flat // n, ctx[0] + flat % n
            value = float(score.flatten()[flat])
            if k not in best or value > best[k][0]:
                best[k] = (value, batch[k].context[off[s][0]:off[e][1]])
        answers += [best.get(k, (0.0, ""))[1] for k in range(len(batch))]
    return answers


def _spread(probs: list[float], enc: Any, i: int, student_offsets: list[tuple[int, int]], student_ctx: list[int],
            c0: int, length: int, which: str) -> list[float]:
    """Teacher window i's start ("start") or end ("end") probabilities onto the student window's
    positions (summed), as log-probabilities (LOG_ZERO where nothing lands)."""
    mass = [0.0] * length
    mass[0] += probs[0]  # [CLS]: no answer in this window
    off = enc["offset_mapping"][i].tolist()
    for j in _context_tokens(enc, i):
        a, b = off[j][0] + c0, off[j][1] + c0
        if which == "start":
            target = next((p for p in student_ctx if student_offsets[p][1] > a), student_ctx[-1])
        else:
            target = next((p for p in reversed(student_ctx) if student_offsets[p][0] < b), student_ctx[0])
        mass[target] += probs[j]
    return [math.log(m) if m > 0 else LOG_ZERO for m in mass]


@torch.no_grad()
def distillation_features(
    teacher: QATeacher,
    examples: Sequence[QAExample],
    tokenizer: AlbertTokenizer,
    settings: QASettings,
    features: Sequence[QAFeature],
    *,
    batch_size: int = 32,
) -> list[QAFeature]:
    """`features` (``qa_data.training_features(examples, tokenizer, settings)``, in order) with
    the teacher's start/end distributions over each window's positions (module docstring).

    A window whose context the teacher cannot read whole (more than its ``max_seq_len`` tokens)
    keeps its hard label as the teacher's distribution, and a count is logged."""
    teacher.model.eval()
    jobs: list[tuple[str, str, int, list[tuple[int, int]], list[int], int]] = []
    for e in examples:
        for w in make_windows(tokenizer, e.question, e.context, settings):
            ctx = [i for i, q in enumerate(w.sequence_ids) if q == 1]
            c0, c1 = w.offsets[ctx[0]][0], w.offsets[ctx[-1]][1]
            jobs.append((e.question, e.context[c0:c1], c0, list(w.offsets), ctx, len(w.input_ids)))
    if len(jobs) != len(features):
        raise TeacherError(f"{len(jobs)} windows from the examples but {len(features)} features; "
                           "pass training_features(examples, tokenizer, settings) for the same examples")
    out: list[QAFeature] = []
    clipped, t0 = 0, time.time()
    for b in range(0, len(jobs), batch_size):
        chunk = jobs[b:b + batch_size]
        enc = teacher.tokenizer([j[0] for j in chunk], [j[1] for j in chunk], truncation="only_second",
                                max_length=teacher.max_seq_len, return_offsets_mapping=True,
                                return_overflowing_tokens=True, stride=0, padding="longest", return_tensors="pt")
        start, end = teacher.model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        first: dict[int, int] = {}
        for i, k in enumerate(enc["overflow_to_sample_mapping"].tolist()):
            first.setdefault(k, i)
        counts = enc["overflow_to_sample_mapping"].bincount(minlength=len(chunk)).tolist()
        for k, (_, _, c0, offsets, ctx, length) in enumerate(chunk):
            feat = features[b + k]
            if counts[k] != 1:
                clipped += 1
                hard = [[LOG_ZERO] * length for _ in range(2)]
                hard[0][feat.start_position] = hard[1][feat.end_position] = 0.0
                out.append(dataclasses.replace(feat, teacher_start=tuple(hard[0]), teacher_end=tuple(hard[1])))
                continue
            i = first[k]
            allowed = torch.tensor(_allowed(enc, i))
            ps, pe = (torch.full_like(x[i], -math.inf).index_copy(0, allowed, x[i][allowed]).softmax(-1).tolist()
                      for x in (start, end))
            out.append(dataclasses.replace(
                feat, teacher_start=tuple(_spread(ps, enc, i, offsets, ctx, c0, length, "start")),
                teacher_end=tuple(_spread(pe, enc, i, offsets, ctx, c0, length, "end"))))
        if (b // batch_size) % 200 == 0:
            log.info("QA teacher targets: %d/%d windows (%.1f/s)", b + len(chunk), len(jobs),
                     (b + len(chunk)) / (time.time() - t0))
    if clipped:
        log.info("QA teacher targets: %d of %d windows longer than the teacher's %d tokens kept their hard labels",
                 clipped, len(jobs), teacher.max_seq_len)
    return out



def save_qa_teacher(teacher: QATeacher, path: str | Path) -> Path:
    """The teacher as a folder (replaced whole, atomically): the encoder and tokenizer as a Hugging
    Face checkpoint, the start/end head in span_head.safetensors, its window settings in
    qa_teacher.json."""
    path = Path(path)
    with replaced_dir(path) as tmp:
        teacher.model.encoder.save_pretrained(tmp)
        teacher.tokenizer.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in teacher.model.head.state_dict().items()}, str(tmp / HEAD_FILE))
        atomic_write_json(tmp / SETTINGS_FILE, {"max_seq_len": teacher.max_seq_len, "stride": teacher.stride})
    return path


def load_qa_teacher(path: str | Path) -> QATeacher:
    """A teacher folder written by :func:`save_qa_teacher`."""
    path = Path(path)
    for name in (HEAD_FILE, SETTINGS_FILE):
        if not (path / name).is_file():
            raise TeacherError(f"{path} is not a QA teacher folder: it has no {name} (save_qa_teacher writes one)")
    encoder, tokenizer = load_teacher_encoder(path)
    _check_fast(tokenizer)
    model = SpanHead(encoder, encoder.config.hidden_size)
    model.head.load_state_dict(load_file(str(path / HEAD_FILE)))
    model.eval()
    settings = json.loads((path / SETTINGS_FILE).read_text())
    return QATeacher(model, tokenizer, int(settings["max_seq_len"]), int(settings["stride"]))


def save_targets(path: str | Path, features: Sequence[QAFeature]) -> Path:
    """The teacher's start/end log-probabilities of `features` (from :func:`distillation_features`)
    in one safetensors file (float16, padded with LOG_ZERO), written atomically."""
    n, width = len(features), max((len(f.input_ids) for f in features), default=0)
    tensors = {k: torch.full((n, width), LOG_ZERO, dtype=torch.float16) for k in ("teacher_start", "teacher_end")}
    for i, f in enumerate(features):
        if f.teacher_start is None or f.teacher_end is None:
            raise TeacherError(f"features[{i}] has no teacher targets")
        tensors["teacher_start"][i, :len(f.input_ids)] = torch.tensor(f.teacher_start)
        tensors["teacher_end"][i, :len(f.input_ids)] = torch.tensor(f.teacher_end)
    tensors["lengths"] = torch.tensor([len(f.input_ids) for f in features], dtype=torch.int32)
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp)))
    return Path(path)


def with_targets(path: str | Path, features: Sequence[QAFeature]) -> list[QAFeature]:
    """`features` (the same windows, e.g. ``training_features`` again) with the targets that
    :func:`save_targets` wrote; a file for other windows is refused."""
    t = load_file(str(path))
    lengths = t["lengths"].tolist()
    if lengths != [len(f.input_ids) for f in features]:
        raise TeacherError(f"{path} holds targets for {len(lengths)} windows that are not these "
                           f"{len(features)} windows; make them again from the same questions and settings")
    start, end = t["teacher_start"].float(), t["teacher_end"].float()
    return [dataclasses.replace(f, teacher_start=tuple(start[i, :n].tolist()), teacher_end=tuple(end[i, :n].tolist()))
            for i, (f, n) in enumerate(zip(features, lengths))]
