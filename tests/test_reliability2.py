"""Reliability, round two (the second probe's findings): each wrong answer becomes a refusal or
the right answer, each traceback one line naming the file, field or value and what is accepted.
(The gate, compare's folder, verify and QA bundles have their tests beside their modules:
test_report.py, test_harness.py, test_qa_bundle.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from albert_edge._machine import max_threads
from albert_edge.bundle import write_bundle
from albert_edge.checkpoint import load_pretrained, save_pretrained
from albert_edge.classifier import TextClassifier
from albert_edge.errors import CheckpointError
from albert_edge.qa import QAError, QASettings
from albert_edge.runtime import Bundle
from albert_edge.tokenizer import AlbertTokenizer, TokenizerError
from test_reliability import bundle_dir, lowered, run_cli  # noqa: F401 (fixtures)


def test_overflowing_logits_are_refused_not_printed_as_nan(lowered, tmp_path, capsys):
    model = load_pretrained(lowered.checkpoint)
    with torch.no_grad():
        model.classifier.weight.fill_(3e38)  # every logit overflows float32
    save_pretrained(model, tmp_path / "huge", tokenizer_file=Path(lowered.checkpoint) / "spiece.model")
    with pytest.raises(CheckpointError, match=r"logits for texts\[0\] are not finite"):
        TextClassifier.from_pretrained(tmp_path / "huge").classify(["good"])
    rc, out, err = run_cli(["classify", "--model", str(tmp_path / "huge"), "--json", "good"], capsys)
    assert rc == 2 and out == "" and "not finite" in err and len(err.strip().splitlines()) == 1


def test_classify_takes_text_not_bytes(bundle_dir, lowered):
    bundle = Bundle.load(bundle_dir)
    clf = TextClassifier.from_pretrained(lowered.checkpoint)
    for classify in (bundle.classify, clf.classify):
        with pytest.raises(TypeError, match=r"texts is bytes; accepted: a str or a list of str \(decode bytes first"):
            classify(b"great stuff")
        with pytest.raises(TypeError, match=r"texts\[1\] is int; accepted: str"):
            classify(["fine", 3])


@pytest.mark.parametrize("cut", [-3, 0, 1.5, True])
def test_encode_windows_refuses_a_question_cut_that_is_not_a_positive_count(spiece_model_path, cut):
    tok = AlbertTokenizer.from_file(spiece_model_path)
    with pytest.raises(TokenizerError, match=rf"max_text_tokens={cut!r}; accepted: an int >= 1"):
        tok.encode_windows("what is it?", "it is a test of the system", max_length=32, stride=4,
                           max_text_tokens=cut)
    assert len(tok.encode_windows("what is it?", "it is a test", max_length=32, max_text_tokens=2)[0].input_ids) > 5


def test_thread_counts_are_bounded_before_anything_runs(bundle_dir, capsys):
    too_many = max_threads() + 1
    rc, out, err = run_cli(["run", str(bundle_dir), "--threads", str(too_many), "good"], capsys)
    assert rc == 2 and out == ""
    assert f"num_threads={too_many}: accepted: 1 to {max_threads()}" in err and len(err.strip().splitlines()) == 1
    from albert_edge.errors import HarnessError
    from albert_edge.harness import LatencySettings

    with pytest.raises(HarnessError, match=rf"threads={too_many}: accepted: 1 to {max_threads()}"):
        LatencySettings(threads=(1, too_many))


def test_qa_settings_that_cannot_work_are_refused():
    with pytest.raises(QAError, match=r"qa: QA setting max_question_len=29 leaves no context in a window of "
                                      r"max_seq_len=32 .*accepted: at most 28"):
        QASettings.from_dict({**QASettings(max_seq_len=32, doc_stride=8).to_dict(), "max_question_len": 29})
    QASettings(max_seq_len=32, doc_stride=8, max_question_len=28).check_question_fits()  # one context token


def test_ctrl_c_ends_in_one_line_with_no_worker_tracebacks(tmp_path):
    """Ctrl-C reaches the whole process group (the command and its lowering workers)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # As from an interactive shell: a test run started in the background inherits SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-m", "albert_edge", "export", "tiny", "--recipe", "fp32", "--recipe",
                             "int8", "--jobs", "2", "--out", str(tmp_path / "b")],
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(8)  # imports done, workers lowering
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == "albert-edge: export: interrupted"
    assert not (tmp_path / "b").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    import errno
    import json

    from albert_edge import report as report_module
    from report_fixtures import tiny_report

    (tmp_path / "report.json").write_text(json.dumps(tiny_report()))

    def full(_report, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report_module, "plot_tradeoff", full)
    rc, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "tradeoff.png: No space left on device" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # nothing half-written


def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, spiece_model_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "run"
    rc, _, err = run_cli(["compare", "tiny", "--out", str(out), "--data", "nowhere.csv"], capsys)
    assert rc == 2 and f"--out {out}: cannot write into {blocker}" in err
    for command in (["finetune", "tiny", "--data", "nowhere.csv"], ["pretrain", "--text", "nowhere.txt"]):
        rc, _, err = run_cli([*command, "--out", str(out)], capsys)
        assert rc == 2 and f"--out {out}: cannot write into {blocker}" in err, err


def test_a_bundle_folder_that_cannot_be_renamed_is_replaced_file_by_file(lowered, tmp_path, monkeypatch):
    """A mount point (or a folder in a read-only parent) cannot be swapped whole: the bundle is
    built inside it and its files are renamed into place, instead of an EBUSY after the lowering."""
    import os

    from albert_edge import _io

    out = tmp_path / "mounted"
    write_bundle(out, lowered.model, [lowered.programs["fp32"]], lowered.tokenizer, golden_texts=["hi"])
    inode = out.stat().st_ino
    real_ismount = os.path.ismount
    monkeypatch.setattr(_io.os.path, "ismount", lambda p: Path(p) == out or real_ismount(p))
    real_rename = os.rename

    def no_renaming_the_mount(src, dst, *a, **k):
        if Path(src) == out:
            raise OSError(16, "Device or resource busy", str(src))
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(_io.os, "rename", no_renaming_the_mount)
    write_bundle(out, lowered.model, [lowered.programs["fp32"], lowered.programs["int8"]], lowered.tokenizer,
                 golden_texts=["hi", "there"])
    assert out.stat().st_ino == inode
    assert {p.name for p in out.iterdir()} == {"manifest.json", "model_fp32.pte", "model_int8.pte", "spiece.model",
                                               "goldens.json"}
    assert [c.ok for c in Bundle.load(out).check_goldens()] == [True, True]


def test_a_manifest_path_given_for_a_bundle_says_which_folder(bundle_dir):
    from albert_edge.errors import BundleError

    with pytest.raises(BundleError, match=rf"manifest.json: is a file, not a bundle folder; give the folder that "
                                          rf"holds it, {bundle_dir}"):
        Bundle.load(bundle_dir / "manifest.json")


def test_a_json_file_of_one_document_that_is_not_squad_says_what_it_holds(tmp_path):
    import json

    from albert_edge.errors import DataError
    from albert_edge.qa_data import read_qa

    record = {"question": "Who?", "context": "Ann did.", "answers": [{"text": "Ann", "answer_start": 0}]}
    cases = [([record, record], r"holds a list of 2; expected SQuAD JSON .* not a list in one JSON document"),
             (json.dumps(record, indent=2), r"holds an object without 'data'; .* not one record in one JSON document")]
    for content, message in cases:
        path = tmp_path / "qa.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(DataError, match=message):
            read_qa(path)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n")  # JSON Lines of one question: still read
    assert [e.question for e in read_qa(path)] == ["Who?"]


@pytest.mark.parametrize("content, line", [
    ('text,label\nok,pos\n"bad,neg\nmore,pos\n', 3),
    ('text,label\n"bad,neg', 2),
    ('text,label\nok,pos\n"multi\nline",neg\n"bad,neg\n', 5),
    ('text,label\na,pos\n\n\n"b,neg', 5),
    ('"text,label\na,pos\n', 1),
])
def test_an_unclosed_quote_is_reported_on_the_line_that_opens_it(tmp_path, content, line):
    from albert_edge.datasets import DataError, read_labelled

    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"line {line}: not valid CSV \(a quote opened here is never closed\)"):
        read_labelled(path)


def test_data_that_is_a_folder_or_missing_is_named_as_such(tmp_path):
    from albert_edge.datasets import DataError, read_labelled

    with pytest.raises(DataError, match=rf"{tmp_path}: is a folder; give a data file \(.csv"):
        read_labelled(tmp_path)
    with pytest.raises(DataError, match=r"nowhere.txt: no such file"):
        read_labelled(tmp_path / "nowhere.txt")


def test_a_short_golden_row_blames_the_goldens_not_the_program(bundle_dir, tmp_path):
    import json

    from albert_edge.bundle_format import file_entry
    from albert_edge.errors import BundleError

    copy = Path(shutil.copytree(bundle_dir, tmp_path / "b"))
    goldens = json.loads((copy / "goldens.json").read_text())
    goldens["cases"][0]["programs"]["int8"]["logits"]["values"].pop()
    (copy / "goldens.json").write_text(json.dumps(goldens))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["goldens"].update(file_entry(copy / "goldens.json"))
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"cases\[0\]\.programs\.int8\.logits: 2 values for shape \[1, 3\] and "
                                          r"stride 1 \(expected 3\): goldens.json was edited or cut"):
        Bundle.load(copy)


def test_json_nested_too_deeply_is_one_line_naming_the_file(tmp_path, bundle_dir):
    from albert_edge.datasets import DataError, read_labelled
    from albert_edge.errors import BundleError
    from albert_edge.qa_data import read_qa

    deep = "[" * 100_000 + "]" * 100_000
    copy = Path(shutil.copytree(bundle_dir, tmp_path / "b"))
    (copy / "manifest.json").write_text(deep)
    with pytest.raises(BundleError, match=r"manifest.json: JSON nested too deeply to read"):
        Bundle.load(copy)
    for name in ("squad.json", "squad.jsonl"):
        (tmp_path / name).write_text(deep + "\n")
        with pytest.raises(DataError, match=rf"{name}.*JSON nested too deeply to read"):
            read_qa(tmp_path / name)
    (tmp_path / "rows.jsonl").write_text('{"text": "a", "label": "b"}\n' + deep + "\n")
    with pytest.raises(DataError, match=r"rows.jsonl: 1 bad row\(s\): line 2: JSON nested too deeply to read"):
        read_labelled(tmp_path / "rows.jsonl")


def test_a_reader_that_goes_away_ends_the_command_quietly(bundle_dir):
    import subprocess
    import sys

    script = (f"yes 'good stuff' | head -n 3000 | {sys.executable} -m albert_edge run {bundle_dir} --program fp32 "
              "2>err.txt | head -n 1 >/dev/null; echo ${PIPESTATUS[2]}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=bundle_dir.parent, timeout=600)
    assert done.stdout.strip() == "141", done
    assert (bundle_dir.parent / "err.txt").read_text() == ""


def test_a_bind_mounted_out_folder_is_replaced_in_place(lowered, tmp_path, monkeypatch):
    """os.path.ismount misses a bind mount of the same filesystem; its rename fails (EBUSY/EXDEV):
    the new files are brought into the folder instead of failing after the lowering."""
    import errno
    import os

    from albert_edge import _io

    out = tmp_path / "bound"
    write_bundle(out, lowered.model, [lowered.programs["fp32"]], lowered.tokenizer, golden_texts=["hi"])
    inode = out.stat().st_ino
    real_rename = os.rename

    def busy(src, dst, *a, **k):
        if Path(src) == out:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        if Path(dst).parent == out and Path(src).parent != out and not str(Path(src).parent).startswith(str(out)):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(_io.os, "rename", busy)
    write_bundle(out, lowered.model, [lowered.programs["fp32"], lowered.programs["int8"]], lowered.tokenizer,
                 golden_texts=["hi", "there"])
    assert out.stat().st_ino == inode
    assert sorted(p.name for p in out.iterdir()) == ["goldens.json", "manifest.json", "model_fp32.pte",
                                                     "model_int8.pte", "spiece.model"]
    assert all(c.ok for c in Bundle.load(out).check_goldens())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bound.")]


def test_a_qa_bundle_whose_question_length_leaves_no_context_is_not_written(tmp_path):
    from albert_edge.errors import BundleError
    from albert_edge.qa import QASettings
    from albert_edge.bundle import _check_qa

    tok = AlbertTokenizer.from_pretrained(Path(__file__).resolve().parent / "data" / "qa_reference")
    with pytest.raises(BundleError, match=r"max_question_len=64 leaves no context in a window of max_seq_len=32"):
        _check_qa(QASettings(max_seq_len=32, doc_stride=16), tok, 32)


def test_a_jsonl_context_may_hold_unicode_line_separators(tmp_path):
    import json

    from albert_edge.qa_data import read_qa

    context = "Ann built it.\u2028Bob painted it.\u0085Then it rained."
    record = {"question": "Who painted it?", "context": context,
              "answers": [{"text": "Bob", "answer_start": context.index("Bob")}]}
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n" + json.dumps(record, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    assert [e.context for e in read_qa(path)] == [context, context]


def test_ask_reads_a_context_file_whose_name_is_not_utf8(tmp_path, capsys, bundle_dir):
    import os

    name = os.fsdecode(b"passage-\xe9.txt")
    (tmp_path / name).write_text("Some passage.", encoding="utf-8")
    rc, _, err = run_cli(["ask", str(bundle_dir), "--question", "What?", "--context", f"@{tmp_path / name}"], capsys)
    # (a classification bundle: refused for its task, after the file was read, not for the file's name)
    assert rc == 2 and "not UTF-8" not in err and "answer needs a 'question-answering' bundle" in err, err


@pytest.mark.parametrize(("disposition", "rc", "out"), [("SIG_DFL", 130, ""), ("SIG_IGN", 0, "alive\n")])
def test_a_worker_follows_its_parents_sigint(disposition, rc, out):
    """A worker ends on Ctrl-C (exit 130), unless SIGINT is ignored, as in a background job,
    where the parent ignores it too and a dead worker would only break its pool."""
    import signal
    import subprocess
    import sys

    code = ("import os, signal, time; from albert_edge._procs import die_with_parent; "
            "die_with_parent(os.getppid()); os.kill(os.getpid(), signal.SIGINT); time.sleep(0.5); print('alive')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, getattr(signal, disposition)))
    assert (proc.returncode, proc.stdout) == (rc, out), proc.stderr
