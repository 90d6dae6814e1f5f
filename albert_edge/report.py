"""Render a comparison report (``albert_edge.harness``): terminal table, report.md and PNG plots.

Everything here reads only the report dict (``report.json``), so a report can be redrawn later
with ``albert-edge report DIR`` without rerunning anything.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from albert_edge._io import atomic_write_text, remove_stale_temps
from albert_edge.report_adaptive import PLOT as ADAPTIVE_PLOT
from albert_edge.report_adaptive import adaptive_lines, adaptive_markdown, plot_adaptive
from albert_edge.report_schema import write_report_json

PLOTS = ("latency_distribution.png", "latency_vs_length.png", "tradeoff.png")
# and, for a bundle with early exits, report_adaptive.PLOT
MD_FLIPS_LISTED = 20


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _sqnr(p: dict[str, Any]) -> str:
    f = p["fidelity"]
    if f is None:
        return "-"
    return "inf" if f["sqnr_db"] is None else f"{f['sqnr_db']:.1f}"


def _latency(p: dict[str, Any], threads: int) -> dict[str, Any] | None:
    return next((e for e in p["latency"] if e["threads"] == threads), None)


def _examples(d: dict[str, Any]) -> str:
    """"N examples", or for question answering "N questions (M windows)"."""
    if d.get("questions") is not None:
        return f"{d['questions']} questions ({d['rows']} windows)"
    return f"{d['rows']} examples"


def _is_qa(report: dict[str, Any]) -> bool:
    return report["model"]["task"] == "question-answering"


def _scores(p: dict[str, Any]) -> tuple[float | None, float | None]:
    """(accuracy, macro-F1), or for question answering (exact match, F1), as fractions."""
    acc = p["accuracy"] or {}
    if "exact_match" in acc:
        return acc["exact_match"] / 100, acc["f1"] / 100
    return acc.get("accuracy"), acc.get("macro_f1")


def _agreement(p: dict[str, Any]) -> float | None:
    """Top-1 agreement with eager fp32, or for question answering the share of the same answers."""
    fid = p["fidelity"] or {}
    return fid.get("answer_agreement", fid.get("top1_agreement"))


def _quality(p: dict[str, Any]) -> tuple[str, float | None]:
    """The y-axis of the trade-off plot: accuracy (QA: F1) when scored, else agreement with fp32 eager."""
    acc = p["accuracy"] or {}
    if "exact_match" in acc:
        return "F1", acc["f1"] / 100
    if "accuracy" in acc:
        return "accuracy", acc["accuracy"]
    if p["fidelity"] is not None:
        return "agreement with eager fp32", _agreement(p)
    return "agreement with eager fp32", 1.0


def summary_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the one-line-per-program summary (terminal and markdown)."""
    threads = report["latency_settings"]["threads"]
    qa = _is_qa(report)
    header = ["program", "size MB", "x fp32", *(("EM", "F1") if qa else ("accuracy", "macro-F1")), "agreement",
              "SQNR dB", "changed" if qa else "flips"]
    for t in threads:
        header += [f"p50 ms {t}t", f"p90 ms {t}t", f"p99 ms {t}t"]
    without = any(p["memory"]["without_cache"] for p in report["programs"])
    header += ["adds MB"] + (["w/o cache"] if without else []) + ["load ms"]
    rows = []
    for p in report["programs"]:
        a, f1 = _scores(p)
        size = p["size"]
        row = [p["name"], _mb(size["bytes"] if size["bytes"] is not None else size["parameter_bytes"]),
               _num(size["compression_vs_fp32"]), _pct(a), _pct(f1) if qa else _num(f1, ".3f"),
               _pct(_agreement(p)) if p["fidelity"] else "reference", _sqnr(p),
               str(p["flips"]["count"]) if p["flips"] else "-"]
        for t in threads:
            e = _latency(p, t)
            s = e["summary"] if e else {}
            row += [_num(s.get("median_ms")) + _flag(e), _num(s.get("p90_ms")), _num(s.get("p99_ms"))]
        mem = p["memory"]
        row += [_mb(mem["peak_cost_bytes"])]
        if without:
            row += [_mb(mem["without_cache"]["peak_cost_bytes"]) if mem["without_cache"] else "-"]
        last = _latency(p, mem["threads"])
        row += [_num(last["load_s"] * 1e3, ".0f") if last else "-"]
        rows.append(row)
    return header, rows


def _flag(e: dict[str, Any] | None) -> str:
    return " !" if e and e.get("quality", {}).get("unstable") else ""


def quality_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Size and what quantization costs in quality, one row per program."""
    qa = _is_qa(report)
    header = ["program", "MB", "x fp32", "EM" if qa else "acc", "F1", "agree", "SQNR", "changed" if qa else "flips"]
    rows = []
    for p in report["programs"]:
        size = p["size"]
        a, f1 = _scores(p)
        rows.append([p["name"], _mb(size["bytes"] if size["bytes"] is not None else size["parameter_bytes"]),
                     _num(size["compression_vs_fp32"], ".2f") + ("x" if size["compression_vs_fp32"] else ""),
                     _pct(a), _pct(f1) if qa else _num(f1, ".3f"),
                     _pct(_agreement(p)) if p["fidelity"] else "ref", _sqnr(p),
                     str(p["flips"]["count"]) if p["flips"] else "-"])
    return header, rows


def latency_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Median latency ± half the interquartile range at each thread count; ! = unstable."""
    threads = report["latency_settings"]["threads"]
    header = ["program", *[f"{t} thread{'s' if t > 1 else ''}, ms" for t in threads]]
    rows = []
    for p in report["programs"]:
        row = [p["name"]]
        for t in threads:
            e = _latency(p, t)
            s = e["summary"] if e else {}
            spread = e.get("quality", {}).get("iqr_ms") if e else None
            row.append("-" if not s.get("median_ms") else
                       f"{s['median_ms']:.2f}" + (f" ±{spread / 2:.2f}" if spread is not None else "") + _flag(e))
        rows.append(row)
    return header, rows


def memory_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The RSS a program adds at its peak (and without the weight cache), and its load time."""
    without = any(p["memory"]["without_cache"] for p in report["programs"])
    header = ["program", "adds MB", *(["without cache"] if without else []), "load ms"]
    rows = []
    for p in report["programs"]:
        mem = p["memory"]
        row = [p["name"], _num(mem["peak_cost_bytes"] / 1e6, ".1f")]
        if without:
            row.append(_num(mem["without_cache"]["peak_cost_bytes"] / 1e6, ".1f") if mem["without_cache"] else "-")
        last = _latency(p, mem["threads"])
        row.append(_num(last["load_s"] * 1e3, ".0f") if last else "-")
        rows.append(row)
    return header, rows


def _caption(report: dict[str, Any]) -> str:
    """What the columns are (the tables' headers are kept short to fit 80 columns)."""
    gc = " with Python's garbage collector off" if report["latency_settings"].get("gc_disabled_while_timed") else ""
    scores = ("EM, F1: SQuAD exact match and F1 on the questions; agree: questions answered as eager fp32 "
              "answers them; changed: the others" if _is_qa(report) else
              "acc, F1: accuracy and macro-F1 on the data; agree: top-1 agreement with eager fp32")
    return (f"MB: size on disk; x fp32: the fp32 program's size / this size; {scores}; SQNR in dB. Latency: median ± half the "
            f"interquartile range over {_timed_calls(report)} timed calls per program, batch 1, each program in "
            f"its own process{gc}; ! = unstable timing (below); adds MB = peak RSS the program adds to its "
            f"process (no cache: without XNNPACK's weight cache). {report['machine']['cpu']}, "
            f"{report['machine']['cores']} cores.")


def print_report(report: dict[str, Any], console: Any = None) -> None:
    """The verdict, then tables of quality, latency and memory, sized to the terminal (rich takes
    the width from the terminal or $COLUMNS; each stays within 80 columns for up to five thread
    counts), then what made a timing unstable. Full detail is in report.md and report.json."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from albert_edge.verdict import UNSTABLE_ADVICE, unstable_timings, verdict_lines

    console = console or Console()
    m, d = report["model"], report["data"]
    console.print(f"[bold]{m['source']}[/bold] ({m['task']}) on {_examples(d)} of {d['source']}")
    lines = verdict_lines(report)
    if lines:
        console.print("[bold]Verdict[/bold]")
        for line in lines:
            console.print(f"- {line}")
    tables = (("quality", quality_table(report)), ("latency", latency_table(report)), ("memory", memory_table(report)))
    for title, (header, rows) in tables:
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), title_justify="left")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for r in rows:
            table.add_row(*r)
        console.print(table)
    early = adaptive_lines(report)
    if early:
        console.print(f"[bold]Early exits[/bold] (latency at {max(report['latency_settings']['threads'])} "
                      "thread(s); every setting in report.md)")
        for line in early:
            console.print(f"- {line}")
    console.print(_caption(report), style="dim")
    flagged = unstable_timings(report)
    if flagged:
        console.print("[bold]Unstable timings[/bold] (" + UNSTABLE_ADVICE + "):")
        for line in flagged:
            console.print(f"- {line}")


def _timed_calls(report: dict[str, Any]) -> int:
    s = report["latency_settings"]
    return len(s["timed_inputs"]) * s["rounds"] * s["runs_per_round"]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return out


def markdown(report: dict[str, Any]) -> str:
    m, d, mach, ls = report["model"], report["data"], report["machine"], report["latency_settings"]
    from albert_edge.verdict import UNSTABLE_ADVICE, unstable_timings, verdict_lines

    lines = [f"# albert-edge compare: {m['source']}", ""]
    verdict = verdict_lines(report)
    if verdict:
        lines += ["## Verdict", ""] + [f"- {v}" for v in verdict] + [""]
    flagged = unstable_timings(report)
    if flagged:
        lines += [f"**Unstable timings** ({UNSTABLE_ADVICE}); these figures are marked ! below:", ""]
        lines += [f"- {f}" for f in flagged] + [""]
    lines += ["## Setup", "",
             f"- Model: `{m['source']}` ({m['architecture']}, task {m['task']}, labels {', '.join(m['labels'])}, "
             f"max_seq_len {m['max_seq_len']}){' — random weights' if m['random_weights'] else ''}",
             f"- Bundle: `{report['bundle']}`; reference: eager PyTorch fp32",
             f"- Data: {d['source']}: {_examples(d)}; token lengths {d['token_lengths']['min']}-"
             f"{d['token_lengths']['max']} (median {d['token_lengths']['median']:g}); {d['truncated']} truncated",
             f"- Machine: {mach['cpu']}, {mach['cores']} cores; Python {mach['python']}, torch {mach['torch']}, "
             f"executorch {mach['executorch']}",
             f"- Latency: batch 1; each program in its own process; {ls['warmup']} warm-up call(s) per input, then "
             f"{ls['rounds']} rounds x {ls['runs_per_round']} calls on {len(ls['timed_inputs'])} inputs "
             f"({ls['data_inputs']} from the data, spread over its lengths, and probes of "
             f"{', '.join(map(str, ls['probe_lengths']))} tokens), programs interleaved round by round"
             + ("; Python's garbage collector off during the timed calls" if ls.get("gc_disabled_while_timed") else ""),
             f"- Written by {report['created_by']} at {report['created_at']} in {report['seconds']:.0f} s", ""]
    if d["accuracy_skipped"]:
        lines += [f"Accuracy is not reported: {d['accuracy_skipped']}.", ""]
    lines += ["## Summary", ""]
    header, rows = summary_rows(report)
    lines += _md_table(header, rows) + [""]
    lines += ["![latency distribution](latency_distribution.png)", "",
              "![latency vs sequence length](latency_vs_length.png)", "", "![trade-off](tradeoff.png)", ""]

    lines += ["## Size", ""]
    lines += _md_table(["program", "file bytes", "parameter bytes", "x fp32"],
                       [[p["name"], p["size"]["bytes"] if p["size"]["bytes"] is not None else "-",
                         p["size"]["parameter_bytes"], _num(p["size"]["compression_vs_fp32"])]
                        for p in report["programs"]]) + [""]
    lines += ["Eager fp32: the weights file and the unique parameters (shared layers once) x 4 bytes; "
              ".pte: the file and its segment data (weights and delegate payloads).", ""]

    lines += _memory_md(report)

    scored = [p for p in report["programs"] if p["accuracy"] is not None]
    if scored and _is_qa(report):
        lines += _qa_accuracy_md(scored)
    elif scored:
        lines += ["## Accuracy", ""]
        if "accuracy" in scored[0]["accuracy"]:
            labels = scored[0]["accuracy"]["labels"]
            lines += _md_table(["program", "accuracy", "macro-F1"] + [f"{lab} P/R/F1" for lab in labels],
                               [[p["name"], _pct(p["accuracy"]["accuracy"]), _num(p["accuracy"]["macro_f1"], ".4f")]
                                + ["/".join(f"{p['accuracy']['per_class'][str(lab)][k]:.3f}"
                                            for k in ("precision", "recall", "f1")) for lab in labels]
                                for p in scored]) + [""]
            for p in scored:
                lines += [f"Confusion matrix, {p['name']} (rows: true, columns: predicted)", ""]
                lines += _md_table([""] + [str(x) for x in labels],
                                   [[str(lab)] + row for lab, row in zip(labels, p["accuracy"]["confusion_matrix"])])
                lines += [""]
        else:
            lines += _md_table(["program", "Pearson", "Spearman"],
                               [[p["name"], _num(p["accuracy"]["pearson"], ".4f"),
                                 _num(p["accuracy"]["spearman"], ".4f")] for p in scored]) + [""]

    lines += ["## Fidelity against eager fp32", ""]
    lines += _md_table(["program", "same answer" if _is_qa(report) else "top-1 agreement", "cosine", "SQNR dB",
                        "max abs diff", "changed" if _is_qa(report) else "flips"],
                       [[p["name"], _pct(_agreement(p)), f"{p['fidelity']['cosine']:.6f}",
                         _sqnr(p), f"{p['fidelity']['max_abs_diff']:.3g}",
                         p["flips"]["count"] if p["flips"] else "-"]
                        for p in report["programs"] if p["fidelity"]]) + [""]
    for p in report["programs"]:
        if p["flips"] and p["flips"]["count"] and _is_qa(report):
            shown = p["flips"]["listed"][:MD_FLIPS_LISTED]
            lines += [f"Changed answers, {p['name']} ({p['flips']['count']}; {len(shown)} shown, all in report.json):", ""]
            lines += _md_table(["id", "question", "gold", "eager fp32", p["name"]],
                               [[f["id"], f["question"][:100], " / ".join(f["gold"])[:40] or "(none)",
                                 (f["reference"] or "(no answer)") + (" ✓" if f["reference_exact"] else ""),
                                 (f["program"] or "(no answer)") + (" ✓" if f["program_exact"] else "")]
                                for f in shown]) + [""]
        elif p["flips"] and p["flips"]["count"]:
            shown = p["flips"]["listed"][:MD_FLIPS_LISTED]
            lines += [f"Label flips, {p['name']} ({p['flips']['count']}; {len(shown)} shown, all in report.json):", ""]
            lines += _md_table(["row", "text", "label", "eager fp32", p["name"]],
                               [[f["row"], f["text"][:120], f["label"],
                                 f"{f['reference']} ({max(f['reference_probs']):.3f})",
                                 f"{f['program']} ({max(f['program_probs']):.3f})"] for f in shown]) + [""]

    lines += ["## Latency", ""]
    for t in ls["threads"]:
        lines += [f"### {t} thread{'s' if t > 1 else ''}", ""]
        rows = []
        for p in report["programs"]:
            e = _latency(p, t)
            if e is None:
                continue
            s = e["summary"]
            m = e["memory"]
            rows.append([p["name"], _num(s["median_ms"]) + _flag(e), _num(s["p90_ms"]), _num(s["p99_ms"]),
                         _num(s["mean_ms"]), _num(s["std_ms"]), s["n"], _num(e["load_s"] * 1e3, ".0f"),
                         _num(e["first_inference_s"] * 1e3, ".1f"),
                         f"{_mb(m['load_cost_bytes'])} / {_mb(m['peak_cost_bytes'])}"])
        lines += _md_table(["program", "median ms", "p90", "p99", "mean", "std", "calls", "load ms", "first call ms",
                            "RSS added MB: load / peak"], rows) + [""]
        bucket_names = [f"{lo}-{hi}" for lo, hi in ls["buckets"]]
        rows = []
        for p in report["programs"]:
            e = _latency(p, t)
            if e is None:
                continue
            by = {f"{b['bucket'][0]}-{b['bucket'][1]}": b for b in e["by_bucket"]}
            rows.append([p["name"]] + [f"{by[b]['median_ms']:.2f} / {by[b]['p90_ms']:.2f}" if b in by else "-"
                                       for b in bucket_names])
        lines += ["Median / p90 ms by actual token length:", ""]
        lines += _md_table(["program"] + [f"{b} tokens" for b in bucket_names], rows) + [""]
    lines += adaptive_markdown(report)
    for p in report["programs"]:
        for e in p["latency"]:
            if e.get("profile"):
                lines += _profile_md(p["name"], e["threads"], e["profile"])
    return "\n".join(lines) + "\n"


def _memory_md(report: dict[str, Any]) -> list[str]:
    """The memory section: what each program adds to its process, with and without the cache."""
    lines = ["## Memory", ""]
    rows = []
    for p in report["programs"]:
        for e in sorted(p["latency"], key=lambda x: x["threads"]):
            m = e["memory"]
            cache = {True: "on", False: "off", None: "-"}[m["weight_cache"]]
            rows.append([p["name"], e["threads"], cache, _mb(m["rss_after_imports_bytes"]), _mb(m["load_cost_bytes"]),
                         _mb(m["first_call_cost_bytes"]), _mb(m["peak_cost_bytes"])])
        w = p["memory"]["without_cache"]
        if w:
            rows.append([p["name"], w["threads"], "off", "-", _mb(w["load_cost_bytes"]),
                         _mb(w["first_call_cost_bytes"]), _mb(w["peak_cost_bytes"])])
    lines += _md_table(["program", "threads", "weight cache", "RSS after imports MB", "+ after load MB",
                        "+ after first call MB", "+ peak MB"], rows) + [""]
    lines += ["Each (program, thread count) runs in its own process. \"+\" columns: RSS the program adds over its "
              "process just before the load (imports done, inputs read); the peak covers the load, the first "
              "call and the timed calls. Weight cache: XNNPACK's packed-weights cache, which packs ALBERT's "
              "shared layer once instead of once per layer step (on in ExecuTorch's Android and iOS builds).", ""]
    if not all(e["memory"]["peak_reset"] for p in report["programs"] for e in p["latency"]):
        lines += ["The kernel did not let the workers reset their peak RSS: peaks count from process start.", ""]
    return lines


def _profile_md(name: str, threads: int, profile: dict[str, Any]) -> list[str]:
    rows = [[o["name"], "yes" if o["delegated"] else "no", o["calls"], f"{o['total_ms']:.2f}",
             f"{100 * o['share']:.1f}%"] for o in profile.get("operators", [])[:15]]
    out = [f"### Where the time goes: {name}, {threads} thread(s) (ETDump)", ""]
    out += _md_table(["operator", "delegated", "calls", "total ms", "share"], rows)
    if profile.get("notes"):
        out += ["", str(profile["notes"])]
    return out + [""]


# ---- plots --------------------------------------------------------------------------------------


def _colors(report: dict[str, Any]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {p["name"]: cmap(i % 10) for i, p in enumerate(report["programs"])}


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    os.replace(tmp, path)


def plot_latency_distribution(report: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    threads = report["latency_settings"]["threads"]
    colors = _colors(report)
    fig, axes = plt.subplots(1, len(threads), figsize=(5.5 * len(threads), 4.2), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], threads):
        names, data = [], []
        for p in report["programs"]:
            e = _latency(p, t)
            if e is not None:
                names.append(p["name"])
                data.append([x for pi in e["per_input"] for x in pi["times_ms"]])
        parts = ax.violinplot(data, showmedians=False, showextrema=False)
        for body, n in zip(parts["bodies"], names):
            body.set_facecolor(colors[n])
            body.set_alpha(0.35)
        ax.boxplot(data, widths=0.15, showfliers=False, medianprops={"color": "black"})
        for i, d in enumerate(data, 1):
            med = statistics.median(d)  # the table's median (numpy's), not the upper middle value
            ax.annotate(f"{med:.1f}", (i + 0.12, med), fontsize=8, va="center")
        ax.set_xticks(range(1, len(names) + 1), names)
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.set_ylabel("latency per call (ms)")
        ax.grid(axis="y", alpha=0.3)
        if data and max(map(max, data)) / max(min(map(min, data)), 1e-9) > 30:
            ax.set_yscale("log")
    fig.suptitle(f"{report['model']['source']}: latency of every timed call (batch 1; box: quartiles, "
                 f"label: median)", fontsize=10)
    _save(fig, path)
    plt.close(fig)


def plot_latency_vs_length(report: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    threads = report["latency_settings"]["threads"]
    colors = _colors(report)
    fig, axes = plt.subplots(1, len(threads), figsize=(5.5 * len(threads), 4.2), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], threads):
        for p in report["programs"]:
            e = _latency(p, t)
            if e is None:
                continue
            pts = sorted((pi["seq_len"], statistics.median(pi["times_ms"]), pi["source"]) for pi in e["per_input"])
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "-", color=colors[p["name"]], alpha=0.6,
                    label=p["name"])
            ax.scatter([x for x, _, s in pts if s == "data"], [y for _, y, s in pts if s == "data"],
                       color=colors[p["name"]], s=14)
            ax.scatter([x for x, _, s in pts if s == "probe"], [y for _, y, s in pts if s == "probe"],
                       color=colors[p["name"]], marker="D", s=22, edgecolors="black", linewidths=0.5)
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.set_xlabel("tokens in the input ([CLS] and [SEP] included)")
        ax.set_ylabel("median latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report['model']['source']}: latency vs sequence length (dots: data, diamonds: probes)",
                 fontsize=10)
    _save(fig, path)
    plt.close(fig)


def plot_tradeoff(report: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    threads = report["latency_settings"]["threads"]
    t = max(threads)
    colors = _colors(report)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    ylabel = "accuracy"
    for i, p in enumerate(report["programs"]):
        ylabel, q = _quality(p)
        size = p["size"]["bytes"] if p["size"]["bytes"] is not None else p["size"]["parameter_bytes"]
        e = _latency(p, t)
        med = e["summary"]["median_ms"] if e else None
        for ax, x in ((a1, size / 1e6), (a2, med)):
            if x is None or q is None:
                continue
            ax.scatter([x], [q], color=colors[p["name"]], s=60, zorder=3)
            # Programs often share a size or an accuracy: stagger the labels so none overlap.
            ax.annotate(p["name"], (x, q), textcoords="offset points", xytext=(6, 4 + 11 * (i % 3)), fontsize=9)
    a1.set_xlabel("size on disk (MB; eager: weights file)")
    a2.set_xlabel(f"median latency, {t} thread{'s' if t > 1 else ''} (ms)")
    a1.set_ylabel(ylabel)
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
        lo, hi = ax.get_ylim()
        pad = max(0.002, (hi - lo) * 0.15)
        ax.set_ylim(lo - pad, hi + pad)
    fig.suptitle(f"{report['model']['source']}: {ylabel} vs size vs latency (one point per program)", fontsize=10)
    _save(fig, path)
    plt.close(fig)


def write_report(report: dict[str, Any], out: str | os.PathLike) -> dict[str, Path]:
    """report.json (validated), report.md and the three plots (four with early exits) into ``out``: all of them are made
    in a temporary folder inside ``out`` first and only then renamed into place, so a failure
    (a full disk) leaves the previous files as they were, never part of a new set."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out / "report", out)  # staging folders of killed runs
    staging = Path(tempfile.mkdtemp(prefix=f".report.{os.getpid()}.", suffix=".tmp", dir=out))
    try:
        made = {"json": write_report_json(report, staging), "md": staging / "report.md"}
        for name, draw in zip(PLOTS, (plot_latency_distribution, plot_latency_vs_length, plot_tradeoff)):
            made[name] = staging / name
            draw(report, made[name])
        if report.get("adaptive"):
            made[ADAPTIVE_PLOT] = staging / ADAPTIVE_PLOT
            plot_adaptive(report, made[ADAPTIVE_PLOT])
        atomic_write_text(made["md"], markdown(report))
        paths = {}
        for key, path in made.items():  # renames: no new space is needed from here on
            paths[key] = out / path.name
            os.replace(path, paths[key])
        if not report.get("adaptive"):  # an earlier comparison's, of another bundle
            (out / ADAPTIVE_PLOT).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def _qa_accuracy_md(scored: list[dict[str, Any]]) -> list[str]:
    """Exact match and F1 per program, with the has-answer / no-answer split when the data has both."""
    split = "has_answer" in scored[0]["accuracy"]
    header = ["program", "questions", "EM", "F1"] + (["has-answer EM / F1", "no-answer EM / F1"] if split else [])
    rows = []
    for p in scored:
        a = p["accuracy"]
        row = [p["name"], a["questions"], f"{a['exact_match']:.2f}", f"{a['f1']:.2f}"]
        if split:
            row += [f"{a[k]['exact_match']:.2f} / {a[k]['f1']:.2f}" for k in ("has_answer", "no_answer")]
        rows.append(row)
    return ["## Question answering (SQuAD exact match and F1, %)", "", *_md_table(header, rows), ""]
