"""Extractive question answering: features (windows) in, start/end logits out, answers back.

Reference: transformers 4.57 ``pipelines/question_answering.py`` (fast-tokenizer path), which
tests/test_qa.py checks us against on random-weight models (tests/make_qa_pipeline_goldens.py):

1. Features. ``[CLS] question [SEP] window [SEP]``, the question cut to ``max_question_len``
   tokens, the context cut into windows of what fits in ``max_seq_len``, consecutive windows
   overlapping by ``doc_stride`` tokens (:meth:`AlbertTokenizer.encode_windows`). The pipeline's
   fast path does not cut the question, and fails when a long question leaves a window fewer
   context tokens than ``doc_stride``; we cut the question and use half a window as the stride
   there. Elsewhere the two agree.
2. Per window, tokens outside the context (question, ``[SEP]``, padding) get logit -10000 except
   ``[CLS]``; softmax of the start and end logits over the window; the ``[CLS]`` product is the
   window's no-answer probability, then ``[CLS]`` is zeroed.
3. Spans: ``score = p_start * p_end`` (the same order as ``start + end`` logits) for ``end >=
   start`` and ``end - start < max_answer_len``; the ``2 top_k + 10`` best per window, kept when
   both ends are context tokens; each widened to whole words (``align_to_words``) and sliced
   from the original context by the tokenizer's offsets.
4. Across windows: answers with the same text (ignoring case) are one answer whose score is the
   sum; sorted by score. With a ``no_answer_threshold`` t, the no-answer ``""`` (score: the lowest
   window no-answer probability) ranks above a span when ``log(p_null) - log(p_span) > t``;
   t = 0 is the pipeline's ``handle_impossible_answer=True``; None never answers "no answer".

Answers are ``{"answer", "start", "end", "score"}``: ``context[start:end] == answer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from albert_edge.errors import AlbertEdgeError
from albert_edge.tokenizer import AlbertTokenizer, Encoding, TokenizerError

__all__ = [
    "MAX_CONTEXT_CHARS",
    "QA_MAX_SEQ_LEN",
    "QAError",
    "QASettings",
    "answer_question",
    "answer_windows",
    "decode_answers",
    "make_windows",
]

# A context longer than this is refused: about 25,000 tokens, 200 windows of 384 at the usual
# stride, which is minutes on a phone. Split the document first.
MAX_CONTEXT_CHARS = 100_000
QA_MAX_SEQ_LEN = 384  # the usual SQuAD window, the default length of QA programs and settings
_MASKED = -10000.0  # the pipeline's logit for tokens that cannot be part of an answer


class QAError(AlbertEdgeError, ValueError):
    """A question, context or QA setting that cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class QASettings:
    """How questions and contexts become windows and logits become answers (the manifest's ``qa``).

    Defaults are the transformers pipeline's (``max_seq_len`` 384, stride 128, question 64 tokens,
    answers of at most 15 tokens, no "no answer").
    """

    max_seq_len: int = QA_MAX_SEQ_LEN
    doc_stride: int = 128  # tokens shared by consecutive windows of a long context
    max_question_len: int = 64  # question tokens kept
    max_answer_len: int = 15  # tokens in an answer
    no_answer_threshold: float | None = None  # None: always a span; 0.0: the pipeline's handle_impossible_answer
    align_to_words: bool = True  # widen answers to whole words, as the pipeline does

    def __post_init__(self) -> None:
        for name in ("max_seq_len", "doc_stride", "max_question_len", "max_answer_len"):
            value = getattr(self, name)
            low = 0 if name == "doc_stride" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise QAError(f"QA setting {name}={value!r}; accepted: an int >= {low}")
        if self.max_seq_len < 8:
            raise QAError(f"QA setting max_seq_len={self.max_seq_len}; accepted: an int >= 8")

        if self.doc_stride >= self.max_seq_len:
            raise QAError(
                f"QA setting doc_stride={self.doc_stride} must be smaller than max_seq_len={self.max_seq_len}"
            )
        t = self.no_answer_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
            raise QAError(f"QA setting no_answer_threshold={t!r}; accepted: null or a finite number")
        if not isinstance(self.align_to_words, bool):
            raise QAError(f"QA setting align_to_words={self.align_to_words!r}; accepted: true or false")

    def check_question_fits(self, where: str = "QA setting") -> QASettings:
        """Refuse a ``max_question_len`` that leaves no context token in a window (``[CLS]`` question
        ``[SEP]`` context ``[SEP]``). Checked where a value is set on purpose (a bundle's manifest,
        ``--max-question-len``, export); the dataclass default (64, the pipeline's) stays usable
        with short windows, where questions are short. Returns self."""
        if self.max_question_len > self.max_seq_len - 4:
            raise QAError(
                f"{where} max_question_len={self.max_question_len} leaves no context in a window of "
                f"max_seq_len={self.max_seq_len} ([CLS] question [SEP] context [SEP]); accepted: at most "
                f"{self.max_seq_len - 4}")
        return self

    @classmethod
    def for_length(cls, max_seq_len: int, **overrides: Any) -> QASettings:
        """Settings for programs of ``max_seq_len`` tokens: stride ``min(max_seq_len // 2, 128)``,
        question at most ``min(64, max_seq_len // 2)`` tokens (the pipeline's defaults)."""
        values: dict[str, Any] = {
            "max_seq_len": max_seq_len,
            "doc_stride": min(max_seq_len // 2, 128),
            "max_question_len": min(64, max_seq_len // 2),
        }
        return cls(**{**values, **overrides})

    @classmethod
    def for_positions(cls, max_position_embeddings: int, **overrides: Any) -> QASettings:
        """The default settings for a model of ``max_position_embeddings`` positions: windows of
        ``QA_MAX_SEQ_LEN`` tokens, or the model's maximum if smaller (see :meth:`for_length`)."""
        return cls.for_length(min(QA_MAX_SEQ_LEN, max_position_embeddings), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "qa") -> QASettings:
        """Read settings written by :meth:`to_dict`; unknown or missing fields are named."""
        if not isinstance(data, Mapping):
            raise QAError(f"{where} must be an object with {', '.join(f.name for f in fields(cls))}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise QAError(f"{where} has unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(names))}")
        missing = sorted(names - set(data))
        if missing:
            raise QAError(f"{where} lacks field(s) {', '.join(missing)}")
        try:
            return cls(**data).check_question_fits()
        except QAError as e:
            raise QAError(f"{where}: {e}") from None


def _check_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise QAError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise QAError(f"{name} is empty; give a non-blank {name}")
    return value


def make_windows(tokenizer: AlbertTokenizer, question: str, context: str, settings: QASettings) -> list[Encoding]:
    """The model inputs for ``question`` over ``context``: one :class:`Encoding` per window.

    Token type 0 is the question, 1 the context window; offsets of type-1 tokens index ``context``.
    """
    _check_text(question, "question")
    _check_text(context, "context")
    if len(context) > MAX_CONTEXT_CHARS:
        raise QAError(
            f"context has {len(context):,} characters; accepted: at most {MAX_CONTEXT_CHARS:,} "
            "(split the document into passages and ask each)"
        )
    try:
        # A long question can leave fewer context tokens per window than doc_stride (the
        # pipeline fails there): the stride shrinks to half a window.
        return tokenizer.encode_windows(
            question,
            context,
            max_length=settings.max_seq_len,
            stride=settings.doc_stride,
            max_text_tokens=settings.max_question_len,
            shrink_stride=True,
        )
    except TokenizerError as e:
        raise QAError(f"cannot make QA windows: {e}") from None


def _softmax_masked(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    x = np.where(keep, logits.astype(np.float32), np.float32(_MASKED))
    x = np.exp(x - x.max())
    return x / x.sum()


def _top_spans(p_start: np.ndarray, p_end: np.ndarray, k: int, max_answer_len: int, keep: np.ndarray):
    """``(start, end, score)`` of the ``k`` best spans with ``0 <= end - start < max_answer_len``."""
    outer = np.outer(p_start, p_end)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.ravel()
    if k == 1:
        order = np.array([np.argmax(flat)])
    elif flat.size <= k:  # argpartition needs k < size
        order = np.argsort(-flat)
    else:
        idx = np.argpartition(-flat, k)[:k]
        order = idx[np.argsort(-flat[idx])]
    starts, ends = np.unravel_index(order, candidates.shape)
    # (when k reaches past the valid spans, the zeroed cells outside the band come along, and so do
    # spans whose probability underflowed to 0, which tie in an arbitrary order: drop them all)
    ok = keep[starts] & keep[ends] & (starts <= ends) & (ends - starts < max_answer_len) & (flat[order] > 0)
    starts, ends = starts[ok], ends[ok]
    return starts, ends, candidates[starts, ends]


def _context_words(enc: Encoding) -> dict[int, tuple[int, int]]:
    """Character span of each context word of the window (``Encoding.word_to_chars`` for all at once)."""
    spans: dict[int, tuple[int, int]] = {}
    for w, q, (a, b) in zip(enc.word_ids, enc.sequence_ids, enc.offsets):
        if q == 1 and w is not None:
            spans[w] = (spans[w][0], b) if w in spans else (a, b)
    return spans


def _char_span(enc: Encoding, words: dict[int, tuple[int, int]], s: int, e: int,
               align_to_words: bool) -> tuple[int, int]:
    if align_to_words and enc.word_ids[s] is not None and enc.word_ids[e] is not None:
        return words[enc.word_ids[s]][0], words[enc.word_ids[e]][1]
    # [CLS] has no word: like the pipeline, fall back to token offsets for both ends.
    return enc.offsets[s][0], enc.offsets[e][1]


def decode_answers(
    windows: Sequence[Encoding],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    context: str,
    settings: QASettings,
    cls_id: int,
    top_k: int = 1,
) -> list[dict[str, Any]]:
    """Answers from each window's ``(S,)`` float start/end logits, best first (at most ``top_k``)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise QAError(f"top_k={top_k!r}; accepted: an int >= 1")
    if not (len(windows) == len(start_logits) == len(end_logits)) or not windows:
        raise QAError(
            f"{len(windows)} windows, {len(start_logits)} start and {len(end_logits)} end logit rows; "
            "need one of each per window"
        )
    pre_k = 2 * top_k + 10 if settings.align_to_words else top_k
    answers: list[dict[str, Any]] = []
    by_text: dict[str, dict[str, Any]] = {}
    null = math.inf
    for enc, start, end in zip(windows, start_logits, end_logits):
        start, end = np.asarray(start).reshape(-1), np.asarray(end).reshape(-1)
        if start.shape != (len(enc),) or end.shape != (len(enc),):
            raise QAError(f"logits of shape {start.shape} / {end.shape} for a window of {len(enc)} tokens")
        ids = np.asarray(enc.input_ids)
        keep = (np.asarray([q == 1 for q in enc.sequence_ids]) | (ids == cls_id)) & (
            np.asarray(enc.attention_mask) == 1
        )
        p_start, p_end = _softmax_masked(start, keep), _softmax_masked(end, keep)
        null = min(null, float(p_start[0] * p_end[0]))
        p_start[0] = p_end[0] = 0.0
        words = _context_words(enc)
        # A span is context tokens only: [CLS] stands for "no answer" (the null score above, asked
        # for with no_answer_threshold), never for the start or end of a text. (The pipeline can
        # list [CLS]-based spans of probability 0 when top_k exceeds the real spans: "(no answer)"
        # and part-word texts under whole-word alignment.)
        span_keep = keep & (ids != cls_id)
        for s, e, score in zip(*_top_spans(p_start, p_end, pre_k, settings.max_answer_len, span_keep)):
            a, b = _char_span(enc, words, int(s), int(e), settings.align_to_words)
            text = context[a:b]
            seen = by_text.get(text.lower())
            if seen is not None:
                seen["score"] += float(score)
            else:
                by_text[text.lower()] = answer = {"answer": text, "start": a, "end": b, "score": float(score)}
                answers.append(answer)
    ranked = [(a["score"], a) for a in answers]
    if settings.no_answer_threshold is not None:
        # Ranked as null / e^t, so that it beats a span exactly when log(null / span) > t.
        ranked.append((null * math.exp(-settings.no_answer_threshold), {"answer": "", "start": 0, "end": 0, "score": null}))
    ranked.sort(key=lambda x: x[0], reverse=True)
    if not ranked:  # every span's probability underflowed to 0: "no answer", score 0, rather than none
        return [{"answer": "", "start": 0, "end": 0, "score": 0.0}]
    return [a for _, a in ranked[:top_k]]


Runner = Callable[[Encoding], tuple[np.ndarray, np.ndarray]]


def answer_windows(
    tokenizer: AlbertTokenizer,
    run: Runner,
    question: str,
    context: str,
    settings: QASettings,
    top_k: int = 1,
    pad_to: int | None = None,
) -> tuple[list[Encoding], list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
    """Windows (padded to ``pad_to`` tokens for a fixed-length program), ``run(window) ->
    (start_logits, end_logits)`` of each, and the answers decoded from them, best first."""
    windows = make_windows(tokenizer, question, context, settings)
    if pad_to is not None:
        windows = [tokenizer.pad(w, pad_to) for w in windows]
    logits = [run(w) for w in windows]
    answers = decode_answers(
        windows, [s for s, _ in logits], [e for _, e in logits], context, settings, tokenizer.cls_id, top_k
    )
    return windows, logits, answers


def answer_question(
    tokenizer: AlbertTokenizer,
    run: Runner,
    question: str,
    context: str,
    settings: QASettings,
    top_k: int = 1,
) -> list[dict[str, Any]]:
    """Windows → ``run(window) -> (start_logits, end_logits)`` per window → answers, best first."""
    return answer_windows(tokenizer, run, question, context, settings, top_k)[2]
