"""Write the post-processing parity cases that textcore's JUnit tests replay (softmax, top-k, percentiles).

    python export/make_postprocess_goldens.py [--bundle DIR] [--out PATH]

The reference is numpy: softmax in float64 over float32 logits (max subtracted), then float32;
top-k by a stable descending sort (equal scores: lower index first, as ``argmax``); latency
percentiles by ``np.percentile`` (linear). Logits are fixed-seed random rows with hand-made edge
cases (ties, huge magnitudes, one label); ``--bundle`` adds the ``logits`` of a real bundle's
goldens.json. Default output: android_demo/textcore/src/test/resources/postprocess_cases.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "android_demo/textcore/src/test/resources/postprocess_cases.json"
FORMAT = "albert-edge-postprocess-cases/1"


def _softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    e = np.exp(x - x.max())
    return (e / e.sum()).astype(np.float32)


def _case(logits: list[float], k: int) -> dict[str, Any]:
    row = np.asarray(logits, dtype=np.float32)
    probs = _softmax(row)
    labels = [f"label_{i}" for i in range(len(row))]
    order = np.argsort(-probs, kind="stable")[:k]
    return {
        "logits": [float(x) for x in row],
        "labels": labels,
        "k": k,
        "softmax": [float(x) for x in probs],
        "argmax": int(np.argmax(probs)),
        "top_k": [{"label": labels[i], "score": float(probs[i])} for i in order],
    }


def _bundle_logits(bundle: Path) -> list[list[float]]:
    goldens = json.loads((bundle / "goldens.json").read_text(encoding="utf-8"))
    rows = []
    for case in goldens["cases"]:
        for out in [case["reference"], *case["programs"].values()]:
            logits = out.get("logits")
            if logits and len(logits["shape"]) == 2 and logits["stride"] == 1:
                rows.append(logits["values"])
    return rows


def make_cases(bundle: Path | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(20240611)
    rows: list[list[float]] = [
        [0.0],
        [1.0, 1.0, 1.0],  # all tied: top-k in index order
        [2.0, 5.0, 5.0, -1.0],  # tie for first
        [1000.0, 999.0, -1000.0],  # naive exp overflows
        [-1000.0, -1001.0, -999.5],
        [88.7, 88.7, 0.0],
        [-0.575021386, 0.344591081, -1.87525451],
    ]
    for n in (2, 3, 5, 11, 40):
        for scale in (0.5, 4.0, 30.0):
            rows.append((rng.standard_normal(n) * scale).astype(np.float32).tolist())
    if bundle is not None:
        rows += _bundle_logits(bundle)
    cases = [_case(r, k) for r in rows for k in sorted({1, min(3, len(r)), len(r) + 1})]
    percentiles = []
    for xs in (
        [5.0],
        [3.0, 1.0],
        [1.0, 2.0, 3.0, 4.0],
        rng.gamma(2.0, 3.0, 25).round(6).tolist(),
    ):
        for p in (0.0, 10.0, 25.0, 50.0, 90.0, 95.0, 99.0, 100.0):
            percentiles.append(
                {"xs": xs, "p": p, "value": float(np.percentile(np.asarray(xs), p))}
            )
    return {"format": FORMAT, "cases": cases, "percentiles": percentiles}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle", type=Path, help="also take the logits of this bundle's goldens.json"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output file (default {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    if args.bundle is not None and not (args.bundle / "goldens.json").is_file():
        parser.error(
            f"--bundle {args.bundle}: no goldens.json there (expected a folder `albert-edge export` wrote)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(make_cases(args.bundle), indent=1) + "\n"
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
