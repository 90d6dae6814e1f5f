"""The tokenizer reference that does not move: SentencePiece itself, after ALBERT's preprocessing.

google-research/albert ``tokenization.py`` encodes with ``sp_model.EncodeAsPieces(preprocess_text(text))``.
This module does the same with the ``sentencepiece`` library, written from that description and
docs/tokenizer.md, not from albert_edge's code. The documented rules where albert_edge (like
transformers 5) deliberately or unavoidably differs are applied here or named by
:func:`documented_difference`:

- Preprocessing as docs/tokenizer.md states it (transformers 5's): TeX quotes to ``"``, NFKD then
  every general-category-M character removed (the original drops non-zero combining classes),
  each character lower-cased on its own (the original's ``str.lower`` has a final sigma).
- The control pieces (``<pad> <unk> [CLS] [SEP] [MASK]``) typed in the text are cut out first and
  the text between them is encoded alone; SentencePiece never matches control pieces in text.
- ``python-whitespace``: ``preprocess_text`` splits on Python whitespace, which includes U+000B and
  U+001C..U+001F; the charsmap deletes those five before words are split (transformers, ours).
- ``charsmap-graphemes``: the charsmap is applied per grapheme cluster (``tokenizers``), not by
  SentencePiece's longest match; decomposed Hangul, and a letter with several marks kept by
  ``keep_accents``, stay decomposed.
- ``viterbi-tie``: two segmentations with the same pieces' text and equal total score (``00|0``
  vs ``0|00``); SentencePiece sums in float32 and keeps a different one.
"""

from __future__ import annotations

import math
import re
import unicodedata

import sentencepiece as spm

CONTROL_SPELLINGS = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")
_CONTROL_RE = re.compile("|".join(re.escape(s) for s in CONTROL_SPELLINGS))
_PYTHON_ONLY_WHITESPACE = frozenset("\x0b\x1c\x1d\x1e\x1f")


def preprocess(text: str, lower: bool = True, keep_accents: bool = False) -> str:
    """ALBERT's ``preprocess_text`` with the rules docs/tokenizer.md states (see the module docstring)."""
    text = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
    if not keep_accents:
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c)[0] != "M")
    if lower:
        text = "".join(c.lower() for c in text)
    return text


def reference_ids(
    sp: spm.SentencePieceProcessor, text: str, *, lower: bool = True, keep_accents: bool = False,
    cut: tuple[str, ...] = (),
) -> list[int]:
    """Token ids of ``text`` (no [CLS]/[SEP]): control spellings and ``cut`` pieces cut out of the
    raw text, every stretch between them preprocessed and encoded by SentencePiece on its own."""
    pattern = _CONTROL_RE if not cut else re.compile(
        "|".join(re.escape(s) for s in sorted((*CONTROL_SPELLINGS, *cut), key=len, reverse=True))
    )
    ids: list[int] = []
    pos = 0
    for m in pattern.finditer(text):
        ids += sp.encode(preprocess(text[pos:m.start()], lower, keep_accents))
        ids.append(sp.piece_to_id(m.group()))
        pos = m.end()
    return ids + sp.encode(preprocess(text[pos:], lower, keep_accents))


def documented_difference(sp: spm.SentencePieceProcessor, text: str, ours: list[int], ref: list[int]) -> str | None:
    """The documented rule that explains ``ours != ref`` for ``text``, or None if none does."""
    if _PYTHON_ONLY_WHITESPACE & set(text):
        return "python-whitespace"
    surface = "".join(sp.id_to_piece(i) for i in ours)
    if surface == "".join(sp.id_to_piece(i) for i in ref):
        score = math.fsum(sp.get_score(i) for i in ours)
        if math.isclose(score, math.fsum(sp.get_score(i) for i in ref), abs_tol=1e-4):
            return "viterbi-tie"
        return None
    # Clusters the charsmap sees differently: Hangul (decomposed into jamo by NFKD), or a base
    # character with combining marks (kept with keep_accents).
    if any(0x1100 <= ord(c) <= 0x11FF or 0x3130 <= ord(c) <= 0x318F or 0xAC00 <= ord(c) <= 0xD7A3
           or unicodedata.category(c)[0] == "M" for c in text):
        return "charsmap-graphemes"
    return None
