"""The ``albert-edge`` command: a thin layer over the library, one small function per command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from albert_edge import __version__

log = logging.getLogger("albert_edge")


def cmd_info(args: argparse.Namespace) -> None:
    """Summarise a model and run one forward pass on example inputs."""
    import torch

    from albert_edge.checkpoint import load_model
    from albert_edge.model import example_inputs

    model = load_model(args.model, args.head)
    c = model.config
    print(f"model        {args.model} ({type(model).__name__})")
    print(f"parameters   {model.num_parameters():,}")
    print(f"shape        V={c.vocab_size} E={c.embedding_size} H={c.hidden_size} I={c.intermediate_size} "
          f"heads={c.num_attention_heads}")
    print(f"sharing      {c.num_hidden_layers} layer steps over {c.num_hidden_groups} group(s) "
          f"of {c.inner_group_num} layer(s)")
    print(f"activation   {c.hidden_act}; labels {list(c.labels)}")
    inputs = example_inputs(c, args.seq_len)
    start = time.perf_counter()
    with torch.no_grad():
        out = model(*inputs)
    ms = (time.perf_counter() - start) * 1e3
    outs = out if isinstance(out, tuple) else (out,)
    shapes = ", ".join(str(tuple(t.shape)) for t in outs)
    print(f"forward      input (1, {args.seq_len}) -> {shapes} in {ms:.1f} ms (eager fp32, first call)")


def cmd_tokenize(args: argparse.Namespace) -> None:
    """Print one JSON object per text: ids, tokens, token types and offsets."""
    from albert_edge.tokenizer import AlbertTokenizer

    path = Path(args.tokenizer)
    tok = AlbertTokenizer.from_pretrained(path) if path.is_dir() else AlbertTokenizer.from_file(path)
    texts = args.text or [line.rstrip("\n") for line in sys.stdin]
    for text in texts:
        enc = tok.encode(text, args.pair, max_length=args.max_length)
        print(json.dumps({"input_ids": enc.input_ids, "tokens": enc.tokens,
                          "token_type_ids": enc.token_type_ids, "offsets": enc.offsets},
                         ensure_ascii=False))


def build_parser() -> argparse.ArgumentParser:
    from albert_edge.checkpoint import HEADS

    parser = argparse.ArgumentParser(
        prog="albert-edge", description="ALBERT from a checkpoint to a phone."
    )
    parser.add_argument("--version", action="version", version=f"albert-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summarise a model and run one forward pass",
                       description="Summarise a model (parameters, shape, sharing) and run one forward "
                                   "pass on example inputs.")
    p.add_argument("model", metavar="MODEL",
                   help="a Hugging Face checkpoint directory, or a preset name (random weights), "
                        "e.g. albert-base-v2 or tiny")
    p.add_argument("--head", choices=sorted(HEADS), default=None,
                   help="model head; default: the checkpoint's architectures, or 'base' for a preset")
    p.add_argument("--seq-len", type=int, default=128, help="sequence length of the example input (default 128)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("tokenize", help="tokenize text with an ALBERT tokenizer",
                       description="Tokenize texts (arguments, or one per line on stdin) and print one "
                                   "JSON object per text.")
    p.add_argument("tokenizer", metavar="TOKENIZER",
                   help="a checkpoint directory (spiece.model or tokenizer.json) or an spiece.model file")
    p.add_argument("text", nargs="*", help="texts to tokenize; default: read lines from stdin")
    p.add_argument("--pair", default=None, help="second segment for every text ([CLS] A [SEP] B [SEP])")
    p.add_argument("--max-length", type=int, default=None, help="truncate to this many tokens (longest first)")
    p.set_defaults(func=cmd_tokenize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from albert_edge.errors import USER_ERRORS

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.func(args)
    except USER_ERRORS as err:
        print(f"albert-edge: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
