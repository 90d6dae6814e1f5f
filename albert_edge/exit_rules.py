"""Exit rules for early-exit classifiers (torch-free): when an input stops, and what a rule does
to a set of inputs whose every step's logits are known.

``ExitRule`` is ``patience`` (PABEE, Zhou et al., NeurIPS 2020: stop once the prediction has
stayed the same for ``patience`` consecutive steps) or ``confidence`` (stop at the first step
whose top softmax probability reaches the threshold). Either way the answer is the prediction of
the step that stopped, and the last step always stops. The heads themselves are ``exits``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from albert_edge.errors import ExitError

RULE_KINDS = ("patience", "confidence")


@dataclass(frozen=True)
class ExitRule:
    """When an input stops: ``patience`` = p (an integer >= 1: the prediction unchanged for p
    consecutive steps, so the earliest stop is step p + 1), or ``confidence`` = c in (0, 1] (the
    first step whose top softmax probability is >= c). The last step always stops."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ExitError(f"exit rule kind {self.kind!r} is not one of {', '.join(RULE_KINDS)}")
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ExitError(f"exit rule {self.kind} value {v!r} is not a finite number")
        if self.kind == "patience" and (v != int(v) or v < 1):
            raise ExitError(f"exit rule patience must be an integer >= 1, got {v!r}")
        if self.kind == "confidence" and not 0.0 < v <= 1.0:
            raise ExitError(f"exit rule confidence must be in (0, 1], got {v!r}")

    @property
    def label(self) -> str:
        return f"patience={int(self.value)}" if self.kind == "patience" else f"confidence={self.value:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": int(self.value) if self.kind == "patience" else float(self.value)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "exit rule") -> ExitRule:
        if not isinstance(data, dict) or set(data) != {"kind", "value"}:
            raise ExitError(f"{where}: expected {{\"kind\": \"patience\" or \"confidence\", \"value\": number}}, "
                            f"got {data!r}")
        try:
            return cls(data["kind"], data["value"])
        except ExitError as e:
            raise ExitError(f"{where}: {e}") from None

    @classmethod
    def parse(cls, text: str) -> ExitRule:
        """``patience=2`` or ``confidence=0.9`` (what ``label`` writes)."""
        kind, sep, value = text.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise ExitError(f"exit rule {text!r}: expected patience=N or confidence=P (for example patience=2)")
        return cls(kind.strip(), int(number) if kind.strip() == "patience" and number == int(number) else number)

    def stops(self, step_logits: Sequence[Sequence[float]]) -> bool:
        """Whether an input whose steps so far gave ``step_logits`` (one row of num_labels logits
        per step, the newest last; lists or arrays) stops after the newest step (the last step is
        the caller's to stop). Plain Python on a few floats: this runs between program calls."""
        newest = [float(v) for v in step_logits[-1]]
        if self.kind == "confidence":
            top = max(newest)
            return 1.0 / sum(math.exp(v - top) for v in newest) >= self.value  # the top softmax probability
        p = int(self.value)
        if len(step_logits) < p + 1:
            return False
        first = _argmax(newest)
        return all(_argmax([float(v) for v in row]) == first for row in step_logits[-p - 1:-1])

    def depth(self, step_logits: Sequence[np.ndarray]) -> int:
        """How many steps an input runs, given every step's logits (the rule applied step by step)."""
        for k in range(1, len(step_logits)):
            if self.stops(step_logits[:k]):
                return k
        return len(step_logits)


def _argmax(row: list[float]) -> int:
    """The first index of the largest value (as numpy's argmax)."""
    return max(range(len(row)), key=row.__getitem__)


def default_rules(num_steps: int) -> list[ExitRule]:
    """The settings a comparison sweeps: every patience that can stop early, then confidences."""
    return ([ExitRule("patience", p) for p in range(1, max(num_steps - 1, 1))]
            + [ExitRule("confidence", c) for c in (0.99, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6)])


@dataclass(frozen=True)
class ExitOutcome:
    """What a rule made of each input: the depth it ran and the prediction it gave."""

    depths: np.ndarray  # (N,) int, 1..num_steps
    predictions: np.ndarray  # (N,) int

    @property
    def mean_depth(self) -> float:
        return float(self.depths.mean())

    def depth_quantile(self, q: float) -> float:
        return float(np.quantile(self.depths, q))


def apply_rule(rule: ExitRule, all_logits: np.ndarray) -> ExitOutcome:
    """``rule`` on precomputed logits of every step, (num_steps, N, num_labels)."""
    L, N = all_logits.shape[:2]
    depths = np.empty(N, dtype=np.int64)
    preds = np.empty(N, dtype=np.int64)
    for i in range(N):
        rows = [all_logits[k, i] for k in range(L)]
        d = rule.depth(rows)
        depths[i], preds[i] = d, int(rows[d - 1].argmax())
    return ExitOutcome(depths, preds)


def rule_figures(all_logits: np.ndarray, rules: Sequence[ExitRule], labels: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per rule: accuracy (with ``labels``), agreement with full depth, mean and p90 depth; the
    first row is full depth itself (rule None)."""
    full = all_logits[-1].argmax(-1)
    L = all_logits.shape[0]
    rows = []
    for rule in (None, *rules):
        out = ExitOutcome(np.full(len(full), L), full) if rule is None else apply_rule(rule, all_logits)
        row: dict[str, Any] = {"rule": None if rule is None else rule.to_dict(), "label": "full depth" if rule is None else rule.label}
        if labels is not None:
            row["accuracy"] = float((out.predictions == labels).mean())
        row.update(agreement=float((out.predictions == full).mean()), mean_depth=out.mean_depth,
                   p90_depth=out.depth_quantile(0.9))
        rows.append(row)
    return rows


def recommend(all_logits: np.ndarray, rules: Sequence[ExitRule], max_drop: float = 0.0,
              labels: np.ndarray | None = None, min_agreement: float = 0.995) -> ExitRule | None:
    """The rule with the fewest mean steps whose agreement with full depth is >= ``min_agreement``
    and, with ``labels``, whose accuracy is at most ``max_drop`` (a fraction) below full depth's.
    None when no rule qualifies. Ties go to the rule listed first."""
    return pick_rule(rule_figures(all_logits, rules, labels), max_drop, min_agreement)


def pick_rule(figures: Sequence[dict[str, Any]], max_drop: float = 0.0, min_agreement: float = 0.995) -> ExitRule | None:
    """``recommend`` on figures ``rule_figures`` already made (full depth first)."""
    full, *rows = figures
    best, best_depth = None, math.inf
    for row in rows:
        if row["agreement"] < min_agreement:
            continue
        if "accuracy" in row and row["accuracy"] < full["accuracy"] - max_drop:
            continue
        if row["mean_depth"] < best_depth:
            best, best_depth = ExitRule.from_dict(row["rule"]), row["mean_depth"]
    return best
