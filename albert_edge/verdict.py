"""What a comparison report says at a glance: the verdict, how trustworthy its timings are, and
what regressed against a baseline. Reads only the report dict (torch-free).

- ``verdict(report)``: per quantized program, against the fp32 program and against eager fp32:
  how much smaller, how much faster at each thread count (ratio of medians), top-1 agreement and
  labels changed, the task metric's change with a 95% confidence interval and McNemar's exact
  test on the same examples (is the change distinguishable from zero?), and the memory it adds.
- ``timing_quality(entry, ...)``: the spread of one program's timed calls and whether the run was
  too noisy to trust (tail far above the median, medians drifting from round to round, CPU time
  stolen by the hypervisor), with what to do about it.
- ``regressions(new, old, thresholds)``: every metric of every program that got worse than the
  thresholds allow, for a CI gate (``albert-edge report NEW --baseline OLD``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from albert_edge.errors import HarnessError

# A run is flagged as unstable when any of these is exceeded. Inputs have different lengths, so
# every call is measured against its own input's median.
OUTLIER_FACTOR = 3.0  # a call that took more than 3x its input's median is an outlier
MAX_OUTLIER_SHARE = 0.05  # more than 5% of the calls were outliers
MAX_ROUND_DRIFT = 0.20  # the per-round medians spread by more than 20% of the median (max - min)
MAX_STEAL_SHARE = 0.05  # more than 5% of CPU time went to other guests of the hypervisor
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


# ---- statistics ---------------------------------------------------------------------------------


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b and c are the discordant pairs (reference right and
    program wrong, and the reverse); under no change each is Binomial(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def paired_difference_ci(b: int, c: int, n: int, z: float = Z_95) -> tuple[float, float, float]:
    """(difference, low, high) of two accuracies measured on the same n examples: program minus
    reference, (c - b) / n, with a Wald interval from the discordant pairs."""
    diff = (c - b) / n
    se = math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
    return diff, diff - z * se, diff + z * se


@dataclass(frozen=True)
class MetricChange:
    reference: str
    metric: str  # "accuracy"
    before: float
    after: float
    low: float  # 95% CI of after - before
    high: float
    p_value: float  # McNemar's exact test
    worse: int  # examples the reference got right and the program wrong
    better: int

    @property
    def change(self) -> float:
        return self.after - self.before

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def accuracy_change(gold: Sequence[int], reference: Sequence[int], program: Sequence[int],
                    reference_name: str) -> MetricChange:
    """The program's accuracy against the reference's, on the same examples."""
    n = len(gold)
    ref_right = [r == g for r, g in zip(reference, gold)]
    prog_right = [p == g for p, g in zip(program, gold)]
    b = sum(r and not p for r, p in zip(ref_right, prog_right))
    c = sum(p and not r for r, p in zip(ref_right, prog_right))
    diff, low, high = paired_difference_ci(b, c, n)
    before = sum(ref_right) / n
    return MetricChange(reference_name, "accuracy", before, before + diff, low, high, mcnemar_exact_p(b, c), b, c)


# ---- timing quality -----------------------------------------------------------------------------


def round_medians(entry: dict[str, Any], rounds: int, runs: int) -> list[float]:
    """Each round's median of the timed calls, every input's calls scaled by that input's overall
    median (inputs of different lengths then weigh alike)."""
    per_round: list[list[float]] = [[] for _ in range(rounds)]
    for pi in entry["per_input"]:
        times = pi["times_ms"]
        med = statistics.median(times) if times else 0.0
        if med <= 0:
            continue
        for r in range(rounds):
            per_round[r] += [t / med for t in times[r * runs:(r + 1) * runs]]
    return [statistics.median(x) for x in per_round if x]


def timing_quality(entry: dict[str, Any], rounds: int, runs: int) -> dict[str, Any]:
    """Spread and stability of one program's timed calls at one thread count."""
    all_ms = sorted(t for pi in entry["per_input"] for t in pi["times_ms"])
    q1, q3 = (statistics.quantiles(all_ms, n=4, method="inclusive")[::2] if len(all_ms) >= 2
              else (all_ms[0], all_ms[0]) if all_ms else (0.0, 0.0))
    medians = round_medians(entry, rounds, runs)
    drift = (max(medians) - min(medians)) if len(medians) > 1 else 0.0
    outliers = [t > OUTLIER_FACTOR * statistics.median(pi["times_ms"]) for pi in entry["per_input"]
                for t in pi["times_ms"]]
    share = sum(outliers) / len(outliers) if outliers else 0.0
    steal = entry.get("cpu_steal_share")
    reasons = []
    if share > MAX_OUTLIER_SHARE:
        reasons.append(f"{100 * share:.0f}% of the calls took over {OUTLIER_FACTOR:g}x their input's median "
                       f"(more than {100 * MAX_OUTLIER_SHARE:.0f}%)")
    if drift > MAX_ROUND_DRIFT:
        reasons.append(f"round medians drift by {100 * drift:.0f}% (more than {100 * MAX_ROUND_DRIFT:.0f}%)")
    if steal is not None and steal > MAX_STEAL_SHARE:
        reasons.append(f"{100 * steal:.0f}% of CPU time was stolen by the hypervisor")
    return {"iqr_ms": q3 - q1, "outlier_share": share, "round_drift": drift, "cpu_steal_share": steal,
            "unstable": bool(reasons), "reasons": reasons}


UNSTABLE_ADVICE = ("close other work on the machine (or move to one that is not shared) and rerun with more "
                   "--rounds; on a VM with CPU steal, latency figures only compare within one run")


# ---- the verdict --------------------------------------------------------------------------------


def _latency(p: dict[str, Any], threads: int) -> dict[str, Any] | None:
    return next((e for e in p["latency"] if e["threads"] == threads), None)


def _size(p: dict[str, Any]) -> int | None:
    return p["size"]["bytes"] if p["size"]["bytes"] is not None else p["size"]["parameter_bytes"]


def compare_programs(report: dict[str, Any], program: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """``program`` against ``reference`` (both entries of the report's programs)."""
    out: dict[str, Any] = {"program": program["name"], "reference": reference["name"]}
    ps, rs = _size(program), _size(reference)
    out["smaller_by"] = rs / ps if ps and rs else None
    out["faster_by"] = {}
    for t in report["latency_settings"]["threads"]:
        a, b = _latency(program, t), _latency(reference, t)
        if a and b and a["summary"].get("median_ms") and b["summary"].get("median_ms"):
            out["faster_by"][t] = b["summary"]["median_ms"] / a["summary"]["median_ms"]
    gold = report["data"].get("gold")
    if program.get("predictions") is not None and reference.get("predictions") is not None:
        pp, rp = program["predictions"], reference["predictions"]
        out["agreement"] = sum(a == b for a, b in zip(pp, rp)) / len(pp)
        out["changed"] = sum(a != b for a, b in zip(pp, rp))
        if gold is not None:
            out["accuracy"] = accuracy_change(gold, rp, pp, reference["name"])
    if program.get("answers") is not None and reference.get("answers") is not None:
        pa, ra = program["answers"], reference["answers"]
        out["agreement"] = sum(a["answer"] == b["answer"] for a, b in zip(pa, ra)) / len(pa)
        out["changed"] = sum(a["answer"] != b["answer"] for a, b in zip(pa, ra))
        out["unit"] = "answer"
        if program["accuracy"] and reference["accuracy"]:
            out["qa"] = {k: (reference["accuracy"][k], program["accuracy"][k]) for k in ("exact_match", "f1")}
    out["memory_bytes"] = program["memory"]["peak_cost_bytes"]
    out["reference_memory_bytes"] = reference["memory"]["peak_cost_bytes"]
    return out


def verdict(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every quantized program against the fp32 program (when the bundle has one) and against
    eager fp32."""
    programs = {p["name"]: p for p in report["programs"]}
    reference = programs.get(report["reference"])
    fp32 = programs.get("fp32")
    out = []
    for p in report["programs"]:
        if p["kind"] != "pte" or p["name"] == "fp32":
            continue
        for ref in (fp32, reference):
            if ref is not None:
                out.append(compare_programs(report, p, ref))
    if fp32 is not None and reference is not None:  # what lowering alone does
        out.append(compare_programs(report, fp32, reference))
    return out


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def verdict_lines(report: dict[str, Any]) -> list[str]:
    """The verdict as sentences, one per comparison (the terminal and report.md print these)."""
    lines = []
    for v in verdict(report):
        parts = []
        if v["smaller_by"]:
            r = v["smaller_by"]
            parts.append(f"{_ratio(r)} smaller" if r >= 1 else f"{_ratio(1 / r)} larger")
        parts += [(f"{_ratio(r)} faster" if r >= 1 else f"{_ratio(1 / r)} slower")
                  + f" at {t} thread{'s' if t > 1 else ''}" for t, r in v["faster_by"].items()]
        if "agreement" in v:
            unit = v.get("unit", "label")
            parts.append(f"agrees on {100 * v['agreement']:.2f}% ({v['changed']} {unit}{'s' if v['changed'] != 1 else ''}"
                         " changed)")
        for key, name in (("exact_match", "EM"), ("f1", "F1")):
            if "qa" in v:
                before, after = v["qa"][key]
                parts.append(f"{name} {after - before:+.2f} points to {after:.2f}")
        acc: MetricChange | None = v.get("accuracy")
        if acc is not None and acc.worse == acc.better == 0:
            parts.append(f"accuracy unchanged at {100 * acc.after:.2f}% (the same predictions right)")
        elif acc is not None:
            word = "a real change" if acc.significant else "not distinguishable from no change"
            parts.append(f"accuracy {100 * acc.change:+.2f} points to {100 * acc.after:.2f}% (95% CI "
                         f"{100 * acc.low:+.2f} to {100 * acc.high:+.2f}; McNemar p = {acc.p_value:.2g}: {word})")
        parts.append(f"adds {v['memory_bytes'] / 1e6:.1f} MB ({v['reference']}: {v['reference_memory_bytes'] / 1e6:.1f} MB)")
        lines.append(f"{v['program']} vs {v['reference']}: " + ", ".join(parts))
    return lines


def unstable_timings(report: dict[str, Any]) -> list[str]:
    """One line per (program, thread count) whose timings were flagged, with the reasons."""
    out = []
    for p in report["programs"]:
        for e in p["latency"]:
            q = e.get("quality")
            if q and q["unstable"]:
                out.append(f"{p['name']} at {e['threads']} thread{'s' if e['threads'] > 1 else ''}: "
                           + "; ".join(q["reasons"]))
    return out


# ---- regressions against a baseline -------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    max_accuracy_drop: float = 0.5  # points (percent) of accuracy or macro-F1 (QA: exact match or F1)
    max_agreement_drop: float = 0.5  # points of top-1 agreement with eager fp32
    max_latency_increase: float = 10.0  # percent, median at each thread count
    max_memory_increase: float = 10.0  # percent of the memory a program adds
    max_size_increase: float = 1.0  # percent of the file size
    accuracy_only: bool = False  # check accuracy, agreement and size only (a baseline from another machine)

    def __post_init__(self) -> None:
        for name in ("max_accuracy_drop", "max_agreement_drop", "max_latency_increase", "max_memory_increase",
                     "max_size_increase"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise HarnessError(f"--{name.replace('_', '-')} {value!r}: accepted: a finite number >= 0")


# What must be equal for two reports to be compared. model.source and the data's path, limit and
# columns stand in for the weights and the data only where a report has no digest of them.
_MODEL_KEYS = ("task", "architecture", "labels", "head", "max_seq_len", "vocab_size", "random_weights",
               "weights_sha256")
_DATA_KEYS = ("sha256", "rows", "questions", "truncated", "gold")
_DATA_PATH_KEYS = ("source", "limit", "text_column", "label_column", "text_pair_column")
_LATENCY_KEYS = ("threads", "data_inputs", "probe_lengths")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _numbers(program: dict[str, Any]) -> list[tuple[str, Any]]:
    """The figures the gate compares in one program, by name."""
    out = [(f"accuracy.{k}", v) for k, v in (program["accuracy"] or {}).items()
           if k in ("accuracy", "macro_f1", "exact_match", "f1")]
    out += [(f"fidelity.{k}", v) for k, v in (program["fidelity"] or {}).items()
            if k in ("top1_agreement", "answer_agreement")]
    out += [(f"latency at {e['threads']} thread(s): median_ms", e["summary"].get("median_ms")) for e in program["latency"]]
    out += [("memory.peak_cost_bytes", program["memory"]["peak_cost_bytes"]), ("size.bytes", program["size"]["bytes"])]
    return out


def not_comparable(new: dict[str, Any], old: dict[str, Any], accuracy_only: bool = False) -> list[str]:
    """Every way in which report `new` cannot be held against baseline `old` (empty: they can):
    another model, task or data set, other programs, other timing settings, another machine kind
    (unless `accuracy_only`), or a figure that is not a finite number."""
    why = []
    weights = old["model"].get("weights_sha256") is not None and new["model"].get("weights_sha256") is not None
    for key in _MODEL_KEYS + (() if weights else ("source",)):
        a, b = old["model"].get(key), new["model"].get(key)
        if key == "weights_sha256" and not weights:
            continue
        if a != b:
            why.append(f"model.{key} is {_shown(a)} in the baseline, {_shown(b)} here")
    digests = old["data"].get("sha256") is not None and new["data"].get("sha256") is not None
    for key in _DATA_KEYS + (() if digests else _DATA_PATH_KEYS):
        a, b = old["data"].get(key), new["data"].get(key)
        if key == "sha256" and not digests:
            continue
        if a != b:
            why.append(f"data.{key} is {_shown(a)} in the baseline, {_shown(b)} here")
    if not accuracy_only:
        caches = [{p["name"]: p["memory"].get("weight_cache") for p in r["programs"]} for r in (old, new)]
        for name in caches[0].keys() & caches[1].keys():
            if caches[0][name] != caches[1][name]:
                why.append(f"program {name!r} ran with weight_cache {caches[0][name]} in the baseline, "
                           f"{caches[1][name]} here: its memory does not compare")
    old_names, new_names = [p["name"] for p in old["programs"]], [p["name"] for p in new["programs"]]
    why += [f"program {n!r} is in the baseline but not here" for n in old_names if n not in new_names]
    why += [f"program {n!r} is here but not in the baseline" for n in new_names if n not in old_names]
    if not accuracy_only:
        for key in _LATENCY_KEYS:
            a, b = old["latency_settings"].get(key), new["latency_settings"].get(key)
            if a != b:
                why.append(f"latency_settings.{key} is {_shown(a)} in the baseline, {_shown(b)} here")
        a, b = (old["machine"].get("cpu"), old["machine"].get("cores")), (new["machine"].get("cpu"), new["machine"].get("cores"))
        if a != b:
            why.append(f"the machine is {a[0]} ({a[1]} cores) in the baseline, {b[0]} ({b[1]} cores) here: latency "
                       "and memory compare only on one machine kind (--accuracy-only checks the rest)")
    for label, report in (("the baseline", old), ("this report", new)):
        for p in report["programs"]:
            for name, value in _numbers(p):
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value)):
                    why.append(f"{p['name']}: {name} is {_shown(value)} in {label}, not a finite number")
    return why


def regressions(new: dict[str, Any], old: dict[str, Any], t: Thresholds) -> list[str]:
    """Every metric of every program that got worse by more than the thresholds allow, as
    'program: metric old -> new (change) exceeds --option limit'. The gate fails closed: reports
    that cannot be compared (:func:`not_comparable`) raise a HarnessError naming every difference."""
    why = not_comparable(new, old, t.accuracy_only)
    if why:
        raise HarnessError("the report cannot be held against the baseline: " + "; ".join(why))
    old_programs = {p["name"]: p for p in old["programs"]}
    found = []

    def check(name: str, metric: str, before: float | None, after: float | None, worse: float | None,
              limit: float, option: str, fmt: str, unit: str) -> None:
        if before is None or after is None or worse is None:
            return
        if option in ("max-latency-increase", "max-memory-increase") and t.accuracy_only:
            return
        if worse > limit:
            found.append(f"{name}: {metric} {format(before, fmt)} -> {format(after, fmt)} "
                         f"({'+' if worse > 0 else ''}{worse:.2f}{unit} worse) exceeds --{option} {limit:g}{unit}")

    for p in new["programs"]:
        q = old_programs[p["name"]]
        name = p["name"]
        for key, scale in (("accuracy", 100), ("macro_f1", 100), ("exact_match", 1), ("f1", 1)):
            a, b = (q["accuracy"] or {}).get(key), (p["accuracy"] or {}).get(key)
            if a is not None and b is not None:
                check(name, key.replace("_", "-"), scale * a, scale * b, scale * (a - b), t.max_accuracy_drop,
                      "max-accuracy-drop", ".2f", " points")
        qf, pf = q["fidelity"] or {}, p["fidelity"] or {}
        a = qf.get("answer_agreement", qf.get("top1_agreement"))
        b = pf.get("answer_agreement", pf.get("top1_agreement"))
        if a is not None and b is not None:
            check(name, "agreement", 100 * a, 100 * b, 100 * (a - b), t.max_agreement_drop, "max-agreement-drop",
                  ".2f", " points")
        for e in p["latency"]:
            before = _latency(q, e["threads"])
            if before is None:
                continue
            a, b = before["summary"].get("median_ms"), e["summary"].get("median_ms")
            if a and b:
                check(name, f"median latency at {e['threads']} thread(s), ms", a, b, 100 * (b / a - 1),
                      t.max_latency_increase, "max-latency-increase", ".2f", "%")
        a, b = q["memory"]["peak_cost_bytes"], p["memory"]["peak_cost_bytes"]
        if a > 0:
            check(name, "memory added, MB", a / 1e6, b / 1e6, 100 * (b / a - 1), t.max_memory_increase,
                  "max-memory-increase", ".1f", "%")
        a, b = _size(q), _size(p)
        if a and b:
            check(name, "size, MB", a / 1e6, b / 1e6, 100 * (b / a - 1), t.max_size_increase, "max-size-increase",
                  ".3f", "%")
    return found
