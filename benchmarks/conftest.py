"""Benchmark fixtures: the models (albert-base-v2's shape with random weights, and the shipped
default model) and their programs, exported once and cached on disk.

The cache key is a hash of the package's source, so a code change re-exports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import albert_edge
from albert_edge.checkpoint import load_model
from albert_edge.config import AlbertConfig
from albert_edge.lowering import export_program
from albert_edge.model import AlbertForSequenceClassification
from albert_edge.recipes import RECIPES

CACHE = Path(__file__).resolve().parent.parent / ".benchmarks" / "programs"
MAX_SEQ_LEN = 128


def _source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(albert_edge.__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


MODELS = ("albert-base-v2", "default")


def load_benchmark_model(name: str) -> AlbertForSequenceClassification:
    """albert-base-v2's shape with seeded random weights, or the shipped default model."""
    if name == "default":
        return load_model("default").eval()
    torch.manual_seed(0)
    return AlbertForSequenceClassification(AlbertConfig.from_name(name)).eval()


class _Models(dict):
    """name -> model, loaded on first use."""

    def __missing__(self, name: str) -> AlbertForSequenceClassification:
        self[name] = load_benchmark_model(name)
        return self[name]


@pytest.fixture(scope="session")
def models() -> dict[str, AlbertForSequenceClassification]:
    return _Models()


@pytest.fixture(scope="session")
def programs(models) -> Callable[[str, str], Path]:
    """``programs(model, recipe)`` -> .pte path (dynamic length 1..128), exported on first use, so
    ``-k default`` exports only the default model's programs."""
    out = CACHE / _source_hash()
    out.mkdir(parents=True, exist_ok=True)

    def get(model_name: str, name: str) -> Path:
        path = out / f"{model_name}_{name}.pte"
        if not path.exists():
            program = export_program(models[model_name], RECIPES[name], max_seq_len=MAX_SEQ_LEN)
            path.write_bytes(program.buffer)
            print(f"\nexported {model_name} {name}: {len(program.buffer) / 1e6:.2f} MB in {program.seconds:.0f} s, "
                  f"{program.report.delegate_calls} delegate calls, "
                  f"{program.report.delegated_share:.1%} of nodes delegated")
        return path

    return get
