"""Regenerate textcore's UnicodeTables.kt: the Unicode facts ALBERT's preprocessing needs, from Python.

    .venv/bin/python android_demo/tools/gen_unicode_tables.py          # write the file
    .venv/bin/python android_demo/tools/gen_unicode_tables.py --check  # exit 1 if it is stale

The reference tokenizer (albert_edge/tokenizer.py) takes general categories, NFKD, lower case and
``str.isdigit`` from Python's ``unicodedata`` (Unicode 14.0 in Python 3.11). textcore must answer
the same on every Android version, whose own tables range from Unicode 8 (Android 7, minSdk 24)
to 15, so it asks the platform nothing: ``UnicodeProps`` reads only the tables written here.

What is written, all as ranges or arithmetic runs (not one entry per code point):

- ``CATEGORIES``: ``start-end:class`` for the classes that matter (1 control: Cc Cf Zl Zp Cs;
  2 Mn; 3 Me; 4 Mc); every other code point is class 0.
- ``DIGITS``: ``start-end`` ranges where ``str.isdigit`` is true.
- ``STRIP`` and ``LOWER``: where NFKD-with-marks-removed, and lower case, differ from the
  default (for STRIP: nothing for a mark, the code point itself otherwise, Hangul syllables
  decomposed by the Unicode algorithm; for LOWER: the code point itself). A run
  ``start,count,step,target,tstep`` maps ``start + k*step`` to the one code point
  ``target + k*tstep`` for ``k < count``; ``cp=t1 t2 ...`` maps one code point to several (or,
  with nothing after ``=``, to none).

tests/test_android_textcore.py checks that the file is what this script writes, and that textcore
with these tables equals :func:`python_dump` for every code point.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "textcore/src/main/kotlin/org/albertedge/textcore/UnicodeTables.kt"
_CLASS = {"Cc": 1, "Cf": 1, "Zl": 1, "Zp": 1, "Cs": 1, "Mn": 2, "Me": 3, "Mc": 4}  # UnicodeProps.CONTROL ... MC
_CLASS_NAMES = {0: "-", 1: "C", 2: "Mn", 3: "Me", 4: "Mc"}
_HANGUL = range(0xAC00, 0xD7A4)
_CHUNK = 16_000  # characters per string literal (a JVM constant holds at most 65,535 bytes)


def _hex(s: str) -> str:
    return " ".join(format(ord(c), "x") for c in s)


def _strip(c: str) -> str:
    """NFKD with general category M removed; ASCII untouched (the tokenizer's ``_fold_char``)."""
    if ord(c) < 0x80:
        return c
    return "".join(x for x in unicodedata.normalize("NFKD", c) if unicodedata.category(x)[0] != "M")


def _code_points():
    # Surrogates too: a Java String may hold a lone one, which Python's str can hold as well.
    return range(0x110000)


def python_dump() -> list[str]:
    """One line per code point (surrogates skipped): cp, strip, lower, strip+lower, class, isdigit.

    The format of ``tokenize --dump-unicode``.
    """
    out = []
    for cp in _code_points():
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        strip = _strip(c)
        lower = "".join(x.lower() for x in c)
        strip_lower = "".join(x.lower() for x in strip)
        cat = _CLASS_NAMES[_CLASS.get(unicodedata.category(c), 0)]
        out.append(f"{cp:x}\t{_hex(strip)}\t{_hex(lower)}\t{_hex(strip_lower)}\t{cat}\t{int(c.isdigit())}")
    return out


def kotlin_dump() -> list[str]:
    """``tokenize --dump-unicode``: what textcore's UnicodeProps answers, in :func:`python_dump`'s format."""
    return subprocess.run(
        [str(HERE / "tokenize"), "--dump-unicode"], check=True, capture_output=True, text=True
    ).stdout.splitlines()


def _ranges(values: dict[int, int]) -> list[tuple[int, int, int]]:
    """``(start, end, value)`` runs of equal values over consecutive code points."""
    out: list[tuple[int, int, int]] = []
    for cp in sorted(values):
        if out and out[-1][1] == cp - 1 and out[-1][2] == values[cp]:
            out[-1] = (out[-1][0], cp, values[cp])
        else:
            out.append((cp, cp, values[cp]))
    return out


def _hangul(cp: int) -> list[int]:
    s = cp - 0xAC00
    jamo = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
    return jamo + ([0x11A7 + s % 28] if s % 28 else [])


def _mapping_entries(mapping: dict[int, list[int]]) -> list[str]:
    """Runs for one-to-one mappings (greedy, in code-point order), explicit entries for the rest."""
    singles = sorted((cp, t[0]) for cp, t in mapping.items() if len(t) == 1)
    out: list[str] = []
    i = 0
    while i < len(singles):
        cp, t = singles[i]
        j = i + 1
        if j < len(singles):
            step, tstep = singles[j][0] - cp, singles[j][1] - t
            while j < len(singles) and singles[j][0] - singles[j - 1][0] == step and singles[j][1] - singles[j - 1][1] == tstep:
                j += 1
        n = j - i
        if n == 1:
            out.append(f"{cp:x},1,0,{t:x},0")
        else:
            out.append(f"{cp:x},{n:x},{step:x},{t:x},{tstep:x}" if tstep >= 0 else f"{cp:x},{n:x},{step:x},{t:x},-{-tstep:x}")
        i = j
    out += [f"{cp:x}={' '.join(format(x, 'x') for x in t)}" for cp, t in sorted(mapping.items()) if len(t) != 1]
    return out


def tables() -> dict[str, list[str]]:
    classes, digits, strip, lower = {}, {}, {}, {}
    for cp in _code_points():
        c = chr(cp)
        cls = _CLASS.get(unicodedata.category(c), 0)
        if cls:
            classes[cp] = cls
        if c.isdigit():
            digits[cp] = 1
        s = [ord(x) for x in _strip(c)] if not 0xD800 <= cp <= 0xDFFF else [cp]
        default = _hangul(cp) if cp in _HANGUL else ([] if cls in (2, 3, 4) else [cp])
        if s != default:
            strip[cp] = s
        low = [ord(x) for x in c.lower()] if not 0xD800 <= cp <= 0xDFFF else [cp]
        if low != [cp]:
            lower[cp] = low
    return {
        "CATEGORIES": [f"{a:x}-{b:x}:{v}" for a, b, v in _ranges(classes)],
        "DIGITS": [f"{a:x}-{b:x}" for a, b, _ in _ranges(digits)],
        "STRIP": _mapping_entries(strip),
        "LOWER": _mapping_entries(lower),
    }


def _literal(entries: list[str]) -> str:
    """A Kotlin ``arrayOf`` of string literals, each at most :data:`_CHUNK` characters, joined by ';'."""
    chunks, cur = [], ""
    for e in entries:
        if cur and len(cur) + 1 + len(e) > _CHUNK:
            chunks.append(cur)
            cur = ""
        cur = f"{cur};{e}" if cur else e
    chunks.append(cur)
    lines = []
    for chunk in chunks:
        # Wrapped at 100 columns inside the literal: the reader ignores the line breaks.
        parts = [chunk[i : i + 100] for i in range(0, len(chunk), 100)]
        lines.append('        "' + '" +\n            "'.join(parts) + '",')
    return "arrayOf(\n" + "\n".join(lines) + "\n    )"


def render() -> str:
    t = tables()
    counts = ", ".join(f"{name} {len(entries)}" for name, entries in t.items())
    body = "\n\n".join(f"    val {name}: Array<String> = {_literal(entries)}" for name, entries in t.items())
    return f'''package org.albertedge.textcore

// Generated by android_demo/tools/gen_unicode_tables.py from Python's unicodedata
// {unicodedata.unidata_version}: do not edit by hand. Entries: {counts}.
// Formats: see the generator's docstring and UnicodeProps.
internal object UnicodeTables {{
    const val PYTHON_UNIDATA_VERSION = "{unicodedata.unidata_version}"

{body}
}}
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {OUT.name} is not what this script writes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    tmp = OUT.with_suffix(".kt.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(OUT)
    print(f"wrote {OUT} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
