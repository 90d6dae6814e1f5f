"""Latency of eager PyTorch fp32 and of the .pte programs, by model and sequence length.

albert-base-v2's shape with random weights, and the shipped default model; batch 1. One measured
call per round, warm-up rounds first, the output checked after timing. Run with `make bench`
(see README); `albert-edge compare` measures the same calls (docs/compare.md).

The thread count is set once per process from ``ALBERT_EDGE_BENCH_THREADS`` (default 2):
ExecuTorch's thread pool must not be resized while programs are loaded
(``make bench BENCH_THREADS=1`` for one thread).
"""

from __future__ import annotations

import os

import pytest
import torch

from albert_edge.model import example_inputs
from conftest import MODELS

SEQ_LENS = (16, 32, 64, 128)
THREADS = int(os.environ.get("ALBERT_EDGE_BENCH_THREADS", "2"))


@pytest.fixture(scope="session", autouse=True)
def threads() -> int:
    from albert_edge.runtime import set_num_threads

    set_num_threads(THREADS)
    torch.set_num_threads(THREADS)
    return THREADS


@pytest.mark.parametrize("seq_len", SEQ_LENS)
@pytest.mark.parametrize("model", MODELS)
def test_eager_fp32(benchmark, models, model, seq_len, threads):
    net = models[model]
    inputs = example_inputs(net.config, seq_len)
    benchmark.extra_info.update(model=model, program="eager-fp32", seq_len=seq_len, threads=threads)
    with torch.no_grad():
        out = benchmark.pedantic(net, args=inputs, warmup_rounds=2, rounds=10, iterations=1)
    assert out.shape == (1, net.config.num_labels) and torch.isfinite(out).all()


@pytest.mark.parametrize("seq_len", SEQ_LENS)
@pytest.mark.parametrize("recipe", ["fp32", "int8", "int4"])
@pytest.mark.parametrize("model", MODELS)
def test_pte(benchmark, models, programs, model, recipe, seq_len, threads):
    from albert_edge.runtime import Program

    net, path = models[model], programs(model, recipe)
    program = Program(path)  # with the weight cache, as the runtime loads programs by default
    inputs = program.check_inputs(*example_inputs(net.config, seq_len))
    benchmark.extra_info.update(model=model, program=f"pte-{recipe}", seq_len=seq_len, threads=threads,
                                size_bytes=path.stat().st_size, weight_cache=program.weight_cache)
    out = benchmark.pedantic(program.run_checked, args=(inputs,), warmup_rounds=3, rounds=20, iterations=1)[0]
    with torch.no_grad():
        want = net(*inputs)
    tolerance = {"fp32": 1e-4, "int8": 0.05, "int4": 0.5}[recipe]
    assert (out - want).abs().max().item() <= tolerance
