"""Per-operator profiles from ETDump: times that add up, calls that match the program."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from albert_edge import profiling
from albert_edge.profiling import ProfilingError, profile_program
from albert_edge.runtime import ProgramError, RuntimeInputError
from export_models import MAX_SEQ_LEN, lowered_text_classifier

RUNS = 3
LENGTHS = (MAX_SEQ_LEN, 9)  # two lengths: XNNPACK reshapes between them
SETUP = "XnnpackBackend: reshape and setup"


@pytest.fixture(scope="module")
def lowered(spiece_model_path):
    return lowered_text_classifier(spiece_model_path)


def make_inputs(vocab_size: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for S in LENGTHS:
        ids = torch.randint(5, vocab_size, (1, S), generator=g)
        types = torch.zeros_like(ids)
        types[0, S // 2:] = 1
        out.append((ids, torch.ones_like(ids), types))
    return out


def profile_with_wall(lowered, recipe: str) -> tuple[dict, float]:
    inputs = make_inputs(lowered.tokenizer.vocab_size)
    start = time.perf_counter()
    profile = profile_program(lowered.programs[recipe].buffer, inputs, runs=RUNS)
    return profile, (time.perf_counter() - start) * 1e3


@pytest.fixture(scope="module")
def int8(lowered) -> tuple[dict, float]:
    return profile_with_wall(lowered, "int8")


@pytest.fixture(scope="module")
def fp32(lowered) -> tuple[dict, float]:
    return profile_with_wall(lowered, "fp32")


def by_name(profile: dict) -> dict[str, dict]:
    return {o["name"]: o for o in profile["operators"]}


def runtime_op(edge_name: str) -> str:
    """``aten.embedding.default`` (the lowering report's name) -> ``aten::embedding``, the
    runtime's name without the out-variant overload; ``sym_size.int`` -> ``::sym_size``."""
    parts = edge_name.split(".")
    return f"{parts[0]}::{parts[1]}" if len(parts) == 3 else f"::{parts[0]}"


# ---- the summary -------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["int8", "fp32"])
def test_times_add_up(recipe, request):
    profile, outer_wall_ms = request.getfixturevalue(recipe)
    ops = profile["operators"]
    assert profile["total_ms"] > 0
    assert math.isclose(sum(o["total_ms"] for o in ops), profile["total_ms"], rel_tol=1e-4)
    assert math.isclose(sum(o["share"] for o in ops), 1.0, abs_tol=1e-3)
    # The events lie inside Method::execute, which lies inside the timed Python calls.
    assert profile["total_ms"] + profile["tracing_overhead_ms"] <= profile["execute_ms"] * (1 + 1e-6)
    assert profile["execute_ms"] <= profile["wall_ms"] <= outer_wall_ms
    assert [o["total_ms"] for o in ops] == sorted((o["total_ms"] for o in ops), reverse=True)
    for o in ops:
        assert o["total_ms"] >= 0 and o["calls"] > 0
        assert 0 <= o["median_ms"] <= o["total_ms"]


def test_profile_is_plain_json(int8):
    profile, _ = int8
    assert json.loads(json.dumps(profile)) == profile
    assert (profile["runs"], profile["executions"]) == (RUNS, RUNS * len(LENGTHS))
    assert {"name", "delegated", "calls", "total_ms", "median_ms", "share"} == set(profile["operators"][0])


@pytest.mark.parametrize("recipe", ["int8", "fp32"])
def test_undelegated_calls_match_the_lowering_report(recipe, lowered, request):
    """Every op the report left outside XNNPACK is an entry called (executions x count) times."""
    profile, _ = request.getfixturevalue(recipe)
    report = lowered.programs[recipe].report
    outside = [o for o in profile["operators"] if not o["delegated"]]
    for edge_name, count in report.undelegated_ops.items():
        [entry] = [o for o in outside if o["name"].split(".")[0].endswith(runtime_op(edge_name))]
        assert entry["calls"] == profile["executions"] * count, entry
    assert len(outside) == len(report.undelegated_ops)


@pytest.mark.parametrize("recipe", ["int8", "fp32"])
def test_every_call_is_counted_once_per_execution(recipe, lowered, request):
    profile, _ = request.getfixturevalue(recipe)
    for o in profile["operators"]:
        assert o["calls"] % profile["executions"] == 0, o
    blocks = profile["delegate_blocks"]
    assert len(blocks) == lowered.programs[recipe].report.delegate_calls
    assert all(b["calls"] == profile["executions"] for b in blocks)
    delegated = sum(o["total_ms"] for o in profile["operators"] if o["delegated"])
    assert math.isclose(sum(b["total_ms"] for b in blocks), delegated, rel_tol=1e-4)
    # Each delegate call site's operators run once per call.
    inside = sum(o["calls"] for o in profile["operators"] if o["delegated"] and o["name"] != SETUP)
    assert inside == sum(b["operators"] for b in blocks) * profile["executions"]


@pytest.mark.parametrize("recipe", ["int8", "fp32"])
def test_the_lowering_counts_the_operators_xnnpack_runs(recipe, lowered, request):
    """The report's XNNPACK operators (read from the delegate payloads) are the operators the
    runtime's XNNPACK profiler reports per call, less the two fusions XNNPACK makes itself when it
    creates the runtime: each int8 GEMM's input quantization goes into the GEMM, and each
    LayerNorm's square into its second mean ("Mean Squared"): one of the two means per LayerNorm."""
    profile, _ = request.getfixturevalue(recipe)
    report = lowered.programs[recipe].report
    kinds = report.xnnpack_node_kinds
    assert report.xnnpack_operators == sum(kinds.values()) > 0
    assert ("XNNConvert" in kinds) == (recipe == "int8")
    fused = kinds.get("XNNConvert", 0) + kinds["XNNGlobalAvgPooling2d"] // 2
    assert sum(b["operators"] for b in profile["delegate_blocks"]) == report.xnnpack_operators - fused


def test_embedding_lookups_run_outside_the_delegate(int8, fp32):
    assert by_name(int8[0])["quantized_decomposed::embedding_byte.out"]["delegated"] is False
    assert by_name(fp32[0])["aten::embedding.out"]["delegated"] is False


def test_fp32_time_is_mostly_delegated(fp32):
    profile, _ = fp32
    assert profile["delegated_share_of_time"] > 0.5
    delegated = sum(o["share"] for o in profile["operators"] if o["delegated"])
    assert math.isclose(delegated, profile["delegated_share_of_time"], abs_tol=1e-3)


@pytest.mark.parametrize("recipe,gemm", [("int8", "Fully Connected (NC, QDU8, F32, QC8W) GEMM"),
                                         ("fp32", "Fully Connected (NC, F32) GEMM")])
def test_the_wheels_xnnpack_reports_its_operators(recipe, gemm, lowered, request):
    """executorch 1.5.1's XNNPACK backend is built with its profiler: operators, not blocks."""
    profile, _ = request.getfixturevalue(recipe)
    assert profile["op_level_delegate"] is True
    ops = by_name(profile)
    # One XNNPACK fully-connected operator per delegated linear.
    linears = lowered.programs[recipe].report.delegated_ops["aten.linear.default"]
    assert ops[gemm]["delegated"] and ops[gemm]["calls"] == linears * profile["executions"]
    assert ops[SETUP]["calls"] == len(profile["delegate_blocks"]) * profile["executions"]
    assert not any(o["name"].startswith("XnnpackBackend#") for o in profile["operators"])


# ---- fallbacks and errors ----------------------------------------------------------------------


def test_opaque_delegate_blocks_when_xnnpack_reports_nothing(lowered, monkeypatch):
    """A runtime whose XNNPACK backend has no profiler logs only DELEGATE_CALL: one entry per
    call site, the whole call."""
    read = profiling._read_executions

    def without_delegate_operators(etdump: bytes):
        return [[e for e in run if not e.delegate_debug_id_str] for run in read(etdump)]

    monkeypatch.setattr(profiling, "_read_executions", without_delegate_operators)
    profile = profile_program(lowered.programs["fp32"].buffer, make_inputs(lowered.tokenizer.vocab_size)[:1], runs=2)
    assert profile["op_level_delegate"] is False and profile["tracing_overhead_ms"] == 0
    assert "opaque" in profile["notes"]
    delegated = sorted(o["name"] for o in profile["operators"] if o["delegated"])
    assert delegated == [f"XnnpackBackend#{i}" for i in range(lowered.programs["fp32"].report.delegate_calls)]
    assert all(b["operators"] == 0 for b in profile["delegate_blocks"])


def test_a_runtime_without_event_tracing_is_named(lowered, monkeypatch):
    from executorch.runtime import Program

    def no_etdump(self, etdump_path, debug_buffer_path):
        raise RuntimeError("No etdump found")

    monkeypatch.setattr(Program, "write_etdump_result_to_file", no_etdump)
    with pytest.raises(ProfilingError, match="EXECUTORCH_ENABLE_EVENT_TRACER"):
        profile_program(lowered.programs["fp32"].buffer, make_inputs(lowered.tokenizer.vocab_size)[:1], runs=1)


def test_etdump_is_kept_for_the_inspector(lowered, tmp_path):
    from executorch.devtools import Inspector

    path = tmp_path / "forward.etdp"
    profile_program(lowered.programs["int8"].buffer, make_inputs(lowered.tokenizer.vocab_size)[:1], runs=1,
                    etdump_path=path)
    with pytest.warns(UserWarning, match="Output Buffer"):  # no debug buffer: timings only
        inspector = Inspector(etdump_path=str(path))
    names = {e.name for block in inspector.event_blocks for e in block.events}
    assert {"DELEGATE_CALL", "OPERATOR_CALL", "Method::execute"} <= names


@pytest.mark.parametrize("kwargs,message", [
    ({"runs": 0}, "runs must be an integer >= 1, got 0"),
    ({"warmup": -1}, "warmup must be an integer >= 0"),
])
def test_bad_arguments_are_named(lowered, kwargs, message):
    with pytest.raises(RuntimeInputError, match=message):
        profile_program(lowered.programs["fp32"].buffer, make_inputs(lowered.tokenizer.vocab_size), **kwargs)


def test_bad_inputs_are_refused_before_running(lowered, tmp_path):
    buffer = lowered.programs["fp32"].buffer
    with pytest.raises(RuntimeInputError, match="inputs is empty"):
        profile_program(buffer, [])
    ids = torch.full((1, 4), lowered.tokenizer.vocab_size)
    with pytest.raises(RuntimeInputError, match=r"input_ids\[0, 0\] = 1500 is outside the vocabulary"):
        profile_program(buffer, [(ids, torch.ones_like(ids), torch.zeros_like(ids))])
    with pytest.raises(ProgramError, match="no such .pte file"):
        profile_program(tmp_path / "missing.pte", make_inputs(lowered.tokenizer.vocab_size))
