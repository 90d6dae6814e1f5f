"""Bad input and faults a new user meets, each ending in one line that names the file, field or
value and what is accepted; no silent wrong answer, no traceback, no orphan process, nothing
half-written left behind. (The reliability issue's list, one test or a few per item.)"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from albert_edge._io import atomic_write_json
from albert_edge.bundle import write_bundle
from albert_edge.checkpoint import load_pretrained, save_pretrained
from albert_edge.classifier import TextClassifier
from albert_edge.cli import main
from albert_edge.config import AlbertConfig
from albert_edge.errors import BundleError, CheckpointError, DataError, HarnessError, ProgramError
from albert_edge.harness import DataSettings, compare
from albert_edge.lowering import export_program
from albert_edge.model import AlbertForPreTraining, AlbertForSequenceClassification
from albert_edge.recipes import RECIPES
from albert_edge.runtime import Bundle, Program
from albert_edge.tokenizer import AlbertTokenizer
from export_models import LABELS, lowered_text_classifier

REPO = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def lowered(spiece_model_path):
    return lowered_text_classifier(spiece_model_path)


@pytest.fixture(scope="module")
def bundle_dir(lowered, tmp_path_factory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("rel") / "b", lowered.model, list(lowered.programs.values()),
                        lowered.tokenizer)


@pytest.fixture
def bundle(bundle_dir, tmp_path) -> Path:
    """A scratch copy of the bundle to break."""
    return Path(shutil.copytree(bundle_dir, tmp_path / "b"))


def edit_manifest(path: Path, change) -> None:
    data = json.loads((path / "manifest.json").read_text())
    change(data)
    (path / "manifest.json").write_text(json.dumps(data))


def rewrite_goldens(path: Path, change) -> None:
    """Change goldens.json and update its size and hash in the manifest (so only the change counts)."""
    g = json.loads((path / "goldens.json").read_text())
    change(g)
    (path / "goldens.json").write_text(json.dumps(g))
    data = (path / "goldens.json").read_bytes()
    edit_manifest(path, lambda m: m["goldens"].update(size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))


# ---- silent wrong results -------------------------------------------------------------------------


def test_fewer_labels_than_logits_is_refused_at_load_and_by_verify(bundle, capsys):
    edit_manifest(bundle, lambda m: m.update(labels=["negative", "positive"]))
    with pytest.raises(BundleError, match=r"outputs\[0\] \(logits\): 3 logits per prediction but labels names 2 "
                                          r"\(negative, positive\)"):
        Bundle.load(bundle)
    rc, _, err = run_cli(["verify", str(bundle)], capsys)
    assert rc == 2 and "3 logits per prediction" in err
    rc, out, err = run_cli(["run", str(bundle), "good"], capsys)
    assert rc == 2 and out == ""


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(labels=[0, 1, 2]), r"labels must be a non-empty array of distinct non-empty strings, got \[0, 1, 2\]"),
    (lambda m: m["tokenizer"].update(do_lower_case="false"),
     r"tokenizer: field 'do_lower_case' must be one of true, false, got \"false\""),
    (lambda m: m.update(max_seq_len=16), r"inputs\[0\]: max_seq_len 32 differs from the manifest's max_seq_len 16"),
    (lambda m: m["tokenizer"].update(max_length=64), r"tokenizer: max_length 64 differs from the manifest's max_seq_len 32"),
    (lambda m: m["tokenizer"].update(padding="max_length"),
     r"tokenizer: field 'padding' must be one of \"do_not_pad\", got \"max_length\""),
    (lambda m: m.update(vocab_size=0), r"field 'vocab_size' must be an integer >= 1, got 0"),
    (lambda m: m.update(default_program="int4"), r"field 'default_program' must be one of \"fp32\", \"int8\", got \"int4\""),
    (lambda m: m["goldens"].update(num_cases="12"), r"goldens: field 'num_cases' must be an integer >= 1, got '12'"),
])
def test_manifest_field_types_and_ranges(bundle, change, message):
    edit_manifest(bundle, change)
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle)


def test_edited_tokenizer_settings_are_caught_by_the_goldens(bundle, capsys):
    # Every golden text is lower-case-insensitive only if cased text changes its ids: it does.
    edit_manifest(bundle, lambda m: m["tokenizer"].update(do_lower_case=False))
    with pytest.raises(BundleError, match=r"token ids differ for case \d+ \('.*'\).*do_lower_case=False"):
        Bundle.load(bundle)
    rc, out, err = run_cli(["run", str(bundle), "GREAT MOVIE"], capsys)
    assert rc == 2 and out == "" and "token ids differ for case" in err


@pytest.mark.parametrize("change, message", [
    (lambda g: g.update(cases=[]), r"cases must be a non-empty array"),
    (lambda g: g.pop("cases"), r"cases must be a non-empty array"),
    (lambda g: g["cases"][2].pop("input_ids"), r"cases\[2\]: input_ids must be a non-empty array of integers"),
    (lambda g: g["cases"][1]["programs"]["fp32"]["logits"]["values"].__setitem__(0, "x"),
     r"cases\[1\]\.programs\.fp32\.logits: values must be an array of finite numbers"),
    (lambda g: g["cases"].pop(), r"holds 11 cases but manifest.json goldens.num_cases is 12"),
    (lambda g: g["tolerances"]["int8"].update(atol=None), r"tolerances.int8.atol must be a number >= 0, got None"),
])
def test_goldens_are_validated(bundle, change, message, capsys):
    rewrite_goldens(bundle, change)
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle).check_goldens()
    rc, _, err = run_cli(["verify", str(bundle)], capsys)
    assert rc == 2 and re.search(message, err) and "Traceback" not in err


def test_verify_refuses_a_miscounted_golden_set(bundle, capsys):
    edit_manifest(bundle, lambda m: m["goldens"].update(num_cases=99))
    rc, _, err = run_cli(["verify", str(bundle)], capsys)
    assert rc == 2 and "holds 12 cases but manifest.json goldens.num_cases is 99" in err


def _with_nan(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    return model


def test_non_finite_weights_are_refused_by_name(lowered, tmp_path, capsys):
    model = _with_nan(load_pretrained(lowered.checkpoint))
    save_pretrained(model, tmp_path / "nan", tokenizer_file=lowered.checkpoint / "spiece.model")
    with pytest.raises(CheckpointError, match=r"1 tensor\(s\) hold NaN or infinity: classifier.weight \(1 of 96 values\)"):
        load_pretrained(tmp_path / "nan")
    rc, out, err = run_cli(["classify", "--model", str(tmp_path / "nan"), "some text"], capsys)
    assert rc == 2 and out == "" and "classifier.weight" in err
    rc, _, err = run_cli(["export", str(tmp_path / "nan"), "--recipe", "fp32", "--out", str(tmp_path / "b")], capsys)
    assert rc == 2 and "classifier.weight" in err and not (tmp_path / "b").exists()


def test_non_finite_outputs_name_the_program_and_output(lowered):
    model = _with_nan(load_pretrained(lowered.checkpoint))  # lowered directly, past the checkpoint check
    program = Program(export_program(model, RECIPES["fp32"], max_seq_len=16).buffer, name="nan.pte",
                      output_names=["logits"])
    with pytest.raises(ProgramError, match=r"nan.pte: forward's logits holds 1 non-finite value\(s\) \(NaN or inf\) of 3"):
        program.run(torch.tensor([[2, 7, 3]]))


def test_json_written_by_the_package_is_json(tmp_path):
    with pytest.raises(ValueError, match=r"x.json: refusing to write a non-finite number \(NaN or infinity\)"):
        atomic_write_json(tmp_path / "x.json", {"value": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_classify_keeps_one_output_line_per_input_line(lowered, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"good day\n\nbad day\n"), encoding="utf-8"))
    rc, out, _ = run_cli(["classify", "--model", str(lowered.checkpoint), "--json"], capsys)
    assert rc == 0
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["good day", "", "bad day"]


@pytest.fixture(scope="module")
def finetune_setup(spiece_model_path, tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    tok = AlbertTokenizer.from_file(spiece_model_path)
    torch.manual_seed(0)
    save_pretrained(AlbertForPreTraining(AlbertConfig.from_name("tiny", vocab_size=tok.vocab_size)), d / "pre",
                    tokenizer_file=spiece_model_path)
    rows = [{"text": f"{w} day", "label": lab} for w, lab in (("good", "pos"), ("bad", "neg"))] * 8
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _finetune(d: Path, out: str, *extra: str) -> list[str]:
    return ["finetune", str(d / "pre"), "--data", str(d / "train.jsonl"), "--out", str(d / out), "--steps", "4",
            "--batch-size", "4", "--save-every", "2", "--max-seq-len", "16", "--quiet", *extra]


def test_resume_checks_the_arguments_and_the_data(finetune_setup, capsys):
    d = finetune_setup
    assert run_cli(_finetune(d, "run"), capsys)[0] == 0
    rc, _, err = run_cli(_finetune(d, "run", "--resume", "--batch-size", "8"), capsys)
    assert rc == 2 and "--resume with other settings than the run's: batch_size 4 -> 8" in err
    rows = [{"text": "other text", "label": "pos"}, {"text": "more", "label": "neg"}] * 8
    (d / "other.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = _finetune(d, "run", "--resume")
    args[args.index("--data") + 1] = str(d / "other.jsonl")
    rc, _, err = run_cli(args, capsys)
    assert rc == 2 and "the training examples" in err
    assert run_cli(_finetune(d, "run", "--resume", "--batch-size", "8", "--resume-changed"), capsys)[0] == 0
    assert run_cli(_finetune(d, "run", "--resume", "--log-every", "3"), capsys)[0] == 0  # does not change weights


def test_resume_without_a_run_says_so(finetune_setup, capsys):
    rc, _, err = run_cli(_finetune(finetune_setup, "nothing-here", "--resume"), capsys)
    assert rc == 2 and "--resume, but there is no run to resume (no checkpoint/ in it)" in err


def test_reexport_refuses_to_delete_the_users_files(lowered, bundle):
    (bundle / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match=r"holds files that are not part of its bundle \(notes.txt\); re-exporting "
                                          r"replaces the whole folder and would delete them"):
        write_bundle(bundle, lowered.model, [lowered.programs["fp32"]], lowered.tokenizer)
    assert (bundle / "notes.txt").read_text() == "mine"


def test_reexport_says_it_replaces(lowered, tmp_path, monkeypatch):
    from albert_edge import bundle as bundle_module

    monkeypatch.setattr(bundle_module, "export_program", lambda model, recipe, **kw: lowered.programs[recipe.name])
    lines: list[str] = []
    for _ in range(2):
        bundle_module.export_bundle(lowered.checkpoint, tmp_path / "b", ["fp32"], max_seq_len=32, progress=lines.append)
    assert sum(line.startswith("writing") for line in lines) == 1
    assert sum(line.startswith("replacing the bundle in") for line in lines) == 1


# ---- tracebacks that are now messages -------------------------------------------------------------


@pytest.fixture
def checkpoint(lowered, tmp_path) -> Path:
    return Path(shutil.copytree(lowered.checkpoint, tmp_path / "ck"))


def _shard(checkpoint: Path, weight_map) -> None:
    (checkpoint / "model.safetensors").rename(checkpoint / "part-1.safetensors")
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_a_shard_index_without_a_weight_map_object(checkpoint):
    _shard(checkpoint, ["part-1.safetensors"])
    with pytest.raises(CheckpointError, match=r"'weight_map' must be an object of tensor name -> shard file, got list"):
        load_pretrained(checkpoint)


@pytest.mark.parametrize("shard", ["../part-1.safetensors", "/etc/passwd", "sub/../../x.safetensors"])
def test_shard_paths_stay_inside_the_checkpoint(checkpoint, shard):
    _shard(checkpoint, {"albert.embeddings.word_embeddings.weight": shard})
    with pytest.raises(CheckpointError, match=r"a shard must be a file inside the checkpoint folder"):
        load_pretrained(checkpoint)


def test_info_checks_the_sequence_length_and_describes_bundles(bundle, capsys):
    for n in ("1000", "0"):
        rc, _, err = run_cli(["info", "tiny", "--seq-len", n], capsys)
        assert rc == 2 and f"--seq-len {n} is outside [1, 64] (the model's max_position_embeddings)" in err
    rc, out, _ = run_cli(["info", str(bundle)], capsys)
    assert rc == 0 and "sequence-classification" in out and "int8" in out and "albert-edge run" in out


def test_export_length_one(lowered, tmp_path, capsys):
    """Refused before any lowering, with or without a tokenizer, dynamic or fixed (round two: a
    fixed length of 1 without a tokenizer lowered first and then blamed the input)."""
    for model, fixed in (("tiny", []), ("tiny", ["--fixed-length"]), (str(lowered.checkpoint), ["--fixed-length"])):
        out = tmp_path / f"b{len(fixed)}{len(model)}"
        rc, _, err = run_cli(["export", model, "--recipe", "fp32", "--max-seq-len", "1", *fixed, "--out", str(out)],
                             capsys)
        assert rc == 2 and "--max-seq-len 1 is outside [2, 64]: at least [CLS] and [SEP]" in err
        assert "lowering" not in err and not out.exists()


def test_a_tokenizer_larger_than_the_model(spiece_model_path):
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(AlbertConfig.from_name("tiny", labels=LABELS))  # vocab 99
    with pytest.raises(CheckpointError, match=r"the tokenizer has 1500 pieces but the model's vocab_size is 99"):
        TextClassifier(model, AlbertTokenizer.from_file(spiece_model_path))


def test_long_csv_fields_and_unclosed_quotes(tmp_path):
    from albert_edge.datasets import read_labelled

    long = "word " * 60_000  # 300 kB, beyond the csv module's default field limit of 128 KiB
    (tmp_path / "long.csv").write_text(f'text,label\n"{long}",pos\nshort,neg\n')
    rows = read_labelled(tmp_path / "long.csv")
    assert [len(r.text) for r in rows] == [len(long), 5]
    (tmp_path / "quote.csv").write_text('text,label\nfine,pos\n"never closed,neg\nmore,pos\n')
    with pytest.raises(DataError, match=r"quote.csv: line \d+: not valid CSV \(a quote opened here is never closed\)"):
        read_labelled(tmp_path / "quote.csv")


def test_compare_refuses_a_file_as_out_and_leaves_no_empty_folder(bundle_dir, lowered, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(HarnessError, match=r"--out .*file: exists and is not a folder"):
        compare(bundle_dir, model=lowered.checkpoint, out=tmp_path / "file", progress=False,
                data=DataSettings(str(tmp_path / "missing.csv")))
    with pytest.raises(DataError, match="no such file"):
        compare(bundle_dir, model=lowered.checkpoint, out=tmp_path / "new", progress=False,
                data=DataSettings(str(tmp_path / "missing.csv")))
    assert not (tmp_path / "new").exists()


def test_compare_refuses_export_options_with_a_bundle(bundle_dir, lowered, tmp_path, capsys):
    rc, _, err = run_cli(["compare", str(bundle_dir), "--model", str(lowered.checkpoint), "--recipe", "int4",
                          "--out", str(tmp_path / "r")], capsys)
    assert rc == 2 and "--recipe: only for a model that is exported first" in err


def test_export_into_a_place_it_cannot_write_fails_before_lowering(capsys):
    start = time.perf_counter()
    rc, _, err = run_cli(["export", "tiny", "--recipe", "fp32", "--out", "/sys/albert-edge-bundle"], capsys)
    assert rc == 2 and "cannot write into /sys" in err
    assert time.perf_counter() - start < 5  # nothing was lowered


# ---- faults ---------------------------------------------------------------------------------------


def test_temp_folders_of_a_killed_run_are_removed_by_the_next(lowered, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f".b.{dead.pid}.abcd.tmp", ".b.k2j3h4.tmp", f".b.{dead.pid}.efgh.old"):  # the last: a legacy name
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    (tmp_path / f".b.{os.getpid()}.mine.tmp").mkdir()  # a live writer's (this process): kept
    write_bundle(tmp_path / "b", lowered.model, [lowered.programs["fp32"]], lowered.tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".b.{os.getpid()}.mine.tmp", "b"]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
def test_a_killed_export_leaves_no_process_behind(tmp_path):
    from albert_edge._procs import alive

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    parent = subprocess.Popen([sys.executable, "-m", "albert_edge", "export", "tiny", "--recipe", "fp32", "--recipe",
                               "int8", "--jobs", "2", "--out", str(tmp_path / "b")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    kids: list[int] = []
    while time.time() < deadline and len(kids) < 3:  # the resource tracker and the two workers
        time.sleep(0.5)
        kids = _children(parent.pid)
    assert len(kids) >= 3, kids
    grandkids = [g for k in kids for g in _children(k)]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(p) for p in kids + grandkids):
        time.sleep(0.5)
    assert not [p for p in kids + grandkids if alive(p)]
    assert not (tmp_path / "b").exists()


# ---- unclear messages made clear ------------------------------------------------------------------


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_runs_code_is_refused_by_name(checkpoint, capfd):
    (checkpoint / "model.safetensors").unlink()
    torch.save({"albert.embeddings.word_embeddings.weight": RunsCode()}, checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"refused to unpickle: the file holds more than plain tensors \(it names "
                                              r"posix.system\)"):
        load_pretrained(checkpoint)
    assert "pwned" not in capfd.readouterr().out


def test_text_that_is_not_utf8(bundle_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "albert_edge", "run", str(bundle_dir), b"caf\xe9"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "text argument 1 is not UTF-8 (byte 0xe9 at character 3)" in r.stderr
    r = subprocess.run([sys.executable, "-m", "albert_edge", "run", str(bundle_dir)], env=env, input=b"ok\nbad \xff\n",
                       capture_output=True)
    assert r.returncode == 2 and b"stdin line 2 is not UTF-8 (byte 0xff at byte 4)" in r.stderr
    assert r.stdout.count(b"\n") == 0  # nothing printed before the bad line was found


def test_texts_may_follow_options(bundle_dir, capsys):
    rc, out, _ = run_cli(["run", str(bundle_dir), "--threads", "1", "a good day", "a bad day"], capsys)
    assert rc == 0 and [line.split("\t")[-1] for line in out.splitlines()] == ["a good day", "a bad day"]
    with pytest.raises(SystemExit):
        main(["run", str(bundle_dir), "text", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_classify_takes_strings_only(lowered):
    clf = TextClassifier.from_pretrained(lowered.checkpoint)
    with pytest.raises(TypeError, match="texts must be a str or a list of str, got dict"):
        clf.classify({"a": 1})
