"""The early-exit section of a comparison report (its ``adaptive`` entry, made by
``adaptive_compare.adaptive_section``): report.md's tables per program and the trade-off plot.
Torch-free, as everything that redraws a report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PLOT = "adaptive_tradeoff.png"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def adaptive_lines(report: dict[str, Any]) -> list[str]:
    """One line per program for the terminal: the bundle's rule and the recommended setting, with
    accuracy, agreement, mean steps and latency against ``forward`` at the largest thread count."""
    a = report.get("adaptive")
    if not a:
        return []
    t = str(max(report["latency_settings"]["threads"]))
    out = []
    for p in a["programs"]:
        parts = []
        for label in dict.fromkeys([a["recorded_rule"], p["recommended"]]):
            s = next((s for s in p["settings"] if s["label"] == label), None)
            if s is None:
                continue
            lat = s["latency"].get(t)
            parts.append(f"{label}{' (bundle)' if label == a['recorded_rule'] else ''}"
                         f"{' (recommended here)' if label == p['recommended'] else ''}: acc {_pct(s.get('accuracy'))}, "
                         f"agree {_pct(s['agreement'])}, {s['mean_depth']:.2f}/{a['num_steps']} steps"
                         + (f", {lat['vs_forward']:.2f}x forward" if lat else ""))
        out.append(f"{p['name']}: " + "; ".join(parts))
    return out


def adaptive_markdown(report: dict[str, Any]) -> list[str]:
    """report.md's early-exit section (nothing for a bundle without ``adaptive``)."""
    a = report.get("adaptive")
    if not a:
        return []
    threads = [str(t) for t in report["latency_settings"]["threads"]]
    out = ["## Early exits (adaptive depth)", "",
           f"{a['num_steps']} layer steps; the bundle's rule: `{a['recorded_rule']}`. Accuracy, agreement "
           "(top-1 with the same program at full depth) and layer steps on every example; latency is the "
           f"mean per input over {len(a['timed_inputs'])} examples spread over the data (each input's "
           "median call), in the same workers as `forward`, interleaved. Ratios are to the program's "
           f"`forward` and to {report['reference']} on the same inputs.", ""]
    for p in a["programs"]:
        header = ["setting", "accuracy", "agreement", "mean steps", "p90 steps"]
        header += [f"{t}t ms (x forward, x {report['reference']})" for t in threads]
        rows = []
        for s in p["settings"]:
            cells = [s["label"], _pct(s.get("accuracy")), _pct(s["agreement"]),
                     f"{s['mean_depth']:.2f}", f"{s['p90_depth']:.0f}"]
            for t in threads:
                e = s["latency"].get(t)
                cells.append("n/a" if e is None else
                             f"{e['mean_ms']:.3f} ({e['vs_forward']:.2f}x, {e.get('vs_reference', float('nan')):.2f}x)")
            rows.append(cells)
        full = p["loop_full_depth"]
        if full:
            rows.append(["loop at full depth", "", "", str(a["num_steps"]), str(a["num_steps"])]
                        + [f"{full[t]['mean_ms']:.3f} ({full[t]['vs_forward']:.2f}x)" if t in full else "n/a"
                           for t in threads])
        out += [f"### {p['name']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
        rec = p["recommended"]
        out += ["", (f"Recommended for no accuracy loss on this data: **{rec}** (the fewest mean steps whose "
                     "agreement is >= 99.5% and whose accuracy is no lower than full depth)." if rec else
                     "No setting keeps agreement >= 99.5% without losing accuracy on this data: run at full depth."),
                ""]
    return out + [f"![accuracy against latency per exit setting]({PLOT})", ""]


def plot_adaptive(report: dict[str, Any], path: Path) -> None:
    """Accuracy (agreement when the data has no labels) against mean latency per input, one line
    per program through its settings, ordered by latency; full depth and the recommendation marked."""
    import matplotlib.pyplot as plt

    a = report["adaptive"]
    t = str(max(report["latency_settings"]["threads"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    metric = "accuracy" if all(s.get("accuracy") is not None for p in a["programs"] for s in p["settings"]) \
        else "agreement"
    for i, p in enumerate(a["programs"]):
        pts = sorted((s["latency"][t]["mean_ms"], 100 * s[metric], s["label"]) for s in p["settings"] if t in s["latency"])
        if not pts:
            continue
        line, = ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "o-", alpha=0.8, label=p["name"])
        for x, y, rule in pts:
            if rule == "full depth" or rule == p["recommended"]:
                ax.scatter([x], [y], s=120, facecolors="none", edgecolors=line.get_color(), linewidths=1.5)
                # Programs' points often share an accuracy: stagger the labels so none overlap.
                full = rule == "full depth"  # full depth's label right of its point, the recommendation's left
                ax.annotate("full" if full else rule, (x, y), textcoords="offset points", ha="left" if full else "right",
                            xytext=(6 if full else -6, -12 - 10 * i), fontsize=8, color=line.get_color())
    ax.set_xlabel(f"mean latency per input, {t} thread{'s' if t != '1' else ''} (ms)")
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{report['model']['source']}: early exits, {metric} against latency (one point per setting; "
                 "circled: full depth and the recommended setting)", fontsize=9)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    os.replace(tmp, path)
    plt.close(fig)
