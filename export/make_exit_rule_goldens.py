"""Write the exit-rule cases that textcore's JUnit tests replay (AdaptiveDepth.kt against exit_rules.py).

    python export/make_exit_rule_goldens.py [--out PATH]

Each case is a sequence of step logits (float32, written as the exact doubles Python's rule sees)
and, per rule, ``albert_edge.exit_rules.ExitRule.stops`` after every step and ``depth``. Sequences
are fixed-seed random rows (some drawn so that predictions repeat, for patience) and hand-made
edges: ties in argmax, and confidence thresholds exactly at a step's top probability or one ulp
either side of it. Thresholds sit exactly on a probability only where its arithmetic is exact
(tied logits give 1/n; a huge gap gives 1), because ``exp`` may differ by an ulp between C
libraries; on random rows they sit 1e-6 (relative) either side. Default output:
android_demo/textcore/src/test/resources/exit_rule_cases.json.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from albert_edge._io import atomic_write_text
from albert_edge.exit_rules import ExitRule

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "android_demo/textcore/src/test/resources/exit_rule_cases.json"
FORMAT = "albert-edge-exit-rule-cases/1"
RULES = [ExitRule("patience", p) for p in (1, 2, 3)] + [ExitRule("confidence", c) for c in (0.5, 0.6, 0.9, 0.99, 1.0)]


def _top_probability(row: list[float]) -> float:
    """What ExitRule.stops compares with the threshold (the same expression)."""
    top = max(row)
    return 1.0 / sum(math.exp(v - top) for v in row)


def _case(steps: list[list[float]], extra: Sequence[ExitRule] = ()) -> dict[str, Any]:
    rows = [[float(v) for v in np.asarray(r, dtype=np.float32)] for r in steps]  # exact float32 values
    rules = [*RULES, *extra]
    return {
        "steps": rows,
        "rules": [{"rule": r.to_dict(), "stops": [r.stops(rows[:k]) for k in range(1, len(rows) + 1)],
                   "depth": r.depth(rows)} for r in rules],
    }


def _around(p: float) -> list[ExitRule]:
    """Confidence thresholds at ``p`` and one ulp either side (those in (0, 1])."""
    return [ExitRule("confidence", c) for c in (math.nextafter(p, 0.0), p, math.nextafter(p, 2.0)) if 0.0 < c <= 1.0]


def _edge_cases() -> list[dict[str, Any]]:
    return [
        _case([[1.0, 1.0], [2.0, 2.0], [0.0, 3.0]], _around(0.5)),  # 1/2 exactly, then a clear step
        _case([[2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [5.0, 5.0, 5.0]], _around(1.0 / 3.0)),  # 1/(1+1+1)
        _case([[7.0, 7.0, 7.0, 7.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], _around(0.25)),
        _case([[0.0, -800.0], [0.0, 0.0], [-800.0, 0.0]], _around(1.0)),  # exp underflows to 0: exactly 1
        _case([[100.0, -100.0, 0.0], [1.0, 0.0, 0.0], [100.0, -100.0, -100.0]]),  # 1/(1 + tiny) rounds to 1
        _case([[3.0, 3.0, 1.0], [3.0, 3.0, 1.0], [1.0, 3.0, 3.0], [1.0, 3.0, 3.0], [3.0, 1.0, 3.0]]),  # ties: first index
        _case([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]),  # the same prediction throughout
        _case([[2.0, 1.0], [1.0, 2.0], [2.0, 1.0], [1.0, 2.0], [2.0, 1.0]]),  # it never settles
        _case([[0.5, 0.25], [0.5, 0.5]]),  # two steps: patience 1 can stop at the last step only
    ]


def _random_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    cases = []
    for i in range(40):
        steps, labels = int(rng.integers(2, 8)), int(rng.integers(2, 6))
        scale = float(rng.choice([0.3, 1.0, 3.0, 10.0]))
        rows = rng.standard_normal((steps, labels)).astype(np.float32) * np.float32(scale)
        if i % 2:  # predictions that repeat: one label pushed up for a run of steps
            label, start = int(rng.integers(labels)), int(rng.integers(steps))
            rows[start:, label] += np.float32(2.0 * scale)
        rows = rows.astype(np.float32).tolist()
        p = _top_probability([float(v) for v in np.asarray(rows[int(rng.integers(steps))], np.float32)])
        extra = [ExitRule("confidence", c) for c in (p * (1 - 1e-6), p * (1 + 1e-6)) if 0.0 < c <= 1.0]
        cases.append(_case(rows, extra))
    return cases


def make_cases() -> dict[str, Any]:
    rng = np.random.default_rng(20250227)
    return {"format": FORMAT, "cases": _edge_cases() + _random_cases(rng)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(make_cases(), indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
