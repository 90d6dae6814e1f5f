"""Command-line arguments that several ``albert-edge`` commands share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from albert_edge.errors import DataError


def add_weight_cache_flag(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--no-weight-cache`` (``args.weight_cache``, default True), for commands that load programs."""
    p.add_argument("--no-weight-cache", dest="weight_cache", action="store_false",
                   help="load programs without XNNPACK's packed-weights cache, which packs the shared "
                        "layer once instead of once per layer step (on by default, as on Android and iOS; "
                        "off only for comparisons: same outputs, more memory)")


def not_utf8(text: str) -> str | None:
    """Where ``text`` (decoded with surrogateescape, as Python decodes argv) is not UTF-8."""
    for i, ch in enumerate(text):
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            return f"byte 0x{ord(ch) - 0xDC00:02x} at character {i}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"lone surrogate at character {err.start}"
    return None


def read_texts(args: Sequence[str]) -> list[str]:
    """The texts a command works on: its arguments, or else one per line of stdin (blank lines
    kept, so that output line N answers input line N). DataError for text that is not UTF-8."""
    if args:
        for i, text in enumerate(args, 1):
            where = not_utf8(text)
            if where:
                raise DataError(f"text argument {i} is not UTF-8 ({where}); pass UTF-8 text")
        return list(args)
    texts = []
    stream = getattr(sys.stdin, "buffer", None)  # bytes, decoded here (a test's StringIO has none)
    for n, raw in enumerate(stream if stream is not None else sys.stdin, 1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as err:
            raise DataError(f"stdin line {n} is not UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start}); "
                            "pass UTF-8 text") from None
        texts.append(line.rstrip("\r\n"))
    return texts
