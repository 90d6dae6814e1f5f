"""The data a comparison runs on (``albert_edge.harness``): the labelled rows or QA questions,
tokenized as the bundle says, which of them are timed, and QA answers from program outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from albert_edge.datasets import DataError, Row, read_labelled
from albert_edge.qa import QAError, QASettings, decode_answers, make_windows
from albert_edge.qa_data import QAExample, cloze_split, exact_match, read_qa
from albert_edge.tokenizer import AlbertTokenizer

DEFAULT_DATA = "default"  # the default model's held-out set: the tweet sentiment test split
# (for default-qa: the cloze questions over the test documents)


@dataclass(frozen=True)
class DataSettings:
    path: str | None = None  # CSV/TSV/JSONL file, "default", or None (default when the model is)
    text_column: str = "text"
    label_column: str = "label"
    text_pair_column: str | None = None
    limit: int | None = None


# ---- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QAEvalSet:
    """Question answering: each question's windows are consecutive inputs of the EvalSet."""

    examples: list[QAExample]
    settings: QASettings
    windows: list[Any]  # tokenizer Encodings, one per input
    spans: list[tuple[int, int]]  # per question: [first, last + 1) window inputs
    cls_id: int


@dataclass(frozen=True)
class EvalSet:
    source: str
    rows: list[Row]  # one per input (QA: per window, text = question, text_pair = context)
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    truncated: int  # rows longer than max_seq_len, cut (longest first) as the bundle says
    qa: QAEvalSet | None = None

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def _check_limit(data: DataSettings) -> None:
    if data.limit is not None and (isinstance(data.limit, bool) or not isinstance(data.limit, int) or data.limit < 1):
        raise DataError(f"limit must be a positive integer, got {data.limit!r}")


def load_qa_eval_set(data: DataSettings, tokenizer: AlbertTokenizer, settings: QASettings) -> EvalSet:
    """Read the QA data (SQuAD JSON / JSON Lines, or the default-qa test split) and make every
    question's windows as the bundle's QA settings say."""
    _check_limit(data)
    if data.path == DEFAULT_DATA:
        examples = cloze_split("test", data.limit)
        source = "cloze questions over the test documents (the default-qa model's held-out set)"
    else:
        assert data.path is not None
        examples = read_qa(data.path, data.limit)
        source = str(data.path)
    rows, ids, types, windows, spans = [], [], [], [], []
    for n, e in enumerate(examples):
        try:
            ws = make_windows(tokenizer, e.question, e.context, settings)
        except QAError as err:
            raise DataError(f"{source}: question {e.id!r}: {err}") from None
        spans.append((len(windows), len(windows) + len(ws)))
        for w in ws:
            windows.append(w)
            rows.append(Row(e.question, "", e.context, n + 1))
            ids.append(list(w.input_ids))
            types.append(list(w.token_type_ids))
    return EvalSet(source, rows, ids, types, 0, QAEvalSet(examples, settings, windows, spans, tokenizer.cls_id))


def qa_answers(qa: QAEvalSet, outputs: list[np.ndarray]) -> list[dict[str, Any]]:
    """The best answer per question from each window's concatenated (start, end) logits."""
    answers = []
    for e, (a, b) in zip(qa.examples, qa.spans):
        # A fixed-length program's logits cover its padding too: keep the window's own tokens.
        halves = [[h[: len(qa.windows[i])] for h in np.split(outputs[i], 2)] for i in range(a, b)]
        best = decode_answers(qa.windows[a:b], [h[0] for h in halves], [h[1] for h in halves], e.context,
                              qa.settings, qa.cls_id)[0]
        answers.append(best)
    return answers


def changed_answers(qa: QAEvalSet, reference: list[dict[str, Any]], program: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Questions whose answer differs from the reference's (by text), with both and the gold answers."""
    out = []
    for i, (e, r, p) in enumerate(zip(qa.examples, reference, program)):
        if r["answer"] != p["answer"]:
            gold = [t for t, _ in e.answers]
            out.append({"index": i, "id": e.id, "question": e.question, "gold": gold,
                        "reference": r["answer"], "program": p["answer"],
                        "reference_exact": exact_match(r["answer"], gold), "program_exact": exact_match(p["answer"], gold),
                        "reference_score": round(r["score"], 6), "program_score": round(p["score"], 6)})
    return out


def default_rows(limit: int | None) -> list[Row]:
    """The default model's held-out set: the tweet sentiment test split (needs `make corpora`);
    ``limit`` rows spread evenly over it."""
    from albert_edge.corpora import tweet_splits

    tweets = tweet_splits()["test"]
    rows = [Row(t.text, t.label, None, i + 1) for i, t in enumerate(tweets)]
    if limit is not None and limit < len(rows):
        # The split is ordered by label: a prefix would hold one class, so take an even spread.
        rows = [rows[i * len(rows) // limit] for i in range(limit)]
    return rows


def load_eval_set(data: DataSettings, tokenizer: AlbertTokenizer, labels: Sequence[str] | None,
                  regression: bool, max_seq_len: int) -> EvalSet:
    """Read and tokenize the comparison data. ``labels``: the accepted label set (None: any,
    for random-weight models whose labels mean nothing)."""
    _check_limit(data)
    if data.path == DEFAULT_DATA:
        rows = default_rows(data.limit)
        source = "tweet sentiment test split (the default model's held-out set)"
        if labels is not None:
            unknown = sorted({str(r.label) for r in rows} - set(labels))
            if unknown:
                raise DataError(f"the default evaluation set has labels {unknown} that the model does not "
                                f"have (its labels: {', '.join(labels)}); pass --data with your own file")
    else:
        assert data.path is not None
        rows = read_labelled(data.path, text_column=data.text_column, label_column=data.label_column,
                             text_pair_column=data.text_pair_column, labels=labels, regression=regression,
                             limit=data.limit)
        source = str(data.path)
    ids, types, truncated = [], [], 0
    for r in rows:
        full = tokenizer.encode(r.text, r.text_pair)
        enc = tokenizer.encode(r.text, r.text_pair, max_length=max_seq_len) if len(full.input_ids) > max_seq_len else full
        truncated += len(full.input_ids) > max_seq_len
        ids.append(list(enc.input_ids))
        types.append(list(enc.token_type_ids))
    return EvalSet(source, rows, ids, types, truncated)


def spread_indices(lengths: Sequence[int], k: int) -> list[int]:
    """k indices whose lengths are spread evenly over the sorted lengths (shortest and longest
    included); fewer when there are fewer distinct positions."""
    if k <= 0 or not lengths:
        return []
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if k == 1:
        return [order[len(order) // 2]]
    picks = {order[round(j * (len(order) - 1) / (k - 1))] for j in range(k)}
    return sorted(picks, key=lambda i: (lengths[i], i))


def probe_inputs(eval_set: EvalSet, tokenizer: AlbertTokenizer, lengths: Sequence[int]) -> list[dict[str, Any]]:
    """One input per length: [CLS] + the data's own token ids, end to end, cut to length - 2 + [SEP]."""
    stream = [t for ids in eval_set.input_ids for t in ids[1:-1] if t not in (tokenizer.cls_id, tokenizer.sep_id)]
    out = []
    for n in lengths:
        body = (stream * (1 + (n // max(len(stream), 1))))[: max(n - 2, 0)]
        ids = [tokenizer.cls_id, *body, tokenizer.sep_id][:n]
        out.append({"input_ids": ids, "token_type_ids": [0] * len(ids)})
    return out


def default_probe_lengths(max_seq_len: int) -> list[int]:
    lengths = [n for n in (16, 32, 64, 128, 256, 512) if n < max_seq_len]
    return [*lengths, max_seq_len]


def buckets(max_seq_len: int) -> list[tuple[int, int]]:
    """Token-length buckets (inclusive): 1-16, 17-32, 33-64, ... up to max_seq_len."""
    out, lo = [], 1
    for hi in (16, 32, 64, 128, 256, 512):
        if lo > max_seq_len:
            break
        out.append((lo, min(hi, max_seq_len)))
        lo = hi + 1
    if lo <= max_seq_len:
        out.append((lo, max_seq_len))
    return out


