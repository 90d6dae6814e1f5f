"""Bundles: write, read back, verify hashes, replay goldens; every broken bundle is named."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import albert_edge.bundle as bundle_module
from albert_edge.bundle import GOLDEN_MAX_VALUES, default_golden_texts, write_bundle
from albert_edge.bundle_format import FORMAT, read_manifest
from albert_edge.errors import BundleError
from albert_edge.checkpoint import load_model
from albert_edge.runtime import Bundle, Program
from export_models import LABELS, MAX_SEQ_LEN, lowered_text_classifier

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def lowered(spiece_model_path):
    return lowered_text_classifier(spiece_model_path)


@pytest.fixture(scope="module")
def bundle_dir(lowered, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "classifier"
    return write_bundle(out, lowered.model, list(lowered.programs.values()), lowered.tokenizer)


@pytest.fixture(scope="module")
def loaded(bundle_dir) -> Bundle:
    return Bundle.load(bundle_dir)


@pytest.fixture(scope="module")
def manifest(bundle_dir) -> dict:
    return json.loads((bundle_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def goldens(bundle_dir) -> dict:
    return json.loads((bundle_dir / "goldens.json").read_text())


@pytest.fixture
def copy_of(bundle_dir, tmp_path):
    """A scratch copy of the bundle to break."""
    def make() -> Path:
        return Path(shutil.copytree(bundle_dir, tmp_path / "copy"))
    return make


def edit_manifest(path: Path, change) -> None:
    data = json.loads((path / "manifest.json").read_text())
    change(data)
    (path / "manifest.json").write_text(json.dumps(data))


# ---- what is written ----------------------------------------------------------------------------


def test_bundle_files(bundle_dir):
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == ["goldens.json", "manifest.json", "model_fp32.pte", "model_int8.pte", "spiece.model"]
    leftovers = [p.name for p in bundle_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_manifest_fields(manifest, bundle_dir, lowered):
    assert manifest["format"] == FORMAT and manifest["schema_version"] == 1
    assert manifest["created_by"].startswith("albert-edge ")
    assert manifest["task"] == "sequence-classification"
    assert manifest["architecture"] == "AlbertForSequenceClassification"
    assert manifest["labels"] == list(LABELS)
    assert (manifest["max_seq_len"], manifest["vocab_size"], manifest["type_vocab_size"]) == (MAX_SEQ_LEN, 1500, 2)
    assert manifest["default_program"] == "int8"
    tok = manifest["tokenizer"]
    assert tok["file"] == "spiece.model"
    assert tok["sha256"] == hashlib.sha256(lowered.tokenizer.model_proto).hexdigest()
    assert (tok["pad_id"], tok["unk_id"], tok["cls_id"], tok["sep_id"], tok["mask_id"]) == (0, 1, 2, 3, 4)
    assert tok["do_lower_case"] is True and tok["keep_accents"] is False and tok["vocab_size"] == 1500
    assert [p["name"] for p in manifest["programs"]] == ["fp32", "int8"]
    for entry in manifest["programs"]:
        data = (bundle_dir / entry["file"]).read_bytes()
        assert entry["file"] == f"model_{entry['name']}.pte"
        assert entry["size_bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["recipe"] == lowered.programs[entry["name"]].recipe.to_dict()
        assert [i["name"] for i in entry["inputs"]] == list(INPUTS)
        for spec in entry["inputs"]:
            assert spec["dtype"] == "int64" and spec["shape"] == [1, "seq"]
            assert (spec["min_seq_len"], spec["max_seq_len"], spec["dynamic"]) == (1, MAX_SEQ_LEN, True)
        assert entry["outputs"] == [{"name": "logits", "dtype": "float32", "shape": [1, 3]}]
        assert entry["executorch_version"] == "1.5.1"
        assert 0 < entry["delegation"]["delegated_share"] <= 1 and entry["delegation"]["delegate_calls"] >= 1
        assert entry["export_seconds"] > 0
    assert manifest["goldens"]["num_cases"] == len(default_golden_texts(MAX_SEQ_LEN))


def test_output_names_per_head(lowered):
    from albert_edge.config import AlbertConfig
    from albert_edge.model import ARCHITECTURES

    config = AlbertConfig.from_name("tiny")
    names = {arch: [o["name"] for o in bundle_module.output_specs(cls(config))] for arch, cls in ARCHITECTURES.items()}
    assert names == {
        "AlbertModel": ["last_hidden_state", "pooled_output"],
        "AlbertForPreTraining": ["mlm_logits", "sop_logits"],
        "AlbertForMaskedLM": ["logits"],
        "AlbertForSequenceClassification": ["logits"],
        "AlbertForTokenClassification": ["logits"],
        "AlbertForQuestionAnswering": ["start_logits", "end_logits"],
    }
    mlm = bundle_module.output_specs(ARCHITECTURES["AlbertForMaskedLM"](config))
    assert mlm[0]["shape"] == [1, "seq", 99]


def test_golden_token_ids_are_the_tokenizers(goldens, lowered):
    texts = default_golden_texts(MAX_SEQ_LEN)
    assert [c["text"] for c in goldens["cases"]] == texts
    for case in goldens["cases"]:
        enc = lowered.tokenizer.encode(case["text"], max_length=MAX_SEQ_LEN)
        assert case["input_ids"] == list(enc.input_ids)
        assert case["token_type_ids"] == list(enc.token_type_ids)
        assert case["attention_mask"] == [1] * len(enc.input_ids)
    longest = goldens["cases"][-1]
    assert len(lowered.tokenizer.encode(longest["text"]).input_ids) > MAX_SEQ_LEN  # truncated
    assert len(longest["input_ids"]) == MAX_SEQ_LEN and longest["input_ids"][-1] == 3  # ... [SEP]
    assert min(len(c["input_ids"]) for c in goldens["cases"]) == 2  # "" -> [CLS] [SEP]


def test_golden_reference_is_eager_fp32(goldens, lowered):
    for case in goldens["cases"]:
        inputs = [torch.tensor([case[n]]) for n in INPUTS]
        with torch.no_grad():
            ref = lowered.model(*inputs)
        expected = case["reference"]["logits"]
        assert expected["shape"] == [1, 3] and expected["stride"] == 1
        assert torch.allclose(torch.tensor(expected["values"]), ref.reshape(-1), atol=1e-6, rtol=0)


def test_golden_tolerances(goldens):
    tol = goldens["tolerances"]
    assert tol["fp32"]["atol"] == pytest.approx(1e-4)
    assert tol["fp32"]["max_abs_diff_vs_reference"] < 1e-5
    q = tol["int8"]
    assert 0 < q["max_abs_diff_vs_reference"] and q["atol"] >= max(1e-3, 4 * q["max_abs_diff_vs_reference"] * (1 - 1e-5))


def test_goldens_replay_through_the_runtime(bundle_dir, goldens, manifest):
    """Load each .pte from the bundle afresh and compare with the expected outputs."""
    for entry in manifest["programs"]:
        prog = Program(bundle_dir / entry["file"])
        atol = goldens["tolerances"][entry["name"]]["atol"]
        for case in goldens["cases"]:
            (out,) = prog.run(*(torch.tensor([case[n]]) for n in INPUTS))
            expected = case["programs"][entry["name"]]["logits"]
            assert list(out.shape) == expected["shape"]
            diff = (out.reshape(-1)[:: expected["stride"]] - torch.tensor(expected["values"])).abs().max()
            assert diff <= min(atol, 1e-6), (entry["name"], case["id"], float(diff))
            ref = torch.tensor(case["reference"]["logits"]["values"])
            assert (out.reshape(-1) - ref).abs().max() <= atol


def test_bundle_check_goldens(loaded):
    checks = {c.program: c for c in loaded.check_goldens()}
    assert set(checks) == {"fp32", "int8"}
    assert all(c.ok and c.cases == 12 and c.token_id_mismatches == [] for c in checks.values())


def test_check_goldens_catches_wrong_outputs_and_ids(copy_of, capsys):
    from albert_edge.cli import main

    path = copy_of()

    def rewrite_goldens(change) -> None:
        g = json.loads((path / "goldens.json").read_text())
        change(g)
        (path / "goldens.json").write_text(json.dumps(g))
        data = (path / "goldens.json").read_bytes()
        edit_manifest(path, lambda m: m["goldens"].update(size_bytes=len(data),
                                                          sha256=hashlib.sha256(data).hexdigest()))

    rewrite_goldens(lambda g: g["cases"][3]["programs"]["int8"]["logits"]["values"].__setitem__(0, 9.5))
    checks = {c.program: c for c in Bundle.load(path).check_goldens()}
    assert checks["int8"].max_abs_diff > 9 and not checks["int8"].ok and checks["fp32"].ok
    assert main(["verify", str(path)]) == 2
    out, err = capsys.readouterr()
    assert re.search(r"^int8 .* FAILED \(outputs differ from the goldens by more than the tolerance\)$", out, re.M)
    assert "golden cases do not match for program(s) int8" in err
    # A case whose ids no longer come from its text: the bundle does not load, and says which case.
    rewrite_goldens(lambda g: g["cases"][0].update(text="A different text."))
    with pytest.raises(BundleError, match=r"token ids differ for case 0 \('A different text.'\)"):
        Bundle.load(path)
    assert main(["verify", str(path)]) == 2
    assert "token ids differ for case 0" in capsys.readouterr().err


def test_large_outputs_are_strided():
    t = torch.arange(3 * GOLDEN_MAX_VALUES, dtype=torch.float32).reshape(1, 3, GOLDEN_MAX_VALUES)
    stride = bundle_module._stride(t.numel())
    values = bundle_module.golden_values(t, stride)
    assert stride == 3 and len(values) == GOLDEN_MAX_VALUES and values[:3] == [0.0, 3.0, 6.0]
    x = torch.randn(1000)
    assert torch.equal(torch.tensor(bundle_module.golden_values(x, 1), dtype=torch.float32), x)  # exact float32


# ---- loading and classifying --------------------------------------------------------------------


def test_round_trip(loaded, lowered):
    assert set(loaded.programs) == {"fp32", "int8"}
    assert loaded.task == "sequence-classification" and loaded.labels == list(LABELS)
    assert loaded.tokenizer.model_proto == lowered.tokenizer.model_proto
    assert loaded.programs["int8"].max_seq_len == MAX_SEQ_LEN


def test_classify(loaded, lowered):
    texts = ["The movie was wonderful.", "I did not like this at all!", "word " * 100]
    results = loaded.classify(texts, program="fp32")
    assert [r["text"] for r in results] == texts
    for text, r in zip(texts, results):
        assert set(r["probs"]) == set(LABELS) and sum(r["probs"].values()) == pytest.approx(1.0)
        ids = torch.tensor([lowered.tokenizer.encode(text, max_length=MAX_SEQ_LEN).input_ids])
        with torch.no_grad():
            probs = torch.softmax(lowered.model(ids, torch.ones_like(ids), torch.zeros_like(ids))[0], -1)
        assert r["label"] == LABELS[int(probs.argmax())]
        assert list(r["probs"].values()) == pytest.approx(probs.tolist(), abs=1e-5)
    assert loaded.classify("one text")[0]["label"] in LABELS  # default program: int8


def test_classify_unknown_program(loaded):
    with pytest.raises(BundleError, match=r"no program 'int4' in this bundle; it has fp32, int8"):
        loaded.classify(["x"], program="int4")


def test_a_manifest_edited_to_another_task_is_refused(copy_of):
    """Its outputs are not that task's (an app would read them as that task's): refused on load.
    (classify on a real bundle of another task: tests/test_qa_bundle.py.)"""
    path = copy_of()
    edit_manifest(path, lambda m: m.update(task="masked-lm", architecture="AlbertForMaskedLM"))
    with pytest.raises(BundleError, match=r"outputs\[0\] \(logits\): shape \[1, 3\]; accepted: \[1, \"seq\", 1500\]"):
        Bundle.load(path)


# ---- broken bundles -------------------------------------------------------------------------------


def test_sha256_mismatch(copy_of):
    path = copy_of()
    pte = path / "model_int8.pte"
    data = bytearray(pte.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    pte.write_bytes(bytes(data))
    expected = json.loads((path / "manifest.json").read_text())["programs"][1]["sha256"]
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(BundleError, match=re.escape(f"{pte}: sha256 is {actual}, manifest.json expects {expected}")):
        Bundle.load(path)


def test_truncated_file_in_a_bundle(copy_of):
    path = copy_of()
    tok = path / "spiece.model"
    data = tok.read_bytes()
    tok.write_bytes(data[:100])
    with pytest.raises(BundleError, match=re.escape(f"{tok}: size is 100 bytes, manifest.json expects {len(data)}")):
        Bundle.load(path)


def test_missing_file(copy_of):
    path = copy_of()
    (path / "model_fp32.pte").unlink()
    with pytest.raises(BundleError, match=re.escape(f"{path / 'model_fp32.pte'}: missing (manifest.json programs[0].file names it)")):
        read_manifest(path)


def test_unsupported_schema_version(copy_of):
    path = copy_of()
    edit_manifest(path, lambda m: m.update(schema_version=2))
    with pytest.raises(BundleError, match=r"manifest.json: schema_version 2 is not supported by albert-edge .* \(supported: 1\)"):
        Bundle.load(path)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m.pop("labels"), "required field 'labels' is missing"),
        (lambda m: m.update(max_seq_len="32"), "field 'max_seq_len' must be integer, got '32'"),
        (lambda m: m.update(format="something-else"), "format is 'something-else', expected 'albert-edge-bundle'"),
        (lambda m: m.update(task="translation"), "task 'translation' is not one of"),
        (lambda m: m.update(programs=[]), "programs is empty"),
        (lambda m: m["programs"][0].pop("sha256"), "programs[0]: required field 'sha256' is missing"),
        (lambda m: m["programs"][0].update(file="../model_fp32.pte"), "must be a plain file name inside the bundle folder"),
        (lambda m: m["programs"][1].update(name="fp32"), "program name 'fp32' is used twice"),
        (lambda m: m["tokenizer"].update(sha256="abc"), "tokenizer: sha256 must be 64 lower-case hex digits"),
    ],
)
def test_invalid_manifest(copy_of, change, message):
    path = copy_of()
    edit_manifest(path, change)
    with pytest.raises(BundleError, match=re.escape(message)):
        read_manifest(path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match=re.escape(f"{tmp_path}: not a bundle: no manifest.json")):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest.json: not valid JSON"):
        read_manifest(tmp_path)


def test_manifest_and_program_must_agree(copy_of):
    path = copy_of()
    edit_manifest(path, lambda m: m.update(vocab_size=30000))
    with pytest.raises(BundleError, match=r"model_fp32.pte: the program's vocab_size is 1500 but manifest.json says 30000"):
        Bundle.load(path)


# ---- writing: checks and atomicity ---------------------------------------------------------------


def test_rewrite_replaces_a_bundle(lowered, tmp_path):
    out = tmp_path / "b"
    write_bundle(out, lowered.model, [lowered.programs["fp32"]], lowered.tokenizer, golden_texts=["hi"])
    write_bundle(out, lowered.model, [lowered.programs["int8"]], lowered.tokenizer, golden_texts=["hi", "there"])
    m = read_manifest(out)
    assert [p["name"] for p in m["programs"]] == ["int8"] and m["goldens"]["num_cases"] == 2
    assert not (out / "model_fp32.pte").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_failure_mid_write_leaves_the_old_bundle(lowered, tmp_path, monkeypatch):
    out = tmp_path / "b"
    write_bundle(out, lowered.model, [lowered.programs["fp32"]], lowered.tokenizer, golden_texts=["hi"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # The programs and tokenizer are written by then; the goldens and manifest are not.
    monkeypatch.setattr(bundle_module, "compute_goldens", fail)
    with pytest.raises(OSError, match="No space left"):
        write_bundle(out, lowered.model, list(lowered.programs.values()), lowered.tokenizer)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folder left


def test_failure_while_swapping_restores_the_old_bundle(lowered, tmp_path, monkeypatch):
    out = tmp_path / "b"
    write_bundle(out, lowered.model, [lowered.programs["fp32"]], lowered.tokenizer, golden_texts=["hi"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_rename = bundle_module.os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old bundle moved aside; moving the new one in fails
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(bundle_module.os, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        write_bundle(out, lowered.model, [lowered.programs["int8"]], lowered.tokenizer, golden_texts=["x"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_failure_on_a_new_bundle_leaves_nothing(lowered, tmp_path, monkeypatch):
    monkeypatch.setattr(bundle_module, "atomic_write_json", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path / "new", lowered.model, [lowered.programs["fp32"]], lowered.tokenizer)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(lowered, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(BundleError, match=r"photos: exists and is not an albert-edge bundle"):
        write_bundle(tmp_path / "photos", lowered.model, [lowered.programs["fp32"]], lowered.tokenizer)
    assert (tmp_path / "photos" / "cat.jpg").exists()


def test_programs_must_share_their_bounds(lowered, tmp_path):
    other = dataclasses.replace(lowered.programs["int8"], max_seq_len=16)
    with pytest.raises(BundleError, match=r"must share max_seq_len and dynamic; got fp32: max_seq_len=32 dynamic=True, int8: max_seq_len=16"):
        write_bundle(tmp_path / "b", lowered.model, [lowered.programs["fp32"], other], lowered.tokenizer)
    with pytest.raises(BundleError, match=r"distinct recipe names"):
        write_bundle(tmp_path / "b", lowered.model, [lowered.programs["fp32"]] * 2, lowered.tokenizer)
    with pytest.raises(BundleError, match=r"at least one program"):
        write_bundle(tmp_path / "b", lowered.model, [], lowered.tokenizer)


def test_tokenizer_larger_than_the_vocabulary(lowered, tmp_path):
    small = load_model("tiny", "sequence-classification")  # vocab 99
    with pytest.raises(BundleError, match=r"the tokenizer has 1500 pieces but the model's vocab_size is 99"):
        write_bundle(tmp_path / "b", small, [lowered.programs["fp32"]], lowered.tokenizer)


def test_bundle_without_tokenizer(lowered, tmp_path):
    out = write_bundle(tmp_path / "b", lowered.model, [lowered.programs["fp32"]], None)
    assert not (out / "spiece.model").exists()
    manifest = read_manifest(out)
    assert manifest["tokenizer"] is None
    goldens = json.loads((out / "goldens.json").read_text())
    lengths = [len(c["input_ids"]) for c in goldens["cases"]]
    assert 1 in lengths and MAX_SEQ_LEN in lengths
    assert all(c["text"] is None for c in goldens["cases"])
    assert any(1 in c["token_type_ids"] for c in goldens["cases"])
    b = Bundle.load(out)
    assert b.tokenizer is None and all(c.ok for c in b.check_goldens())
    with pytest.raises(BundleError, match=r"this bundle has no tokenizer"):
        b.classify(["text"])
