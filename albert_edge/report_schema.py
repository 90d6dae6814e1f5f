"""The comparison report's schema (``report.json``, docs/compare.md): write, validate, read.

``albert_edge.harness`` assembles a report, ``albert_edge.report`` draws it; this module is the
one place that says what a report holds. It imports neither torch nor ExecuTorch, so
``albert-edge report DIR`` redraws a report without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from albert_edge._io import atomic_write_json, read_json_strictly
from albert_edge.errors import HarnessError

REPORT_FORMAT = "albert-edge-compare-report"
REPORT_SCHEMA_VERSION = 2  # 2: memory per worker and per program (weight cache on / off)
REPORT_FILE = "report.json"

# The schema (docs/compare.md) as required keys and their JSON types; checked on read and write.
_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_SCHEMA: dict[str, dict[str, Any]] = {
    "report": {"format": str, "schema_version": int, "created_by": str, "created_at": str, "seconds": _NUM,
               "model": dict, "bundle": str, "reference": str, "data": dict, "machine": dict,
               "latency_settings": dict, "programs": list},
    "model": {"source": str, "task": str, "architecture": str, "labels": list, "random_weights": bool,
              "max_seq_len": int, "vocab_size": int},
    "data": {"source": str, "rows": int, "truncated": int, "token_lengths": dict, "gold": (list, type(None))},
    "latency_settings": {"threads": list, "warmup": int, "rounds": int, "runs_per_round": int,
                         "data_inputs": int, "probe_lengths": list, "buckets": list, "timed_inputs": list},
    "program": {"name": str, "kind": str, "size": dict, "latency": list, "memory": dict,
                "predictions": (list, type(None)),
                "accuracy": (dict, type(None)), "fidelity": (dict, type(None)), "flips": (dict, type(None))},
    "program_memory": {"threads": int, "weight_cache": (bool, type(None)), "load_cost_bytes": int,
                       "first_call_cost_bytes": int, "peak_cost_bytes": int, "without_cache": (dict, type(None))},
    "memory": {"weight_cache": (bool, type(None)), "peak_reset": bool, "rss_after_imports_bytes": int,
               "rss_after_load_bytes": int, "rss_after_first_call_bytes": int, "peak_load_bytes": int,
               "peak_timed_bytes": int, "load_cost_bytes": int, "first_call_cost_bytes": int, "peak_cost_bytes": int},
    "size": {"bytes": (int, type(None)), "parameter_bytes": int, "compression_vs_fp32": _OPT_NUM},
    "fidelity": {"top1_agreement": _OPT_NUM, "cosine": _NUM, "sqnr_db": _OPT_NUM, "max_abs_diff": _NUM},
    "latency": {"threads": int, "load_s": _NUM, "first_inference_s": _NUM, "memory": dict, "summary": dict,
                "by_bucket": list, "per_input": list, "quality": dict},
    "quality": {"iqr_ms": _NUM, "outlier_share": _NUM, "round_drift": _NUM, "cpu_steal_share": _OPT_NUM,
                "unstable": bool, "reasons": list},
    "summary": {"n": int, "median_ms": _NUM, "p90_ms": _NUM, "p99_ms": _NUM, "mean_ms": _NUM, "std_ms": _NUM},
    "per_input": {"input": int, "source": str, "seq_len": int, "times_ms": list},
}


# Figures inside a program's accuracy (which differ by task) that must be numbers where present.
_ACCURACY_NUMBERS = ("accuracy", "macro_f1", "exact_match", "f1", "pearson", "spearman", "n", "questions")


def validate_report(report: Any, where: str = "report") -> None:
    """HarnessError naming the first missing or mistyped field (e.g. ``programs[1].latency[0].summary.p90_ms``)."""

    def check(obj: Any, kind: str, path: str) -> None:
        if not isinstance(obj, dict):
            raise HarnessError(f"{where}: {path} must be an object")
        for key, types in _SCHEMA[kind].items():
            if key not in obj:
                raise HarnessError(f"{where}: {path}.{key} is missing")
            if not isinstance(obj[key], types) or (isinstance(obj[key], bool) and bool not in (
                    types if isinstance(types, tuple) else (types,))):
                raise HarnessError(f"{where}: {path}.{key} has type {type(obj[key]).__name__}")

    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise HarnessError(f"{where}: not an albert-edge comparison report (format must be {REPORT_FORMAT!r})")
    if report.get("schema_version") != REPORT_SCHEMA_VERSION:
        raise HarnessError(f"{where}: schema_version {report.get('schema_version')!r}; this albert-edge reads "
                           f"version {REPORT_SCHEMA_VERSION}")
    check(report, "report", "report")
    for key in ("model", "data", "latency_settings"):
        check(report[key], key, key)
    for i, p in enumerate(report["programs"]):
        check(p, "program", f"programs[{i}]")
        check(p["size"], "size", f"programs[{i}].size")
        check(p["memory"], "program_memory", f"programs[{i}].memory")
        if p["fidelity"] is not None:
            check(p["fidelity"], "fidelity", f"programs[{i}].fidelity")
        for section, keys in (("accuracy", _ACCURACY_NUMBERS), ("fidelity", ("answer_agreement",))):
            for key in keys:
                value = (p[section] or {}).get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, _NUM)):
                    raise HarnessError(f"{where}: programs[{i}].{section}.{key} has type {type(value).__name__}")
        for j, e in enumerate(p["latency"]):
            check(e, "latency", f"programs[{i}].latency[{j}]")
            check(e["summary"], "summary", f"programs[{i}].latency[{j}].summary")
            check(e["memory"], "memory", f"programs[{i}].latency[{j}].memory")
            check(e["quality"], "quality", f"programs[{i}].latency[{j}].quality")
            for k, pi in enumerate(e["per_input"]):
                check(pi, "per_input", f"programs[{i}].latency[{j}].per_input[{k}]")


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """A ``report.json``, its format and schema version checked."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_FILE
    report = read_json_strictly(path, HarnessError, "report")
    validate_report(report, str(path))
    return report


def write_report_json(report: dict[str, Any], out: str | os.PathLike) -> Path:
    """Validate ``report`` and write it as ``out/report.json`` (atomically); returns the path."""
    validate_report(report)
    path = Path(out) / REPORT_FILE
    atomic_write_json(path, report, indent=1)
    return path
