"""SentencePiece's precompiled character map, applied the way Hugging Face ``tokenizers`` does.

A SentencePiece model stores its normalization rules (``nmt_nfkc`` for ALBERT) as a
"precompiled charsmap": a little-endian ``uint32`` trie size, a darts-clone double-array trie
over UTF-8 keys, then the NUL-terminated replacement strings the trie values point into.

SentencePiece applies it by longest match. ``tokenizers``' ``Precompiled`` normalizer (what
transformers 5 runs) does something else, and since we match transformers this module copies it:
the text is cut into extended grapheme clusters; a cluster shorter than 6 UTF-8 bytes is looked up
whole and, if any *prefix* of it is a key, the whole cluster becomes the replacement of the
*shortest* such prefix; otherwise each character is looked up on its own. Two visible effects:
decomposed Hangul (jamo, 3 bytes each) is never recomposed, and ``"\\r\\n"`` becomes one space.

Grapheme clusters follow UAX #29 with one simplification: rule GB11 (emoji ZWJ sequences) is not
applied. It only ever joins clusters of 6 bytes or more, which are mapped character by character
either way, so the output is the same.
"""

from __future__ import annotations

import struct
import unicodedata
from functools import lru_cache

# Grapheme_Cluster_Break classes that matter here.
_CR, _LF, _CONTROL, _EXTEND, _ZWJ, _SPACING, _PREPEND, _RI = range(8)
_L, _V, _T, _LV, _LVT, _OTHER = range(8, 14)

_OTHER_GRAPHEME_EXTEND = frozenset(
    [0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57,
     0x0DCF, 0x0DDF, 0x1B35, 0x200C, 0x302E, 0x302F, 0xFF9E, 0xFF9F, 0x1133E, 0x11357, 0x114B0,
     0x114BD, 0x115AF, 0x11930, 0x1D165, *range(0x1D16E, 0x1D173), *range(0xE0020, 0xE0080),
     *range(0x1F3FB, 0x1F400)]  # the last range: emoji modifiers, Extend since Unicode 11
)
_PREPEND_CHARS = frozenset(
    [*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x0D4E, 0x110BD, 0x110CD,
     0x111C2, 0x111C3, 0x1193F, 0x11941, 0x11A3A, *range(0x11A84, 0x11A8A), 0x11D46]
)


@lru_cache(maxsize=8192)
def _gcb(c: str) -> int:
    cp = ord(c)
    if cp == 0x0D:
        return _CR
    if cp == 0x0A:
        return _LF
    if cp == 0x200D:
        return _ZWJ
    if cp in _PREPEND_CHARS:
        return _PREPEND
    if cp in _OTHER_GRAPHEME_EXTEND:
        return _EXTEND
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    cat = unicodedata.category(c)
    if cat in ("Cc", "Cf", "Zl", "Zp", "Cs"):
        return _CONTROL
    if cat in ("Mn", "Me"):
        return _EXTEND
    if cat == "Mc" or cp in (0x0E33, 0x0EB3):
        return _SPACING
    return _OTHER


def _no_break(prev: int, cur: int, ri_run: int) -> bool:
    """UAX #29 rules GB3-GB13 (without GB11) between two adjacent characters."""
    if prev == _CR and cur == _LF:
        return True  # GB3
    if prev in (_CR, _LF, _CONTROL) or cur in (_CR, _LF, _CONTROL):
        return False  # GB4, GB5
    if prev == _L and cur in (_L, _V, _LV, _LVT):
        return True  # GB6
    if prev in (_LV, _V) and cur in (_V, _T):
        return True  # GB7
    if prev in (_LVT, _T) and cur == _T:
        return True  # GB8
    if cur in (_EXTEND, _ZWJ, _SPACING) or prev == _PREPEND:
        return True  # GB9, GB9a, GB9b
    return prev == _RI and cur == _RI and ri_run % 2 == 1  # GB12, GB13


def graphemes(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` character spans of the extended grapheme clusters of ``text``."""
    spans: list[tuple[int, int]] = []
    start = 0
    prev = -1
    ri_run = 0  # regional indicators seen in a row, for pairing flags
    for i, c in enumerate(text):
        cur = _gcb(c)
        if i > 0 and not _no_break(prev, cur, ri_run):
            spans.append((start, i))
            start = i
        ri_run = ri_run + 1 if cur == _RI else 0
        prev = cur
    if text:
        spans.append((start, len(text)))
    return spans


class CharsMap:
    """A parsed precompiled charsmap: ``lookup`` does darts-clone common-prefix search."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) <= 4:
            raise ValueError(f"precompiled charsmap is {len(blob)} bytes, too short")
        (trie_size,) = struct.unpack_from("<I", blob)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise ValueError(f"precompiled charsmap trie size {trie_size} does not fit the blob")
        self._units = struct.unpack_from(f"<{trie_size // 4}I", blob, 4)
        self._strings = blob[4 + trie_size :]
        self._char_cache: dict[str, str | None] = {}

    def _value(self, offset: int) -> str:
        end = self._strings.index(b"\0", offset)
        return self._strings[offset:end].decode("utf-8")

    def shortest_prefix(self, key: bytes) -> str | None:
        """Replacement of the shortest key that is a prefix of ``key``, or None."""
        units = self._units
        unit = units[0]
        pos = (unit >> 10) << ((unit & (1 << 9)) >> 6)
        for byte in key:
            pos ^= byte
            if pos >= len(units):
                return None
            unit = units[pos]
            if unit & ((1 << 31) | 0xFF) != byte:  # label mismatch
                return None
            pos ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
            if (unit >> 8) & 1:  # has a leaf: a key ends here
                return self._value(units[pos] & 0x7FFFFFFF)
        return None

    def char(self, c: str) -> str | None:
        """Replacement of the single character ``c``, or None when it maps to itself."""
        try:
            return self._char_cache[c]
        except KeyError:
            value = self._char_cache[c] = self.shortest_prefix(c.encode("utf-8"))
            return value

    def units(self, text: str) -> list[tuple[int, int, str | None]]:
        """Split ``text`` into ``(start, end, replacement-or-None)`` units, as ``tokenizers`` does."""
        out: list[tuple[int, int, str | None]] = []
        for start, end in graphemes(text):
            if end - start > 1:
                cluster = text[start:end].encode("utf-8")
                if len(cluster) < 6:
                    value = self.shortest_prefix(cluster)
                    if value is not None:
                        out.append((start, end, value))
                        continue
            for i in range(start, end):
                out.append((i, i + 1, self.char(text[i])))
        return out
