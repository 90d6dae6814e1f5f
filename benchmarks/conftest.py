"""Benchmark fixtures: albert-base-v2-shaped programs, exported once and cached on disk.

The cache key is a hash of the package's source, so a code change re-exports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

import albert_edge
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


@pytest.fixture(scope="session")
def base_model() -> AlbertForSequenceClassification:
    torch.manual_seed(0)
    return AlbertForSequenceClassification(AlbertConfig.from_name("albert-base-v2")).eval()


@pytest.fixture(scope="session")
def base_programs(base_model) -> dict[str, Path]:
    """recipe name -> .pte path for albert-base-v2 (random weights), dynamic 1..128."""
    out = CACHE / _source_hash()
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, recipe in RECIPES.items():
        path = out / f"albert-base-v2_{name}.pte"
        if not path.exists():
            program = export_program(base_model, recipe, max_seq_len=MAX_SEQ_LEN)
            path.write_bytes(program.buffer)
            print(f"\nexported {name}: {len(program.buffer) / 1e6:.2f} MB in {program.seconds:.0f} s, "
                  f"{program.report.delegate_calls} delegate calls, "
                  f"{program.report.delegated_share:.1%} of nodes delegated")
        paths[name] = path
    return paths
