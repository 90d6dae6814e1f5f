"""``albert-edge export``, ``run`` and ``verify``, in-process (one subprocess for --threads)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from albert_edge.bundle import export_bundle, write_bundle
from albert_edge.bundle_format import read_manifest
from albert_edge.errors import BundleError
from albert_edge.cli import main
from albert_edge.lowering import DelegationReport, LoweredProgram
from albert_edge.recipes import RECIPES
from albert_edge.runtime import Bundle, RuntimeInputError
from export_models import LABELS, lowered_text_classifier

FIXED = 16


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, int, str, str]:
    """``albert-edge export tiny --recipe fp32 --recipe int8 --fixed-length``, run once."""
    out = tmp_path_factory.mktemp("cli") / "tiny-bundle"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["export", "tiny", "--recipe", "fp32", "--recipe", "int8", "--max-seq-len", str(FIXED),
                   "--fixed-length", "--out", str(out)])
    return out, rc, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def classifier_bundle(spiece_model_path, tmp_path_factory) -> Path:
    """A sequence-classification bundle from a tiny checkpoint directory + the test tokenizer."""
    lowered = lowered_text_classifier(spiece_model_path)
    out = tmp_path_factory.mktemp("cli") / "classifier"
    return write_bundle(out, lowered.model, list(lowered.programs.values()), lowered.tokenizer)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# ---- export -----------------------------------------------------------------------------------------


def test_export_writes_a_bundle(exported):
    out, rc, _, _ = exported
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["goldens.json", "manifest.json", "model_fp32.pte", "model_int8.pte"]
    m = read_manifest(out)
    assert m["task"] == "base" and m["architecture"] == "AlbertModel" and m["tokenizer"] is None
    assert m["max_seq_len"] == FIXED and m["vocab_size"] == 99
    assert [p["name"] for p in m["programs"]] == ["fp32", "int8"]
    for p in m["programs"]:
        assert [o["name"] for o in p["outputs"]] == ["last_hidden_state", "pooled_output"]
        assert p["outputs"][0]["shape"] == [1, "seq", 32]
        assert all(i["dynamic"] is False and i["min_seq_len"] == FIXED for i in p["inputs"])


def test_export_prints_progress_and_a_table(exported):
    out, _, stdout, stderr = exported
    assert "[1/2] fp32: quantize, export and lower" in stderr and "[2/2] int8:" in stderr
    assert "no tokenizer" in stderr and f"wrote {out}" in stderr
    lines = stdout.splitlines()
    assert re.match(r"program\s+size \(MB\)\s+delegated \(%\)\s+XNNPACK ops\s+delegate calls\s+export \(s\)",
                    lines[0])
    m = read_manifest(out)
    for line, entry in zip(lines[1:3], m["programs"]):
        name, size, share, ops, calls, seconds = line.split()
        assert name == entry["name"]
        assert float(size) == pytest.approx(entry["size_bytes"] / 1e6, abs=1e-3)
        assert float(share) == pytest.approx(100 * entry["delegation"]["delegated_share"], abs=0.05)
        assert int(calls) == entry["delegation"]["delegate_calls"] >= 1
        # at least a GEMM per linear layer, all of them inside the delegate calls
        assert int(ops) == entry["delegation"]["xnnpack_operators"] >= entry["delegation"]["delegated_ops"][
            "aten.linear.default"] > 0
        assert float(seconds) > 0
    assert lines[3] == "outside the XNNPACK delegate:"
    outside = [line.split()[:2] for line in lines[4:-1]]
    assert ["int8", "quantized_decomposed.embedding_byte.default"] in outside
    assert ["fp32", "aten.embedding.default"] in outside
    assert all(": " in line for line in lines[4:-1])  # every op comes with its reason
    assert lines[-1] == f"bundle: {out}"


def test_fixed_length_programs_refuse_other_lengths(exported):
    bundle = Bundle.load(exported[0])
    prog = bundle.programs["fp32"]
    assert (prog.min_seq_len, prog.max_seq_len, prog.dynamic) == (FIXED, FIXED, False)
    with pytest.raises(RuntimeInputError, match=re.escape(
        f"input_ids has 7 tokens; this program was exported with a fixed length of {FIXED} (--fixed-length) "
        f"and takes exactly {FIXED}: pad to it"
    )):
        prog.run(torch.full((1, 7), 5))
    ids = torch.full((1, FIXED), 5)
    mask = torch.cat([torch.ones(1, 7, dtype=torch.int64), torch.zeros(1, FIXED - 7, dtype=torch.int64)], 1)
    hidden, pooled = prog.run(ids, mask)
    assert hidden.shape == (1, FIXED, 32) and pooled.shape == (1, 32)


def test_fixed_length_goldens_are_padded_and_replay(exported):
    out = exported[0]
    goldens = json.loads((out / "goldens.json").read_text())
    assert all(len(c["input_ids"]) == FIXED for c in goldens["cases"])
    assert {sum(c["attention_mask"]) for c in goldens["cases"]} >= {1, FIXED}  # padded cases and full ones
    assert all(c.ok for c in Bundle.load(out).check_goldens())


def test_verify_command(exported, capsys):
    rc, out, _ = run_cli(["verify", str(exported[0])], capsys)
    assert rc == 0
    assert re.search(r"^fp32 .* 5 cases .* ok$", out, re.M) and re.search(r"^int8 .* ok$", out, re.M)


def test_export_of_a_checkpoint_dir_uses_its_head_labels_and_tokenizer(spiece_model_path, tmp_path, monkeypatch, capsys):
    """The wiring from a checkpoint directory to a bundle; lowering is replaced by the shared
    programs (lowering itself is covered above and in test_lowering.py)."""
    lowered = lowered_text_classifier(spiece_model_path)
    calls = []

    def export_program(model, recipe, *, max_seq_len, dynamic):
        calls.append((type(model).__name__, recipe.name, max_seq_len, dynamic))
        return lowered.programs[recipe.name]

    monkeypatch.setattr("albert_edge.bundle.export_program", export_program)
    out = tmp_path / "b"
    rc, stdout, _ = run_cli(["export", str(lowered.checkpoint), "--recipe", "int8", "--max-seq-len", "32",
                             "--out", str(out)], capsys)
    assert rc == 0 and calls == [("AlbertForSequenceClassification", "int8", 32, True)]
    m = read_manifest(out)
    assert m["task"] == "sequence-classification" and m["labels"] == list(LABELS)
    assert m["tokenizer"]["sha256"] == hashlib.sha256(spiece_model_path.read_bytes()).hexdigest()
    assert stdout.splitlines()[1].split()[0] == "int8"
    rc, stdout, _ = run_cli(["run", str(out), "hello"], capsys)
    assert rc == 0 and stdout.split("\t")[0] in LABELS


@pytest.mark.parametrize(
    "argv,message",
    [
        (["export", "tiny", "--max-seq-len", "65", "--out", "{tmp}/b"],
         "--max-seq-len 65 is outside [2, 64]: at least [CLS] and [SEP], at most the model's max_position_embeddings"),
        (["export", "tiny", "--recipe", "int8", "--recipe", "int8", "--out", "{tmp}/b"], "each recipe may be given once"),
        (["export", "tiny", "--out", "{tmp}"], "exists and is not an albert-edge bundle"),
        (["export", "tiny", "--tokenizer", "{tmp}/none.model", "--out", "{tmp}/b"], "none.model does not exist"),
        (["export", "tiny", "--jobs", "0", "--out", "{tmp}/b"], "--jobs 0 is not a positive integer"),
        (["run", "{tmp}", "hi"], "not a bundle: no manifest.json"),
    ],
)
def test_user_errors_are_one_line_and_fast(argv, message, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("user data")
    rc, _, err = run_cli([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert rc == 2
    assert err.startswith("albert-edge: error: ") and message in err and "Traceback" not in err
    assert (tmp_path / "keep.txt").read_text() == "user data"
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_export_with_two_jobs_matches_one_job(exported, tmp_path):
    """--jobs 2 lowers fp32 and int8 in two spawned processes; its programs behave exactly like
    those of the in-process (--jobs 1) export of the ``exported`` fixture.

    Not byte for byte: ExecuTorch orders some named constants of a quantized program by Python's
    per-process string hashing (same program bytes under one PYTHONHASHSEED), so int8 files from
    two processes can differ in layout while their outputs are identical."""
    out = tmp_path / "tiny-bundle-j2"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["export", "tiny", "--recipe", "fp32", "--recipe", "int8", "--max-seq-len", str(FIXED),
                   "--fixed-length", "--out", str(out), "--jobs", "2"])
    assert rc == 0, stderr.getvalue()
    err = stderr.getvalue()
    for i, name in enumerate(["fp32", "int8"], 1):  # each recipe's start and finish line
        assert f"[{i}/2] {name}: quantize, export and lower to XNNPACK" in err and "in a worker process" in err
        assert re.search(rf"^\[{i}/2\] {name}: [0-9.]+ MB, \d+% delegated, [0-9.]+ s$", err, re.M)
    one, two = read_manifest(exported[0]), read_manifest(out)
    assert [p["name"] for p in two["programs"]] == [p["name"] for p in one["programs"]] == ["fp32", "int8"]
    keys = ("file", "size_bytes", "recipe", "delegation")
    assert [{k: p[k] for k in keys} for p in two["programs"]] == [{k: p[k] for k in keys} for p in one["programs"]]
    assert all(c.ok for c in Bundle.load(out).check_goldens())
    bundles = Bundle.load(exported[0]), Bundle.load(out)
    cases = json.loads((exported[0] / "goldens.json").read_text())["cases"]
    for name in ("fp32", "int8"):
        for case in cases:
            inputs = [torch.tensor([case[n]]) for n in ("input_ids", "attention_mask", "token_type_ids")]
            expected, actual = (b.programs[name].run(*inputs) for b in bundles)
            assert all(torch.equal(a, e) for a, e in zip(actual, expected)), (name, case["id"])


def _lower_fails_for_int8(model, head, recipe, max_seq_len, dynamic, exits=False):
    """Stands in for ``bundle._lower_in_worker`` (spawned workers import it from this module)."""
    if recipe == "int8":
        raise RuntimeError("lowering exploded")
    report = DelegationReport(0, {}, {})
    return LoweredProgram(b"", RECIPES[recipe], max_seq_len, dynamic, report, 0.0)


def test_a_worker_failure_raises_with_its_recipe_named(tmp_path, monkeypatch):
    monkeypatch.setattr("albert_edge.bundle._lower_in_worker", _lower_fails_for_int8)
    lines = []
    with pytest.raises(RuntimeError, match="lowering exploded") as err:
        export_bundle("tiny", tmp_path / "b", ["fp32", "int8"], max_seq_len=8, jobs=2, progress=lines.append)
    assert "raised while lowering recipe 'int8' in a worker process (export jobs=2)" in err.value.__notes__
    assert any(line.startswith("[2/2] int8: quantize") for line in lines)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_export_refuses_a_bad_jobs_value(jobs, tmp_path):
    with pytest.raises(BundleError, match=re.escape(f"--jobs {jobs!r} is not a positive integer")):
        export_bundle("tiny", tmp_path / "b", ["fp32", "int8"], jobs=jobs)
    assert not (tmp_path / "b").exists()


def test_unknown_recipe_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "tiny", "--recipe", "int9", "--out", str(tmp_path / "b")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'int9'" in capsys.readouterr().err


# ---- run ------------------------------------------------------------------------------------------


def test_run_prints_label_and_probabilities(classifier_bundle, capsys):
    texts = ["The movie was wonderful.", "I did not like this at all!"]
    rc, out, _ = run_cli(["run", str(classifier_bundle), *texts, "--program", "fp32"], capsys)
    assert rc == 0
    expected = Bundle.load(classifier_bundle).classify(texts, program="fp32")
    lines = out.splitlines()
    assert len(lines) == 2
    for line, r in zip(lines, expected):
        label, probs, text = line.split("\t")
        assert label == r["label"] and text == r["text"]
        parsed = dict(item.split("=") for item in probs.split())
        assert list(parsed) == list(LABELS)
        assert [float(v) for v in parsed.values()] == pytest.approx(list(r["probs"].values()), abs=1e-4)


def test_run_reads_stdin(classifier_bundle, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("first line\nsecond line\n"))
    rc, out, _ = run_cli(["run", str(classifier_bundle)], capsys)
    assert rc == 0 and [line.split("\t")[2] for line in out.splitlines()] == ["first line", "second line"]


def test_run_on_a_bundle_that_is_not_a_classifier(exported, capsys):
    rc, _, err = run_cli(["run", str(exported[0]), "hi"], capsys)
    assert rc == 2 and "classify needs a sequence-classification bundle; this bundle's task is 'base'" in err


def test_run_with_threads_in_a_fresh_process(classifier_bundle):
    """--threads resizes ExecuTorch's pool before any program loads (resizing later would crash)."""
    proc = subprocess.run(
        [sys.executable, "-m", "albert_edge", "-v", "run", str(classifier_bundle), "hello there", "--threads", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ExecuTorch threadpool: 1 thread(s)" in proc.stderr
    label, _, text = proc.stdout.strip().split("\t")
    assert label in LABELS and text == "hello there"


def test_run_rejects_a_corrupted_bundle(classifier_bundle, tmp_path, capsys):
    copy = Path(shutil.copytree(classifier_bundle, tmp_path / "copy"))
    data = bytearray((copy / "model_fp32.pte").read_bytes())
    data[100] ^= 1
    (copy / "model_fp32.pte").write_bytes(bytes(data))
    rc, _, err = run_cli(["run", str(copy), "hi"], capsys)
    assert rc == 2 and "model_fp32.pte: sha256 is" in err and "manifest.json expects" in err
