"""Write the golden tokenizer cases that the Android (Kotlin) tokenizer tests replay.

    python export/make_tokenizer_goldens.py [--spiece PATH] [--out DIR] [--max-length N]

Without --spiece, trains the small reference spiece.model (deterministic) into DIR first.
Writes DIR/spiece.model and DIR/tokenizer_cases.jsonl; the format is in docs/tokenizer.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from albert_edge.tokenizer import TokenizerError
from albert_edge.tokenizer_goldens import write_goldens

DEFAULT_OUT = Path(__file__).resolve().parent / "goldens"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spiece", type=Path, help="use this spiece.model instead of training one")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--max-length", type=int, default=128, help="max_length of most cases (default 128)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        write_goldens(args.out, args.spiece, args.max_length)
    except TokenizerError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
