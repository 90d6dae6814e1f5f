"""Bundles with early exits: export, manifest ``adaptive``, goldens per step, Bundle.classify's
depth, `albert-edge run` and `verify`, and what an edited bundle gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from adaptive_models import save_adaptive_model

from albert_edge.bundle import export_bundle
from albert_edge.cli import main
from albert_edge.errors import BundleError
from albert_edge.exit_rules import ExitRule
from albert_edge.runtime import Bundle

TEXTS = ["good day", "the food was awful", "a film", "we were so happy and it was great", "terrible " * 20]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, spiece_model_path: Path) -> Path:
    d = tmp_path_factory.mktemp("adaptive-model")
    save_adaptive_model(d, spiece_model_path)
    return d


@pytest.fixture(scope="module")
def bundle_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(model_dir, tmp_path_factory.mktemp("adaptive-bundle") / "b", ("fp32", "int8"),
                         golden_texts=TEXTS)


def test_the_manifest_records_the_rule_and_goldens_every_step(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["adaptive"] == {"num_steps": 4, "rule": {"kind": "patience", "value": 1}}
    goldens = json.loads((bundle_dir / "goldens.json").read_text())
    assert len(goldens["adaptive_cases"]) == len(goldens["cases"])
    for case, steps in zip(goldens["cases"], goldens["adaptive_cases"]):
        for name in ("fp32", "int8"):
            entry = steps["programs"][name]
            assert len(entry["steps"]) == 4
            # the last step is forward's output, as recorded for the plain golden check: bit for
            # bit in fp32, within the program's golden tolerance in int8 (the fused step methods
            # quantize their activations on their own)
            atol = 1e-6 if name == "fp32" else goldens["tolerances"][name]["atol"]  # fp32: stored rounded
            assert np.allclose(entry["steps"][-1], case["programs"][name]["logits"]["values"], atol=atol, rtol=0)
            assert entry["depth"] == ExitRule("patience", 1).depth([np.array(r) for r in entry["steps"]])


def test_classify_reports_depth_and_full_depth_is_forward(bundle_dir: Path) -> None:
    bundle = Bundle.load(bundle_dir)
    assert bundle.exit_rule == ExitRule("patience", 1)
    for name in ("fp32", "int8"):
        prog = bundle.program(name)
        adaptive = bundle.classify(TEXTS, program=name)
        full = bundle.classify(TEXTS, program=name, full_depth=True)
        never = bundle.classify(TEXTS, program=name, rule="confidence=1")
        for text, a, f, n in zip(TEXTS, adaptive, full, never):
            rows = [t[0].numpy() for t in prog.run_steps(prog.check_inputs(*bundle.encode(text, program=name)))]
            depth = ExitRule("patience", 1).depth(rows)
            assert a["depth"] == depth
            assert a["label"] == bundle.labels[int(rows[depth - 1].argmax())]
            assert f["depth"] == 4 and n["depth"] == 4
            # the loop at full depth is forward: in fp32 exactly, in int8 to its quantization noise
            assert f["probs"] == pytest.approx(n["probs"], abs=1e-6 if name == "fp32" else 0.05)
    assert any(r["depth"] < 4 for r in bundle.classify(TEXTS))


def test_verify_replays_steps_and_depths(bundle_dir: Path, capsys) -> None:
    assert all(c.ok and not c.depth_mismatches for c in Bundle.load(bundle_dir).check_goldens())
    assert main(["verify", str(bundle_dir)]) == 0
    assert main(["run", str(bundle_dir), "good day", "--program", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "\tdepth=" in out


def _edited(bundle_dir: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "edited"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_an_edited_rule_is_caught_by_the_depth_replay(bundle_dir: Path, tmp_path: Path) -> None:
    goldens = json.loads((bundle_dir / "goldens.json").read_text())
    if all(c["programs"]["fp32"]["depth"] == 1 for c in goldens["adaptive_cases"]):
        pytest.skip("every case stops at step 1")
    # confidence 0.01 stops every input at step 1
    copy = _edited(bundle_dir, tmp_path, lambda m: m.__setitem__("adaptive", {"num_steps": 4,
                                                                              "rule": {"kind": "confidence", "value": 0.01}}))
    checks = Bundle.load(copy).check_goldens()
    assert any(c.depth_mismatches for c in checks) and not any(c.ok for c in checks)


@pytest.mark.parametrize("adaptive, words", [
    ({"num_steps": 6, "rule": {"kind": "patience", "value": 1}}, "says 6 layer steps, but the program has 4"),
    ({"num_steps": 4, "rule": {"kind": "confidence", "value": 3}}, r"confidence must be in \(0, 1\]"),
    ({"num_steps": 4}, "adaptive must be an object with num_steps and rule"),
    ({"num_steps": 1, "rule": {"kind": "patience", "value": 1}}, "num_steps"),
])
def test_a_bad_adaptive_entry_is_refused(bundle_dir: Path, tmp_path: Path, adaptive, words) -> None:
    copy = _edited(bundle_dir, tmp_path, lambda m: m.__setitem__("adaptive", adaptive))
    with pytest.raises(BundleError, match=words):
        Bundle.load(copy)


def test_export_options_for_exits(model_dir: Path, tmp_path: Path, spiece_model_path: Path) -> None:
    plain = export_bundle(model_dir, tmp_path / "plain", ("fp32",), exits=False, golden_texts=TEXTS[:1])
    manifest = json.loads((plain / "manifest.json").read_text())
    assert "adaptive" not in manifest
    bundle = Bundle.load(plain)
    assert "depth" not in bundle.classify("good day")[0]
    with pytest.raises(BundleError, match="this bundle has no early exits"):
        bundle.classify("good day", rule="patience=1")
    with pytest.raises(BundleError, match="exported without early exits"):
        export_bundle(model_dir, tmp_path / "x", ("fp32",), exits=False, exit_rule="patience=1")
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / "exits.safetensors").unlink()
    with pytest.raises(BundleError, match="no exits.safetensors"):
        export_bundle(bare, tmp_path / "y", ("fp32",), exits=True)
    with pytest.raises(BundleError, match="exit rule kind 'speed'"):
        export_bundle(model_dir, tmp_path / "z", ("fp32",), exit_rule="speed=2")
    other = export_bundle(model_dir, tmp_path / "p", ("fp32",), exit_rule="patience=1", golden_texts=TEXTS[:2])
    assert json.loads((other / "manifest.json").read_text())["adaptive"]["rule"] == {"kind": "patience", "value": 1}
