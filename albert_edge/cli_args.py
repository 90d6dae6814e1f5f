"""Command-line arguments that several ``albert-edge`` commands share."""

from __future__ import annotations

import argparse


def add_weight_cache_flag(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--no-weight-cache`` (``args.weight_cache``, default True), for commands that load programs."""
    p.add_argument("--no-weight-cache", dest="weight_cache", action="store_false",
                   help="load programs without XNNPACK's packed-weights cache, which packs the shared "
                        "layer once instead of once per layer step (on by default, as on Android and iOS; "
                        "off only for comparisons: same outputs, more memory)")
