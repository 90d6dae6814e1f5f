"""Latency of eager PyTorch fp32 and of the .pte programs, by sequence length and threads.

albert-base-v2's shape with random weights, batch 1. One measured call per round, warm-up
rounds first, the output checked after timing. Run with `make bench` (see README).
"""

from __future__ import annotations

import pytest
import torch

from albert_edge.model import example_inputs
from albert_edge.quantize import register_quantized_ops

SEQ_LENS = (16, 64, 128)
THREADS = (1, 2)


def _set_threads(n: int) -> None:
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(n)
    torch.set_num_threads(n)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("seq_len", SEQ_LENS)
def test_eager_fp32(benchmark, base_model, seq_len, threads):
    _set_threads(threads)
    inputs = example_inputs(base_model.config, seq_len)
    benchmark.extra_info.update(program="eager-fp32", seq_len=seq_len, threads=threads)
    with torch.no_grad():
        out = benchmark.pedantic(base_model, args=inputs, warmup_rounds=2, rounds=10, iterations=1)
    assert out.shape == (1, base_model.config.num_labels) and torch.isfinite(out).all()


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("seq_len", SEQ_LENS)
@pytest.mark.parametrize("recipe", ["fp32", "int8", "int4"])
def test_pte(benchmark, base_model, base_programs, recipe, seq_len, threads):
    from executorch.runtime import Runtime

    register_quantized_ops()
    _set_threads(threads)
    method = Runtime.get().load_program(base_programs[recipe]).load_method("forward")
    inputs = list(example_inputs(base_model.config, seq_len))
    benchmark.extra_info.update(program=f"pte-{recipe}", seq_len=seq_len, threads=threads,
                                size_bytes=base_programs[recipe].stat().st_size)
    out = benchmark.pedantic(method.execute, args=(inputs,), warmup_rounds=3, rounds=20, iterations=1)[0]
    with torch.no_grad():
        want = base_model(*inputs)
    tolerance = {"fp32": 1e-4, "int8": 0.05, "int4": 0.5}[recipe]
    assert (out - want).abs().max().item() <= tolerance
