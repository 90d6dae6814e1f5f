"""``albert-edge compare`` and ``albert-edge report``: thin commands over :mod:`albert_edge.harness`
and :mod:`albert_edge.report`."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from albert_edge.cli_args import add_weight_cache_flag


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 1,2") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a finite number >= 0")
    return value


def cmd_compare(args: argparse.Namespace) -> None:
    """Compare eager fp32 with every program of a bundle; print the table, write the report."""
    from albert_edge.harness import DataSettings, LatencySettings, compare
    from albert_edge.report import print_report

    out = Path(args.out) if args.out else Path("out/compare") / Path(str(args.target)).name
    report = compare(
        args.target, out=out, model=args.model, head=args.head,
        data=DataSettings(args.data, args.text_column, args.label_column, args.text_pair_column, args.limit),
        latency=LatencySettings(threads=args.threads, warmup=args.warmup, rounds=args.rounds, runs=args.runs,
                                data_inputs=args.latency_inputs, probe_lengths=args.probe_lengths),
        recipes=args.recipes, max_seq_len=args.max_seq_len, tokenizer=args.tokenizer,
        jobs=args.jobs, profile=args.profile, progress=not args.quiet, weight_cache=args.weight_cache,
        memory_without_cache=args.memory_without_cache)
    print_report(report)
    print(f"report: {out / 'report.md'} (raw figures: {out / 'report.json'}; plots: {out}/*.png)")


def cmd_report(args: argparse.Namespace) -> int:
    """Redraw report.md and the plots from a report.json and print the verdict and tables; with
    --baseline, exit 1 naming every metric that regressed beyond the thresholds."""
    from albert_edge._io import check_writable
    from albert_edge.errors import HarnessError
    from albert_edge.report import print_report, write_report
    from albert_edge.report_schema import read_report
    from albert_edge.verdict import Thresholds, regressions

    report = read_report(args.report)
    old = read_report(args.baseline) if args.baseline is not None else None
    out = Path(args.report)
    out = out if out.is_dir() else out.parent
    check_writable(out, "the report's folder", HarnessError)  # report.md and the plots are redrawn there
    write_report(report, out)
    print_report(report)
    print(f"report: {out / 'report.md'}")
    if old is None:
        return 0
    thresholds = Thresholds(args.max_accuracy_drop, args.max_agreement_drop, args.max_latency_increase,
                            args.max_memory_increase, args.max_size_increase, accuracy_only=args.accuracy_only)
    found = regressions(report, old, thresholds)  # a HarnessError (exit 2) where the reports differ in kind
    print(f"against the baseline {args.baseline}"
          + (": accuracy, agreement and size only (--accuracy-only)" if args.accuracy_only else ""))
    for line in found:
        print(f"REGRESSION {line}")
    if found:
        print(f"albert-edge: {len(found)} regression(s) against {args.baseline}", file=sys.stderr)
        return 1
    print("no regression beyond the thresholds")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from albert_edge.config import HEADS
    from albert_edge.recipes import RECIPES

    p = sub.add_parser(
        "compare", help="compare float and quantized programs: accuracy, fidelity, latency, size, memory",
        description="Compare the eager PyTorch fp32 model with every program of a bundle (exported first "
                    "when a model is given): accuracy on labelled data, fidelity against fp32 (agreement, "
                    "cosine, SQNR, flipped labels), latency percentiles per thread count and token length "
                    "(each program timed in its own process, interleaved), load time, peak RSS and size; for "
                    "a bundle with early exits, every exit setting's accuracy, agreement, layer steps and "
                    "latency against full depth, and the setting that loses no accuracy. "
                    "Prints a table and writes report.json, report.md and PNG plots. See docs/compare.md.")
    p.add_argument("target", metavar="BUNDLE_OR_MODEL",
                   help="a bundle folder (then --model names its model), or a model to export first: a "
                        "checkpoint directory, 'default', or a preset name (random weights, e.g. albert-base-v2)")
    p.add_argument("--model", default=None, help="with a bundle: the model it was exported from (the fp32 reference)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default out/compare/<name>): new, empty, or an earlier comparison's (its "
                        "report is replaced); one run at a time; a model is exported to DIR/bundle")
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None, metavar="FILE",
                   help="labelled CSV, TSV or JSON Lines; 'default' = the default model's evaluation set (tweet "
                        "sentiment test split; needs `make corpora`), which is also the default for 'default' "
                        "and for presets")
    g.add_argument("--text-column", default="text", help="default 'text'")
    g.add_argument("--text-pair-column", default=None, help="second text of a pair, if any")
    g.add_argument("--label-column", default="label", help="default 'label'")
    g.add_argument("--limit", type=int, default=None, help="use the first N rows")
    g = p.add_argument_group("latency")
    g.add_argument("--threads", type=_ints, default=(1, 2), help="thread counts, comma-separated, each 1 to 8 per CPU (default 1,2)")
    g.add_argument("--warmup", type=int, default=2, help="untimed calls per latency input first (default 2)")
    g.add_argument("--rounds", type=int, default=5, help="rounds; programs are interleaved in each (default 5)")
    g.add_argument("--runs", type=int, default=2, help="timed calls per input per round (default 2)")
    g.add_argument("--latency-inputs", type=int, default=12,
                   help="data examples timed, spread over the token lengths (default 12)")
    g.add_argument("--probe-lengths", type=_ints, default=None,
                   help="also time inputs of exactly these lengths (default 16,32,64,... up to max_seq_len)")
    g.add_argument("--profile", action="store_true", help="per-operator time of each program from ETDump")
    g = p.add_argument_group("memory")
    add_weight_cache_flag(g)
    g.add_argument("--memory-without-cache", action="store_true",
                   help="also load each program once more with the weight cache off (its own process) and "
                        "report the memory it adds then: what packing the shared layer once saves")
    g = p.add_argument_group("export (when a model is given)")
    g.add_argument("--recipe", dest="recipes", action="append", choices=list(RECIPES), metavar="RECIPE",
                   help="repeat for several programs (default: fp32 and int8)")
    g.add_argument("--max-seq-len", type=int, default=None, help="longest input in tokens (default 128)")
    g.add_argument("--head", choices=sorted(HEADS), default=None,
                   help="model head; default: the checkpoint's, or 'base' for a preset")
    g.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="a checkpoint directory, spiece.model file or 'default', for a model without one")
    g.add_argument("--jobs", type=int, default=1, help="processes lowering recipes in parallel (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="redraw a comparison report (report.md, plots) from its report.json",
                       description="Read a report.json written by `albert-edge compare`, rewrite report.md and "
                                   "the plots next to it, and print the summary table.")
    p.add_argument("report", metavar="REPORT", help="a report.json or the folder holding it")
    g = p.add_argument_group("regression gate (for CI)")
    g.add_argument("--baseline", default=None, metavar="OLD",
                   help="an earlier report.json (or its folder) to compare with: exit 1 and name every program "
                        "and metric that got worse than the thresholds allow; exit 2 naming every difference "
                        "where the two cannot be compared (another model, data set, program list, timing "
                        "settings or machine kind, or a figure that is not a number)")
    g.add_argument("--accuracy-only", action="store_true",
                   help="check accuracy, agreement and size only, for a baseline from another machine kind")
    g.add_argument("--max-accuracy-drop", type=_threshold, default=0.5, metavar="POINTS",
                   help="accuracy or macro-F1 may drop by this many percentage points (default 0.5)")
    g.add_argument("--max-agreement-drop", type=_threshold, default=0.5, metavar="POINTS",
                   help="top-1 agreement with eager fp32 may drop by this many points (default 0.5)")
    g.add_argument("--max-latency-increase", type=_threshold, default=10.0, metavar="PERCENT",
                   help="median latency at each thread count may grow by this much (default 10)")
    g.add_argument("--max-memory-increase", type=_threshold, default=10.0, metavar="PERCENT",
                   help="the memory a program adds may grow by this much (default 10)")
    g.add_argument("--max-size-increase", type=_threshold, default=1.0, metavar="PERCENT",
                   help="a program's file may grow by this much (default 1)")
    p.set_defaults(func=cmd_report)
