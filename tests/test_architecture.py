"""The package's structure: layers that read one way, a job per module, a quiet and quick CLI.

LAYERS is the architecture (README, "What is in the package"): a module may import from its own
layer or a lower one, never from a higher one, and the import graph has no circle. Imports
inside functions count: a lazy import that dodges a circle is still a circle.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "albert_edge"

LAYERS = [
    # leaves: errors, file writing, machine facts, option plumbing, pure helpers
    {"errors", "_io", "_machine", "_charsmap", "_spm_proto", "_tokenizer_json", "_textgen", "_quiet", "_procs",
     "metrics", "backend_options", "cli_args", "cloze", "wh_fronting", "augment", "exit_rules"},
    # settings: the config, the recipe table, training arguments, the report schema
    {"config", "recipes", "training_args", "report_schema"},
    # the model core, the tokenizer and QA windows/decoding; reading and drawing a report
    {"model", "tokenizer", "qa", "report", "report_adaptive", "verdict", "exits"},
    # what the model core is loaded from, quantized with, trained on; the bundle format
    {"checkpoint", "quantize", "datasets", "corpora", "pretraining_data", "tokenizer_goldens", "baseline", "teacher",
     "bundle_format", "qa_data", "qa_teacher", "eval_data"},
    # lowering, running programs, the training loop
    {"lowering", "runtime", "training", "adaptive"},
    # making bundles, the eager classifier, profiling, the training workflows
    {"bundle", "classifier", "profiling", "workflows"},
    # comparing programs, the default-model recipes
    {"harness", "adaptive_compare", "_harness_worker", "make_default", "make_default_qa"},
    # the command line
    {"cli_train", "cli_compare", "cli", "__main__", "__init__"},
]


def _imports(path: Path) -> set[str]:
    """albert_edge modules ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "albert_edge":
            if node.module == "albert_edge":
                found.update(a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists())
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("albert_edge."))
    return found


def _graph() -> dict[str, set[str]]:
    return {p.stem: _imports(p) - {p.stem} for p in PACKAGE.glob("*.py")}


def test_every_module_has_a_layer():
    placed = set().union(*LAYERS)
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == placed, f"unplaced: {sorted(modules - placed)}; gone: {sorted(placed - modules)}"


def test_no_arrow_points_up():
    layer = {m: i for i, group in enumerate(LAYERS) for m in group}
    # __init__ only names the public entry points (loaded on first use), so it may point up
    up = [f"{m} (layer {layer[m]}) imports {d} (layer {layer[d]})"
          for m, deps in _graph().items() if m != "__init__" for d in deps if layer[d] > layer[m]]
    assert not up, "\n".join(up)


def test_the_import_graph_has_no_circle():
    graph = {m: d for m, d in _graph().items() if m != "__init__"}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                pytest.fail("import circle: " + " -> ".join([*path[path.index(d):], d]))
            if d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_every_module_says_its_job_first():
    for path in PACKAGE.glob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()[0]) > 20, f"{path.name}: no first docstring line saying its job"


def _run_without_torch(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``albert-edge ARGS`` in a fresh interpreter that fails if anything imports torch."""
    probe = ("import sys\n"
             "class NoTorch:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'torch' or name.startswith(('torch.', 'executorch', 'torchao')):\n"
             "            raise ImportError(f'{name} imported by a command that must not need it')\n"
             "sys.meta_path.insert(0, NoTorch())\n"
             "from albert_edge.cli import main\n"
             f"sys.exit(main({args!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)


def test_help_and_version_do_not_import_torch(tmp_path):
    for args in (["--help"], ["--version"], ["export", "--help"], ["compare", "--help"], ["pretrain", "--help"]):
        r = _run_without_torch(args, tmp_path)
        assert r.returncode == 0, (args, r.stderr)
        assert "albert-edge" in r.stdout


def test_report_redraws_without_torch(tmp_path):
    from report_fixtures import tiny_report

    (tmp_path / "report.json").write_text(json.dumps(tiny_report()))
    r = _run_without_torch(["report", str(tmp_path)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "report.md").exists() and (tmp_path / "tradeoff.png").exists()


NOISE = re.compile(r"torchao|cpuinfo|_pytree|copyreg|LeafSpec|Failed to load|threadpool\.cpp|ExperimentalWarning"
                   r"|FutureWarning|DeprecationWarning|Triton")


@pytest.mark.slow
def test_export_and_compare_print_nothing_from_the_libraries(tmp_path, spiece_model_path):
    """One export (2 recipes in 2 worker processes) and one compare through the command line, in
    fresh processes: what reaches the terminal is the tool's own lines and tables."""
    import torch

    from albert_edge.checkpoint import save_pretrained
    from albert_edge.config import AlbertConfig
    from albert_edge.model import AlbertForSequenceClassification
    from albert_edge.tokenizer import AlbertTokenizer

    vocab = AlbertTokenizer.from_file(spiece_model_path).vocab_size
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(AlbertConfig.from_name("tiny", vocab_size=vocab, labels=("neg", "pos")))
    save_pretrained(model, tmp_path / "ckpt", tokenizer_file=spiece_model_path)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                            for t, lab in (("a good day", "pos"), ("bad", "neg"), ("ok then", "pos"))))
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "COLUMNS": "200"}
    commands = [
        ["export", str(tmp_path / "ckpt"), "--recipe", "fp32", "--recipe", "int8", "--max-seq-len", "16",
         "--jobs", "2", "--out", str(tmp_path / "bundle")],
        ["compare", str(tmp_path / "bundle"), "--model", str(tmp_path / "ckpt"), "--data", str(data), "--threads", "1",
         "--rounds", "1", "--runs", "1", "--warmup", "0", "--latency-inputs", "1", "--out", str(tmp_path / "r")],
    ]
    for args in commands:
        r = subprocess.run([sys.executable, "-m", "albert_edge", *args], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        noise = [line for line in (r.stdout + r.stderr).splitlines() if NOISE.search(line)]
        assert not noise, f"albert-edge {args[0]} printed library noise:\n" + "\n".join(noise)
        assert r.stdout.strip()  # the summary table / the report lines
