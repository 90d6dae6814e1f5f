"""Memory a loaded program adds to its process: albert-base-v2's shape and the default model,
fp32 / int8 / int4, with XNNPACK's packed-weights cache on and off.

Each case runs in a fresh worker process (the harness's, ``albert_edge._harness_worker``): RSS
just before the load (imports done), after the load, after 3 calls at 128 tokens, and the peak
over all of it. Memory is not timing, so these are not pytest-benchmark timings: the figures go
to a table at the end of the run and to ``.benchmarks/memory.json`` (``make bench``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from albert_edge.harness import ProgramSpec, WorkerProcess
from conftest import CACHE, MAX_SEQ_LEN, MODELS

THREADS = int(os.environ.get("ALBERT_EDGE_BENCH_THREADS", "2"))
RUNS = 3
RESULTS: list[dict] = []


def measure(pte: Path, weight_cache: bool, work: Path) -> dict:
    inputs = work / "inputs.json"
    ids = [2] + [(7 * i) % 90 + 5 for i in range(MAX_SEQ_LEN - 2)] + [3]  # 128 ids of every vocabulary
    inputs.write_text(json.dumps([{"input_ids": ids, "token_type_ids": [0] * len(ids)}]))
    w = WorkerProcess(ProgramSpec(pte.stem, "pte", str(pte), None, 0), THREADS, work / "worker.log")
    try:
        w.wait_ready()
        load = w.call("load", kind="pte", source=str(pte), head=None, threads=THREADS, inputs=str(inputs),
                      weight_cache=weight_cache)
        w.call("warmup", indices=[0], runs=RUNS - 1)  # the load ran the first call
        stats = w.call("stats")
    finally:
        w.close()
    m = load["memory"]
    base = m["rss_after_imports"]
    return {"weight_cache": load["weight_cache"], "load_mb": (m["rss_after_load"] - base) / 1e6,
            "after_runs_mb": (stats["rss"] - base) / 1e6,
            "peak_mb": (max(m["peak_load"], stats["peak_rss"]) - base) / 1e6, "load_ms": load["load_s"] * 1e3}


@pytest.mark.parametrize("weight_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("recipe", ["fp32", "int8", "int4"])
@pytest.mark.parametrize("model", MODELS)
def test_memory(programs, model, recipe, weight_cache, tmp_path):
    figures = measure(programs(model, recipe), weight_cache, tmp_path)
    assert figures["weight_cache"] is weight_cache
    RESULTS.append({"model": model, "program": f"pte-{recipe}", "threads": THREADS, **figures})


def _table() -> str:
    rows = [f"| {r['model']} | {r['program']} | {'on' if r['weight_cache'] else 'off'} | {r['load_mb']:.1f} | "
            f"{r['after_runs_mb']:.1f} | {r['peak_mb']:.1f} | {r['load_ms']:.0f} |" for r in RESULTS]
    return "\n".join([f"RSS a program adds, MB ({THREADS} threads, {RUNS} calls at {MAX_SEQ_LEN} tokens):",
                      "| model | program | weight cache | after load | after calls | peak | load ms |",
                      "| --- | --- | --- | --- | --- | --- | --- |", *rows])


@pytest.fixture(scope="module", autouse=True)
def write_table():
    yield
    if RESULTS:
        out = CACHE.parent / "memory.json"
        out.write_text(json.dumps(RESULTS, indent=1) + "\n")
        print("\n" + _table() + f"\n(written to {out})")
