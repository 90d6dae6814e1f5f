"""XNNPACK's packed-weights cache, set from Python (``albert_edge.backend_options``), and what it
does to a program: the same outputs, and packing that no longer grows with layer steps."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from albert_edge import backend_options
from albert_edge.config import AlbertConfig
from albert_edge.harness import ProgramSpec, WorkerProcess
from albert_edge.lowering import export_program
from albert_edge.model import AlbertForSequenceClassification
from albert_edge.recipes import RECIPES
from albert_edge.runtime import Program

HEADERS = Path(importlib.util.find_spec("executorch").submodule_search_locations[0]) / "include"

LAYOUT_PROBE = r"""
#include <executorch/runtime/backend/options.h>
#include <cstddef>
#include <cstdio>
#include <cstring>
using executorch::runtime::BackendOption;
static int index_byte(BackendOption o) { return reinterpret_cast<const unsigned char*>(&o)[%d]; }
int main() {
  BackendOption b, i;
  std::memset(&b, 0, sizeof b);
  std::memset(&i, 0, sizeof i);
  b.value = true;
  i.value = 7;
  std::printf("%%zu %%zu %%zu %%d %%d\n", sizeof(BackendOption), offsetof(BackendOption, value),
              executorch::runtime::kMaxOptionKeyLength, index_byte(b), index_byte(i));
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to compile against the wheel's headers")
def test_the_struct_layout_matches_the_wheels_own_headers(tmp_path):
    """The offsets backend_options writes are those of the installed executorch's BackendOption."""
    (tmp_path / "probe.cpp").write_text(LAYOUT_PROBE % backend_options.INDEX_OFFSET)
    subprocess.run(["g++", "-std=c++17", "-I", str(HEADERS), "probe.cpp", "-o", "probe"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True).stdout.split()
    size, value_offset, key_length, bool_index, int_index = map(int, out)
    assert size == backend_options.OPTION_SIZE <= backend_options._BUFFER
    assert value_offset == key_length == backend_options.KEY_LENGTH
    assert (bool_index, int_index) == (backend_options.BOOL, backend_options.INT)


def test_the_option_is_set_and_read_back():
    before = backend_options.get_weight_cache()
    assert before is not None  # this wheel exposes the option
    try:
        assert backend_options.set_weight_cache(True) and backend_options.get_weight_cache() is True
        assert backend_options.set_weight_cache(False) and backend_options.get_weight_cache() is False
    finally:
        backend_options.set_weight_cache(before)


def test_an_unusable_library_warns_once_and_loads_without_the_cache(monkeypatch, caplog, lowered_int8):
    monkeypatch.setattr(backend_options, "_library", lambda: "libexecutorch.so lacks set_option (test)")
    monkeypatch.setattr(backend_options, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="albert_edge.backend_options"):
        first, second = Program(lowered_int8), Program(lowered_int8)
    assert not first.weight_cache and not second.weight_cache
    warnings = [r.getMessage() for r in caplog.records if r.name == "albert_edge.backend_options"]
    assert len(warnings) == 1 and "lacks set_option (test)" in warnings[0] and "without it" in warnings[0]
    ids = torch.randint(5, 99, (1, 7))
    assert torch.equal(first.run(ids)[0], Program(lowered_int8, weight_cache=False).run(ids)[0])
    assert backend_options.get_weight_cache() is None and not backend_options.set_weight_cache(False)


@pytest.fixture(scope="module")
def lowered_int8() -> bytes:
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(AlbertConfig.from_name("tiny")).eval()
    return export_program(model, RECIPES["int8"], max_seq_len=16).buffer


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_outputs_with_the_cache_are_bitwise_those_without(recipe):
    config = dataclasses.replace(AlbertConfig.from_name("tiny"), max_position_embeddings=128)
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(config).eval()
    buffer = export_program(model, RECIPES[recipe], max_seq_len=128).buffer
    cached, packed = Program(buffer, weight_cache=True), Program(buffer, weight_cache=False)
    assert cached.weight_cache and not packed.weight_cache
    g = torch.Generator().manual_seed(1)
    for length in (1, 7, 128):
        ids = torch.randint(0, config.vocab_size, (1, length), generator=g)
        types = (torch.arange(length) >= length // 2).long()[None]
        a, b = cached.run(ids, None, types), packed.run(ids, None, types)
        assert all(torch.equal(x, y) for x, y in zip(a, b)), (recipe, length)


def _load_cost(pte: Path, weight_cache: bool, tmp_path: Path) -> int:
    """RSS the program adds to a fresh worker process after load and its first call (bytes)."""
    inputs = tmp_path / "inputs.json"
    inputs.write_text('[{"input_ids": [2, 7, 8, 9, 10, 3], "token_type_ids": [0, 0, 0, 0, 0, 0]}]')
    w = WorkerProcess(ProgramSpec(pte.stem, "pte", str(pte), None, 0), 1, tmp_path / f"{pte.stem}-{weight_cache}.log")
    try:
        w.wait_ready()
        load = w.call("load", kind="pte", source=str(pte), head=None, threads=1, inputs=str(inputs),
                      weight_cache=weight_cache)
        assert load["weight_cache"] is weight_cache
        m = load["memory"]
        return m["rss_after_first_call"] - m["rss_after_imports"]
    finally:
        w.close()


@pytest.mark.slow
def test_packing_does_not_grow_with_layer_steps(tmp_path):
    """One shared layer of albert-base's width (7.1M parameters, 28 MB in fp32) at 1 and at 12
    layer steps: with the cache both load at about the same cost; without it, 12 steps pack 12
    copies (the check that the measurement can see the difference)."""
    base = AlbertConfig.from_name("albert-base-v2")
    layer_bytes = 4 * (4 * base.hidden_size ** 2 + 2 * base.hidden_size * base.intermediate_size)
    programs = {}
    for steps in (1, 12):
        config = dataclasses.replace(base, vocab_size=64, max_position_embeddings=16, num_hidden_layers=steps)
        torch.manual_seed(0)
        model = AlbertForSequenceClassification(config).eval()
        programs[steps] = tmp_path / f"steps{steps}.pte"
        programs[steps].write_bytes(export_program(model, RECIPES["fp32"], max_seq_len=8).buffer)
    one = _load_cost(programs[1], True, tmp_path)
    twelve = _load_cost(programs[12], True, tmp_path)
    twelve_packed = _load_cost(programs[12], False, tmp_path)
    assert one > 0.9 * layer_bytes  # the layer is packed once
    assert twelve < one + 0.25 * layer_bytes, (one, twelve)
    assert twelve_packed > one + 8 * layer_bytes, (one, twelve_packed)
    print(f"RSS added: 1 step {one / 1e6:.1f} MB, 12 steps {twelve / 1e6:.1f} MB, "
          f"12 steps without the cache {twelve_packed / 1e6:.1f} MB (layer {layer_bytes / 1e6:.1f} MB)")
