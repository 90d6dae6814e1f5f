"""A small, schema-valid comparison report built by hand (no workers), for tests of the report's
readers and renderers. Its figures are internally consistent: every latency summary is computed
here from the listed calls, accuracies and agreement from the listed predictions (timing quality
is left clean)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

THREADS = (1, 2)
LENGTHS = (8, 32)  # one data input and one probe


def _summary(ms: list[float]) -> dict[str, Any]:
    t = np.asarray(ms, dtype=np.float64)
    return {"n": int(t.size), "median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()), "std_ms": float(t.std()),
            "min_ms": float(t.min()), "max_ms": float(t.max())}


def _memory(base: int, load: int, first: int, peak: int, cache: bool | None) -> dict[str, Any]:
    return {"weight_cache": cache, "peak_reset": True, "rss_after_imports_bytes": base,
            "rss_after_load_bytes": base + load, "rss_after_first_call_bytes": base + first,
            "peak_load_bytes": base + first, "peak_timed_bytes": base + peak, "load_cost_bytes": load,
            "first_call_cost_bytes": first, "peak_cost_bytes": peak}


def _latency(threads: int, base_ms: float, cache: bool | None, mb: int, rng: np.random.Generator) -> dict[str, Any]:
    per_input, all_ms = [], []
    for i, n in enumerate(LENGTHS):
        times = [round(float(base_ms * n / 8 / threads * (1 + 0.05 * rng.random())), 4) for _ in range(6)]
        per_input.append({"input": i, "source": "data" if i == 0 else "probe", "row": 1 if i == 0 else None,
                          "seq_len": n, "times_ms": times})
        all_ms += times
    by_bucket = [{"bucket": [lo, hi], "inputs": 1, **_summary(p["times_ms"])}
                 for (lo, hi), p in zip(((1, 16), (17, 32)), per_input)]
    return {"threads": threads, "load_s": 0.01, "first_inference_s": 0.002,
            "memory": _memory(400_000_000, mb * 1_000_000, (mb + 2) * 1_000_000, (mb + 3) * 1_000_000, cache),
            "summary": _summary(all_ms), "by_bucket": by_bucket, "per_input": per_input, "cpu_steal_share": 0.0,
            "quality": {"iqr_ms": 0.0, "outlier_share": 0.0, "round_drift": 0.0, "cpu_steal_share": 0.0,
                        "unstable": False, "reasons": []}}


GOLD = [0] * 50 + [1] * 50
EAGER = [0] * 45 + [1] * 5 + [1] * 45 + [0] * 5  # 90 right
INT8 = [1, 1] + EAGER[2:]  # two examples eager got right, now wrong: 88 right, 98% agreement


def _program(name: str, kind: str, size: int, base_ms: float, mb: int, rng: np.random.Generator,
             predictions: list[int], fidelity: dict[str, Any] | None, flips: int | None) -> dict[str, Any]:
    accuracy = sum(p == g for p, g in zip(predictions, GOLD)) / len(GOLD)
    cache = None if kind == "eager" else True
    latency = [_latency(t, base_ms, cache, mb, rng) for t in THREADS]
    top = latency[-1]["memory"]
    return {
        "name": name, "kind": kind, "file": None if kind == "eager" else f"bundle/model_{name}.pte",
        "recipe": None if kind == "eager" else {"name": name}, "dynamic": True,
        "size": {"bytes": size, "parameter_bytes": size, "compression_vs_fp32": 4_000_000 / size},
        "accuracy": {"n": 100, "accuracy": accuracy, "macro_f1": accuracy - 0.01, "labels": ["neg", "pos"],
                     "per_class": {lab: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 50}
                                   for lab in ("neg", "pos")},
                     "confusion_matrix": [[45, 5], [5, 45]]},
        "fidelity": fidelity,
        "flips": None if flips is None else {"count": flips, "listed": []},
        "predictions": predictions,
        "latency": latency,
        "memory": {"threads": THREADS[-1], "weight_cache": cache, "load_cost_bytes": top["load_cost_bytes"],
                   "first_call_cost_bytes": top["first_call_cost_bytes"], "peak_cost_bytes": top["peak_cost_bytes"],
                   "without_cache": None},
    }


def tiny_report() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    programs = [
        _program("eager-fp32", "eager", 4_000_000, 4.0, 40, rng, EAGER, None, None),
        _program("fp32", "pte", 4_000_000, 2.0, 20, rng, EAGER,
                 {"top1_agreement": 1.0, "cosine": 1.0, "sqnr_db": None, "max_abs_diff": 1e-6}, 0),
        _program("int8", "pte", 1_000_000, 1.0, 6, rng, INT8,
                 {"top1_agreement": 0.98, "cosine": 0.999, "sqnr_db": 35.0, "max_abs_diff": 0.05}, 2),
    ]
    return copy.deepcopy({
        "format": "albert-edge-compare-report", "schema_version": 2, "created_by": "albert-edge test",
        "created_at": "2026-12-01T00:00:00Z", "seconds": 12.0,
        "model": {"source": "tiny", "head": None, "task": "sequence-classification",
                  "architecture": "AlbertForSequenceClassification", "labels": ["neg", "pos"],
                  "random_weights": False, "max_seq_len": 32, "vocab_size": 99},
        "bundle": "bundle", "reference": "eager-fp32",
        "data": {"source": "data.csv", "path": "data.csv", "rows": 100, "limit": None, "text_column": "text",
                 "label_column": "label", "text_pair_column": None, "truncated": 0,
                 "token_lengths": {"min": 3, "median": 8.0, "max": 30}, "gold": GOLD, "accuracy_skipped": None},
        "machine": {"cpu": "Test CPU", "cores": 2, "machine": "x86_64", "platform": "Linux", "python": "3.11",
                    "torch": "2.13.0", "executorch": "1.5.1"},
        "latency_settings": {"threads": list(THREADS), "warmup": 1, "rounds": 3, "runs_per_round": 2,
                             "data_inputs": 1, "probe_lengths": [32], "buckets": [[1, 16], [17, 32]],
                             "timed_inputs": [{"input": 0, "seq_len": 8, "source": "data"},
                                              {"input": 1, "seq_len": 32, "source": "probe"}],
                             "interleaved": True, "process_per_program": True, "gc_disabled_while_timed": True},
        "programs": programs,
    })
