"""``compare`` for a bundle with early exits (manifest ``adaptive``): every exit setting's
accuracy, agreement with full depth, mean and p90 layer steps, and mean latency per input
against the same program's ``forward`` and eager fp32; the trade-off plot; and the setting
recommended for "no accuracy loss" on the comparison's own data.

The harness (``harness.py``) calls in at three points: ``plan_adaptive`` when it plans,
``collect_steps`` with the first thread count's workers (every step's logits on every
example, from which every rule's figures follow without running the rule again), and
``time_rules`` after each thread count's ordinary timed rounds (each rule's loop timed in the
same workers, interleaved with ``forward``). ``adaptive_section`` assembles the report's
``adaptive`` entry; ``report_adaptive`` renders it (without torch, as ``albert-edge report`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from albert_edge.exit_rules import ExitRule, default_rules, pick_rule, rule_figures
from albert_edge.exits import has_exits

TIMED_INPUTS = 96  # data examples whose latency is measured under every rule (depth varies by input)
FORWARD = "forward"  # the pseudo-rule that times the program's single full-depth call
FULL_LOOP = "full"  # the loop run to the last step: its per-call overhead against forward


@dataclass(frozen=True)
class AdaptivePlan:
    num_steps: int
    recorded: ExitRule  # the manifest's rule (chosen on validation when the model was fine-tuned)
    rules: tuple[ExitRule, ...]  # the sweep, the recorded rule included
    timed: tuple[int, ...]  # indices of the examples timed under every rule
    eager_exits: bool  # the reference checkpoint has exits.safetensors: eager figures per rule too

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rules]


def plan_adaptive(manifest: dict[str, Any], model_dir: Path | None, n_eval: int) -> AdaptivePlan | None:
    """The sweep for an adaptive classification bundle (None for any other bundle): the default
    rules plus the recorded one, timed on up to ``TIMED_INPUTS`` examples spread evenly over the
    data in its order (not by length: depth, not length, is what varies here)."""
    settings = manifest.get("adaptive")
    if not settings or n_eval == 0:
        return None
    steps = int(settings["num_steps"])
    recorded = ExitRule.from_dict(settings["rule"], "manifest.json adaptive.rule")
    rules = [recorded, *(r for r in default_rules(steps) if r != recorded)]
    n = min(TIMED_INPUTS, n_eval)
    timed = tuple(sorted({round(i * (n_eval - 1) / max(n - 1, 1)) for i in range(n)}))
    return AdaptivePlan(steps, recorded, tuple(rules), timed, model_dir is not None and has_exits(model_dir))


def collect_steps(plan: AdaptivePlan, workers: Sequence[Any], count: int, work: Path) -> dict[str, np.ndarray]:
    """Every worker's logits at every step on the first ``count`` examples: (num_steps, count,
    num_labels) per program name (eager only when its checkpoint has exit heads)."""
    out = {}
    for w in workers:
        if w.spec.kind == "eager" and not plan.eager_exits:
            continue
        file = work / f"{w.spec.name}-steps.npz"
        w.call("steps", count=count, file=str(file))
        with np.load(file) as z:
            out[w.spec.name] = z["values"]
    return out


def time_rules(plan: AdaptivePlan, workers: Sequence[Any], rounds: int, runs: int,
               advance: Callable[[int], None]) -> dict[str, dict[str, list[list[float]]]]:
    """Per worker, per setting (``forward``, every rule's label, ``full``; eager: ``forward``
    only), the seconds of each timed call per timed example. Rounds rotate the workers, and
    within a worker the settings, so no setting is always timed first."""
    timed = list(plan.timed)
    settings: dict[str, list[Any]] = {}
    for w in workers:
        names: list[Any] = [None]
        if w.spec.kind == "pte":
            names += [*(r.to_dict() for r in plan.rules), FULL_LOOP]
            w.call("warmup", indices=timed[:4], runs=1, rule=FULL_LOOP)  # loads the loop's methods
        w.call("warmup", indices=timed, runs=1)
        settings[w.spec.name] = names
    times: dict[str, dict[str, list[list[float]]]] = {
        w.spec.name: {_key(s): [[] for _ in timed] for s in settings[w.spec.name]} for w in workers}
    for r in range(rounds):
        for k in range(len(workers)):
            w = workers[(k + r) % len(workers)]
            names = settings[w.spec.name]
            for j in range(len(names)):
                rule = names[(j + r) % len(names)]
                reply = w.call("time", indices=timed, runs=runs, rule=rule)
                for per_input, new in zip(times[w.spec.name][_key(rule)], reply["times_s"]):
                    per_input.extend(new)
            advance(1)
    return times


def _key(rule: Any) -> str:
    if rule is None:
        return FORWARD
    return FULL_LOOP if rule == FULL_LOOP else ExitRule.from_dict(rule).label


def _mean_ms(per_input: list[list[float]]) -> float:
    """Mean over the timed examples of each one's median call, in ms."""
    return float(np.mean([np.median(t) for t in per_input]) * 1e3)


def adaptive_section(plan: AdaptivePlan, steps: dict[str, np.ndarray], gold: Sequence[int] | None,
                     times: dict[int, dict[str, dict[str, list[list[float]]]]], reference: str) -> dict[str, Any]:
    """The report's ``adaptive`` entry. Per program: each setting's figures on every example
    (accuracy with gold labels, agreement with the program's own full depth, mean / p90 layer
    steps) and, per thread count, mean latency per timed example and its ratio to the program's
    ``forward`` and to eager fp32 on the same examples; and the setting recommended for no
    accuracy loss on this data (``exit_rules.pick_rule``)."""
    labels = np.asarray(gold) if gold is not None else None
    programs = []
    for name, logits in steps.items():
        figures = rule_figures(logits, plan.rules, labels)
        for row in figures:
            row["timed_mean_depth"] = _timed_mean_depth(plan, logits, row["rule"])
            row["latency"] = _latency_rows(times, name, reference, row["label"] if row["rule"] else FORWARD)
        best = pick_rule(figures)
        programs.append({
            "name": name,
            "settings": figures,
            "loop_full_depth": _latency_rows(times, name, reference, FULL_LOOP),
            "recommended": best.label if best else None,
        })
    return {"num_steps": plan.num_steps, "recorded_rule": plan.recorded.label,
            "timed_inputs": list(plan.timed), "programs": programs}


def _timed_mean_depth(plan: AdaptivePlan, logits: np.ndarray, rule_dict: dict[str, Any] | None) -> float:
    """The mean layer steps on the timed examples alone (the latency's sample)."""
    if rule_dict is None:
        return float(plan.num_steps)
    rule = ExitRule.from_dict(rule_dict)
    return float(np.mean([rule.depth([logits[k, i] for k in range(plan.num_steps)]) for i in plan.timed]))


def _latency_rows(times: dict[int, dict[str, dict[str, list[list[float]]]]], name: str, reference: str,
                  key: str) -> dict[str, dict[str, float]]:
    """Per thread count: mean ms per timed example under ``key``, and its ratios to the
    program's forward and to eager fp32's forward on the same examples."""
    out = {}
    for threads, per_program in times.items():
        own = per_program.get(name, {})
        if key not in own:
            continue
        ms = _mean_ms(own[key])
        entry = {"mean_ms": round(ms, 4), "vs_forward": round(ms / _mean_ms(own[FORWARD]), 4)}
        if reference in per_program:
            entry["vs_reference"] = round(ms / _mean_ms(per_program[reference][FORWARD]), 4)
        out[str(threads)] = entry
    return out
