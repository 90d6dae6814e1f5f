"""Golden tokenizer cases: texts → token ids from this Python tokenizer, replayed by the Kotlin one.

File format (JSON Lines, ASCII, one object per line; see docs/tokenizer.md):
line 1 is a header ``{"format": GOLDEN_FORMAT, "spiece_sha256": ..., "do_lower_case": ...,
"keep_accents": ..., "split_digit_comma": ..., "split_user_defined": ...,
"split_special_tokens": ..., "num_cases": N}``;
every other line is a case ``{"text", ["text_pair",] "max_length", "truncation", "input_ids",
"token_type_ids", "attention_mask", "offsets"}``, unpadded. ``offsets`` holds one ``[start, end]``
per token, in code points (Python ``str`` indices) of ``text`` for token type 0 and of
``text_pair`` for type 1, ``[0, 0]`` for ``[CLS]``/``[SEP]``: :attr:`Encoding.offsets` as is.
Format 2 added ``offsets``; format 3 the header's ``split_user_defined``, with user-defined pieces
segmented as SentencePiece does; :func:`read_goldens` reads only the current format.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from albert_edge._io import atomic_write_bytes, atomic_write_text
from albert_edge._textgen import probe_pairs, probe_texts, training_corpus
from albert_edge.tokenizer import AlbertTokenizer, TokenizerError, train_sentencepiece

__all__ = [
    "ALBERT_USER_DEFINED_SYMBOLS",
    "GOLDEN_FORMAT",
    "golden_cases",
    "golden_jsonl",
    "read_goldens",
    "train_reference_spiece",
    "write_goldens",
]

logger = logging.getLogger(__name__)

GOLDEN_FORMAT = "albert-edge-tokenizer-goldens/3"
# The user-defined symbols google-research/albert trained its spiece.model with.
ALBERT_USER_DEFINED_SYMBOLS = ("(", ")", "”", "-", ".", "–", "£", "€")
REFERENCE_VOCAB_SIZE = 1500


def train_reference_spiece(out_path: str | Path) -> Path:
    """Train the small reference ``spiece.model`` (tests and goldens); deterministic, ~0.5 s."""
    return train_sentencepiece(
        training_corpus(),
        out_path,
        vocab_size=REFERENCE_VOCAB_SIZE,
        user_defined_symbols=ALBERT_USER_DEFINED_SYMBOLS,
    )


def golden_cases(tokenizer: AlbertTokenizer, max_length: int = 128) -> list[dict[str, Any]]:
    """520 single texts and 120 pairs at ``max_length``, and every 8th again at 16 and 32."""
    plan: list[tuple[str, str | None, int]] = []
    texts = probe_texts(520, seed=11)
    pairs = probe_pairs(120, seed=12)
    plan += [(t, None, max_length) for t in texts]
    plan += [(a, b, max_length) for a, b in pairs]
    for small in (16, 32):
        plan += [(t, None, small) for t in texts[::8]]
        plan += [(a, b, small) for a, b in pairs[::8]]
    cases = []
    for text, pair, length in plan:
        enc = tokenizer.encode(text, pair, max_length=length, truncation="longest_first")
        case: dict[str, Any] = {"text": text}
        if pair is not None:
            case["text_pair"] = pair
        case.update(
            max_length=length,
            truncation="longest_first",
            input_ids=list(enc.input_ids),
            token_type_ids=list(enc.token_type_ids),
            attention_mask=list(enc.attention_mask),
            offsets=[list(span) for span in enc.offsets],
        )
        cases.append(case)
    return cases


def golden_jsonl(tokenizer: AlbertTokenizer, max_length: int = 128) -> str:
    """The whole golden file as text (header line, then one line per case)."""
    cases = golden_cases(tokenizer, max_length)
    header = {
        "format": GOLDEN_FORMAT,
        "spiece_sha256": hashlib.sha256(tokenizer.model_proto).hexdigest(),
        "do_lower_case": tokenizer.do_lower_case,
        "keep_accents": tokenizer.keep_accents,
        "split_digit_comma": tokenizer.split_digit_comma,
        "split_user_defined": tokenizer.split_user_defined,
        "split_special_tokens": tokenizer.split_special_tokens,
        "vocab_size": tokenizer.vocab_size,
        "num_cases": len(cases),
    }
    # ensure_ascii: no raw U+2028, U+0085 etc. that line-based readers would split on.
    lines = [json.dumps(x, ensure_ascii=True, sort_keys=True) for x in (header, *cases)]
    return "\n".join(lines) + "\n"


def write_goldens(out_dir: str | Path, spiece: str | Path | None = None, max_length: int = 128) -> tuple[Path, Path]:
    """Write ``spiece.model`` (trained if ``spiece`` is None, else copied) and the cases file.

    Returns ``(spiece_model_path, cases_path)``.
    """
    out = Path(out_dir)
    model_path = out / "spiece.model"
    if spiece is None:
        train_reference_spiece(model_path)
    elif Path(spiece).resolve() != model_path.resolve():
        if not Path(spiece).is_file():
            raise TokenizerError(f"--spiece {spiece} does not exist")
        atomic_write_bytes(model_path, Path(spiece).read_bytes())
    tokenizer = AlbertTokenizer.from_file(model_path)
    cases_path = out / "tokenizer_cases.jsonl"
    atomic_write_text(cases_path, golden_jsonl(tokenizer, max_length))
    logger.info("wrote %s and %s", model_path, cases_path)
    return model_path, cases_path


def read_goldens(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parse a golden file into ``(header, cases)``, checking the header and every case."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines:
        raise TokenizerError(f"{path} is empty; expected a header line and cases")
    header = json.loads(lines[0])
    if header.get("format") != GOLDEN_FORMAT:
        raise TokenizerError(f"{path}: header format is {header.get('format')!r}; expected {GOLDEN_FORMAT!r}")
    cases = [json.loads(line) for line in lines[1:]]
    if len(cases) != header.get("num_cases"):
        raise TokenizerError(f"{path}: header says {header.get('num_cases')} cases, file has {len(cases)}")
    for line, case in enumerate(cases, start=2):
        _check_case(case, f"{path} line {line}")
    return header, cases


def _check_case(case: Any, where: str) -> None:
    """Field types, equal lengths, and offsets that are spans of the text each token came from."""
    if not isinstance(case, dict):
        raise TokenizerError(f"{where}: a case must be a JSON object, got {type(case).__name__}")
    for key in ("text", "text_pair"):
        if (key == "text" or key in case) and not isinstance(case.get(key), str):
            raise TokenizerError(f"{where}: field {key!r} is {case.get(key)!r}; accepted: a string")
    ids = case.get("input_ids")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        value = case.get(key)
        if not isinstance(value, list) or not all(type(x) is int for x in value):
            raise TokenizerError(f"{where}: field {key!r} must be a list of ints")
        if len(value) != len(ids):
            raise TokenizerError(f"{where}: field {key!r} has {len(value)} entries, input_ids {len(ids)}")
    bad_type = next((i for i, t in enumerate(case["token_type_ids"]) if t not in (0, 1)), None)
    if bad_type is not None:
        raise TokenizerError(
            f"{where}: token_type_ids[{bad_type}] is {case['token_type_ids'][bad_type]}; accepted: 0 or 1"
        )
    offsets = case.get("offsets")
    if not isinstance(offsets, list) or len(offsets) != len(ids):
        found = f"has {len(offsets)} entries" if isinstance(offsets, list) else f"is {offsets!r}"
        raise TokenizerError(
            f"{where}: field 'offsets' {found}; accepted: a list of [start, end] pairs, one per "
            f"input id ({len(ids)})"
        )
    sources = (("text", len(case["text"])), ("text_pair", len(case.get("text_pair", ""))))
    for i, (span, kind) in enumerate(zip(offsets, case["token_type_ids"])):
        name, limit = sources[kind]
        if not (
            isinstance(span, list)
            and len(span) == 2
            and all(type(x) is int for x in span)
            and 0 <= span[0] <= span[1] <= limit
        ):
            raise TokenizerError(
                f"{where}: offsets[{i}] is {span!r}; accepted: [start, end] with "
                f"0 <= start <= end <= {limit} (code points of {name})"
            )
