"""Labelled text files for fine-tuning, evaluation and comparison: CSV, TSV or JSON Lines.

A row holds a text (or a text pair) and a label. Column names are configurable. Nothing is dropped
silently: an empty file, a missing column, a row without text, a malformed line or a label outside
the accepted set raises :class:`DataError` naming the file and the row numbers (1-based data rows;
for CSV/TSV the header is row 0, for JSON Lines the row number is the line number).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albert_edge.errors import DataError
from albert_edge.tokenizer import AlbertTokenizer

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
MAX_LISTED = 5  # problems quoted in one error message
MAX_FIELD_BYTES = 64 << 20  # one CSV/TSV field: a whole document may be one



@dataclass(frozen=True)
class Row:
    text: str
    label: str | float
    text_pair: str | None = None
    row: int = 0  # row number in the file, for messages and reports


def text_list(texts: Any) -> list[str]:
    """A text or a list of texts, as the classifiers take them, as a list; a TypeError naming what
    else was given (bytes: decode them first)."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError(f"texts is {type(texts).__name__}; accepted: a str or a list of str "
                        "(decode bytes first, e.g. data.decode('utf-8'))")
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}; accepted: str")
    return list(texts)


def _format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("csv", "tsv", "jsonl"):
            raise DataError(f"format {fmt!r} is not one of csv, tsv, jsonl")
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; accepted suffixes: "
                        f"{', '.join(FORMATS)} (CSV, TSV, JSON Lines): rename the file") from None


def read_text(path: Path) -> str:
    """A UTF-8 text file (a byte-order mark is dropped); DataError naming it if missing or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from None


def _records(path: Path, fmt: str) -> list[tuple[int, dict]]:
    """(row number, {column: value}) for every data row."""
    raw = read_text(path)
    if fmt == "jsonl":
        out, bad = [], []
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                bad.append(f"line {n}: not valid JSON ({err.msg})")
                continue
            except RecursionError:
                bad.append(f"line {n}: JSON nested too deeply to read")
                continue
            if not isinstance(obj, dict):
                bad.append(f"line {n}: expected a JSON object, got {type(obj).__name__}")
                continue
            out.append((n, obj))
        _raise_problems(path, bad)
        return out
    # newline="" keeps line breaks inside quoted fields; strict=True reports an unclosed quote
    # instead of swallowing the rest of the file into one field.
    reader = csv.DictReader(io.StringIO(raw, newline=""), delimiter="," if fmt == "csv" else "\t", strict=True)
    out, bad = [], []
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD_BYTES)  # the module's default, 128 KiB, is less than a long document
    done = 0  # file lines consumed by complete records (and the header)
    try:
        reader.fieldnames  # the header first: its lines count as done
        done = reader.line_num
        for n, rec in enumerate(reader, start=1):
            done = reader.line_num
            if None in rec:  # more fields than the header names
                bad.append(f"row {n}: {len(rec) - 1 + len(rec[None])} fields, the header has "
                           f"{len(reader.fieldnames or [])}")
                continue
            out.append((n, rec))
    except csv.Error as err:
        unclosed = "end of data" in str(err) or "EOF" in str(err)
        what = "a quote opened here is never closed" if unclosed else str(err)
        # An unclosed quote swallows the rest of the file: the record it opens starts on the line
        # after the last complete one (the header included), not where the reader gave up.
        line = reader.line_num
        if unclosed:  # the first non-blank line after them (the csv module skips blank lines)
            lines = raw.split("\n")
            line = next((i + 1 for i in range(done, len(lines)) if lines[i].strip()), done + 1)
        raise DataError(f"{path}: line {line}: not valid {fmt.upper()} ({what}); accepted: "
                        f"fields separated by {'commas' if fmt == 'csv' else 'tabs'}, quotes doubled inside "
                        "quoted fields") from None
    finally:
        csv.field_size_limit(limit)
    _raise_problems(path, bad)
    return out


def _raise_problems(path: Path, problems: Sequence[str]) -> None:
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise DataError(f"{path}: {len(problems)} bad row(s): " + "; ".join(problems[:MAX_LISTED]) + more)


def read_labelled(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str = "label",
    text_pair_column: str | None = None,
    labels: Sequence[str] | None = None,
    regression: bool = False,
    limit: int | None = None,
    fmt: str | None = None,
) -> list[Row]:
    """Rows of a labelled file. `labels` (when given) is the accepted label set; with
    `regression` the label must be a number. `limit` keeps the first N rows."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a data file ({', '.join(FORMATS)}: CSV, TSV, JSON Lines)")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    records = _records(path, _format(path, fmt))
    if not records:
        raise DataError(f"{path}: no data rows")
    columns = [text_column, label_column] + ([text_pair_column] if text_pair_column else [])
    first = records[0][1]
    missing = [c for c in columns if c not in first]
    if missing:
        raise DataError(f"{path}: no column {', '.join(map(repr, missing))}; columns present: "
                        f"{', '.join(map(repr, first))} (choose them with --text-column / --label-column)")
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be at least 1, got {limit}")
        records = records[:limit]
    accepted = set(labels) if labels is not None else None
    rows, bad = [], []
    for n, rec in records:
        text, label = rec.get(text_column), rec.get(label_column)
        pair = rec.get(text_pair_column) if text_pair_column else None
        if not isinstance(text, str) or not text.strip():
            bad.append(f"row {n}: empty or missing {text_column!r}")
            continue
        if text_pair_column and (not isinstance(pair, str) or not pair.strip()):
            bad.append(f"row {n}: empty or missing {text_pair_column!r}")
            continue
        if regression:
            try:
                value: str | float = float(label)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                bad.append(f"row {n}: label {label!r} is not a number")
                continue
        else:
            if label is None or (isinstance(label, str) and not label.strip()):
                bad.append(f"row {n}: empty or missing {label_column!r}")
                continue
            value = str(label).strip()
            if accepted is not None and value not in accepted:
                bad.append(f"row {n}: unknown label {value!r} (accepted: {', '.join(labels or ())})")
                continue
        rows.append(Row(text, value, pair, n))
    _raise_problems(path, bad)
    return rows


@dataclass(frozen=True)
class ClassificationExample:
    """One encoded row for the training loop (no padding; collated per batch)."""

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    label: int | float
    teacher_logits: tuple[float, ...] | None = None  # a teacher's logits, to distil from


def encode_rows(rows: Sequence[Row], tokenizer: AlbertTokenizer, labels: Sequence[str] | None,
                max_seq_len: int, teacher_logits: Sequence[Sequence[float]] | None = None,
                ) -> list[ClassificationExample]:
    """Token ids for the training loop: ClassificationExample per row ([CLS] a [SEP] (b [SEP]),
    truncated longest-first to `max_seq_len`, no padding). `labels` maps label names to ids; None
    means regression. `teacher_logits`: one row of len(labels) finite logits per row, to distil from."""
    index = {name: i for i, name in enumerate(labels)} if labels is not None else None
    if teacher_logits is not None:
        if index is None:
            raise DataError("teacher_logits need class labels; a regression head cannot be distilled this way")
        if len(teacher_logits) != len(rows):
            raise DataError(f"teacher_logits has {len(teacher_logits)} rows for {len(rows)} training rows")
        for i, t in enumerate(teacher_logits):
            if len(t) != len(index) or not all(isinstance(x, float | int) and math.isfinite(x) for x in t):
                raise DataError(f"teacher_logits[{i}] must be {len(index)} finite numbers (one per label), got {t!r}")
    out = []
    for i, r in enumerate(rows):
        enc = tokenizer.encode(r.text, r.text_pair, max_length=max_seq_len)
        label = float(r.label) if index is None else index[str(r.label)]
        soft = None if teacher_logits is None else tuple(float(x) for x in teacher_logits[i])
        out.append(ClassificationExample(tuple(enc.input_ids), tuple(enc.token_type_ids), label, soft))
    return out
