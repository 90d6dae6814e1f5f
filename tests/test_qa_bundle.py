"""Question-answering bundles end to end: export, manifest, goldens, Bundle.answer, `ask`, compare.

The model is the random-weight transformers checkpoint of tests/data/qa_reference (its answers
are checked against transformers' QA pipeline in test_qa.py); here the programs must answer as
the eager model does, and every layer around them must carry QA through.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export_models import lowered_text_classifier

from albert_edge import _textgen
from albert_edge.bundle import export_bundle, long_context, write_bundle
from albert_edge.bundle_format import read_goldens, read_manifest
from albert_edge.cli import main
from albert_edge.errors import BundleError
from albert_edge.harness import REFERENCE, DataSettings, LatencySettings, compare
from albert_edge.qa import QASettings, decode_answers, make_windows
from albert_edge.qa_data import QAExample, squad_scores, write_qa_jsonl
from albert_edge.runtime import Bundle
from albert_edge.workflows import answer_eagerly, eager_answers

pytestmark = pytest.mark.slow  # one export (two programs) and one comparison per module

REFERENCE_MODEL = Path(__file__).resolve().parent / "data" / "qa_reference"
SENTENCES = [s for s in _textgen.training_corpus()[:600] if "``" not in s and "''" not in s]


def _questions(n: int, seed: int = 3) -> list[QAExample]:
    """Questions whose answer is a word of the context (random models answer anything; the
    point is that every program answers the same way)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        context = " ".join(rng.sample(SENTENCES, rng.randint(1, 5)))
        words = context.split()
        k = rng.randrange(len(words))
        start = len(" ".join(words[:k])) + (1 if k else 0)
        out.append(QAExample(f"q{i}", " ".join(rng.sample(words, min(4, len(words)))) + "?", context,
                             ((words[k], start),)))
    return out


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qa") / "bundle"
    return export_bundle(REFERENCE_MODEL, out, ("fp32", "int8"), jobs=2, qa_options={"max_answer_len": 10})


@pytest.fixture(scope="module")
def bundle(bundle_dir) -> Bundle:
    return Bundle.load(bundle_dir)


def test_manifest_carries_the_qa_settings(bundle_dir) -> None:
    manifest = read_manifest(bundle_dir)
    assert manifest["task"] == "question-answering"
    # The checkpoint has 160 positions: the QA default of 384 is cut to that.
    assert manifest["max_seq_len"] == 160
    assert QASettings.from_dict(manifest["qa"]) == QASettings.for_length(160, max_answer_len=10)


def test_programs_answer_as_the_eager_model(bundle) -> None:
    settings = bundle.qa_settings
    cases = [(e.question, e.context) for e in _questions(12)] + [("Who runs the ferry?", long_context(160))]
    windows = [len(make_windows(bundle.tokenizer, q, c, settings)) for q, c in cases]
    assert max(windows) >= 3  # several windows are covered
    for q, c in cases:
        eager = eager_answers(REFERENCE_MODEL, q, c, top_k=3, settings=settings)
        fp32 = bundle.answer(q, c, top_k=3, program="fp32")
        assert [(a["answer"], a["start"], a["end"]) for a in fp32] == [(a["answer"], a["start"], a["end"]) for a in eager]
        assert [a["score"] for a in fp32] == pytest.approx([a["score"] for a in eager], rel=1e-3)
        for a in bundle.answer(q, c, top_k=2):  # the default program: int8
            assert c[a["start"]:a["end"]] == a["answer"]


def test_qa_goldens_replay_from_their_logits(bundle_dir, bundle) -> None:
    """What an app checks: its windows equal the goldens', and decoding the golden logits gives
    the golden answers."""
    manifest = read_manifest(bundle_dir)
    goldens = read_goldens(bundle_dir, manifest)
    assert len(goldens["qa_cases"]) >= 5
    assert max(len(c["windows"]) for c in goldens["qa_cases"]) >= 3
    settings = bundle.qa_settings
    for case in goldens["qa_cases"]:
        windows = make_windows(bundle.tokenizer, case["question"], case["context"], settings)
        assert [list(w.input_ids) for w in windows] == [w["input_ids"] for w in case["windows"]]
        assert [[list(o) for o in w.offsets] for w in windows] == [w["offsets"] for w in case["windows"]]
        for name, entry in case["programs"].items():
            answers = decode_answers(windows, [np.asarray(s, np.float32) for s in entry["start_logits"]],
                                     [np.asarray(e, np.float32) for e in entry["end_logits"]], case["context"],
                                     settings, bundle.tokenizer.cls_id, case["top_k"])
            assert [(a["answer"], a["start"], a["end"]) for a in answers] == [
                (a["answer"], a["start"], a["end"]) for a in entry["answers"]], name
    assert all(c.ok for c in bundle.check_goldens())


def test_classify_needs_a_classifier(bundle) -> None:
    with pytest.raises(BundleError, match=r"classify needs a sequence-classification bundle; this bundle's task is "
                                          r"'question-answering'"):
        bundle.classify(["x"])


def test_edited_qa_settings_are_refused(bundle_dir, tmp_path) -> None:
    copy = tmp_path / "edited"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["qa"]["max_seq_len"] = 128
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="qa.max_seq_len 128 differs"):
        read_manifest(copy)
    del manifest["qa"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="needs qa"):
        read_manifest(copy)


def test_ask_answers_from_a_bundle_and_a_checkpoint(bundle_dir, tmp_path, capsys) -> None:
    e = _questions(1)[0]
    assert main(["ask", str(bundle_dir), "--question", e.question, "--context", e.context, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"# {bundle_dir} (program int8)") and len(lines) == 3
    score, span, text = lines[1].split("\t")
    a, b = map(int, span.split("-"))
    assert e.context[a:b] == text and 0 < float(score) <= 1
    passage = tmp_path / "passage.txt"
    passage.write_text(e.context, encoding="utf-8")
    assert main(["ask", str(REFERENCE_MODEL), "--question", e.question, "--context", f"@{passage}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("(eager fp32)") and len(out) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--question", "", "--context", "some text"], "question is empty"),
        (["--question", "who?", "--context", "   "], "context is empty"),
        (["--question", "who?", "--context", "@/nonexistent/passage.txt"], "is not a file"),
        (["--question", "who?", "--context", "x" * 1_000_001], "at most 100,000"),
    ],
)
def test_ask_refuses_bad_input_in_one_line(bundle_dir, args, message, capsys) -> None:
    assert main(["ask", str(bundle_dir), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_ask_refuses_a_classification_model(spiece_model_path, tmp_path, capsys) -> None:
    assert main(["ask", "default", "--question", "who?", "--context", "Alice."]) == 2
    assert "AlbertForQuestionAnswering" in capsys.readouterr().err
    lowered = lowered_text_classifier(spiece_model_path)
    bundle = write_bundle(tmp_path / "clf", lowered.model, list(lowered.programs.values()), lowered.tokenizer)
    assert main(["ask", str(bundle), "--question", "who?", "--context", "Alice."]) == 2
    err = capsys.readouterr().err.strip()
    assert "answer needs a 'question-answering' bundle" in err and "sequence-classification" in err
    with pytest.raises(BundleError, match="no QA settings"):
        Bundle.load(bundle).qa_settings


def test_compare_reports_em_f1_agreement_and_changed_answers(bundle_dir, tmp_path) -> None:
    questions = _questions(30, seed=5)
    data = write_qa_jsonl(tmp_path / "qa.jsonl", questions)
    latency = LatencySettings(threads=(1,), warmup=1, rounds=1, runs=1, data_inputs=3)
    report = compare(bundle_dir, model=REFERENCE_MODEL, out=tmp_path / "cmp", data=DataSettings(str(data)),
                     latency=latency, progress=False)
    programs = {p["name"]: p for p in report["programs"]}
    assert report["data"]["questions"] == 30 and report["data"]["rows"] >= 30
    # EM/F1 of the eager reference, computed independently of the harness:
    expected = squad_scores(questions, answer_eagerly(REFERENCE_MODEL, questions, QASettings.from_dict(report["qa"])))
    assert programs[REFERENCE]["accuracy"]["exact_match"] == pytest.approx(expected["exact_match"])
    assert programs[REFERENCE]["accuracy"]["f1"] == pytest.approx(expected["f1"])
    for name in ("fp32", "int8"):
        p = programs[name]
        agree = sum(a["answer"] == b["answer"] for a, b in zip(p["answers"], programs[REFERENCE]["answers"])) / 30
        assert p["fidelity"]["answer_agreement"] == pytest.approx(agree)
        assert p["flips"]["count"] == round(30 * (1 - agree))
        for f in p["flips"]["listed"]:
            assert f["reference"] != f["program"] and f["question"] == questions[f["index"]].question
    assert programs["fp32"]["fidelity"]["answer_agreement"] == 1.0
    lengths = [x["seq_len"] for x in report["latency_settings"]["timed_inputs"]]
    assert {128, 160} <= set(lengths)  # QA inputs are long: probes up to max_seq_len
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "## Question answering (SQuAD exact match and F1, %)" in md and "30 questions" in md


def test_verify_replays_the_qa_cases_and_catches_a_changed_logit(bundle_dir, tmp_path, capsys) -> None:
    assert main(["verify", str(bundle_dir)]) == 0
    out = capsys.readouterr().out
    n = len(read_goldens(bundle_dir, read_manifest(bundle_dir))["cases"]) + 6
    assert f"{n} cases" in out and "FAILED" not in out
    copy = tmp_path / "edited"
    shutil.copytree(bundle_dir, copy)
    goldens = json.loads((copy / "goldens.json").read_text())
    goldens["qa_cases"][0]["programs"]["fp32"]["start_logits"][0][1] += 0.5
    (copy / "goldens.json").write_text(json.dumps(goldens))
    manifest = json.loads((copy / "manifest.json").read_text())
    from albert_edge.bundle_format import file_entry

    manifest["goldens"].update(file_entry(copy / "goldens.json"))
    (copy / "manifest.json").write_text(json.dumps(manifest))
    checks = {c.program: c for c in Bundle.load(copy).check_goldens()}
    assert not checks["fp32"].ok and checks["fp32"].max_abs_diff == pytest.approx(0.5, abs=1e-3)
    assert checks["int8"].ok


TOKENIZE = Path(__file__).resolve().parents[1] / "android_demo" / "tools" / "tokenize"


def _replay_qa_on_the_jvm(bundle: Path) -> subprocess.CompletedProcess:
    built = subprocess.run([str(TOKENIZE), "--build"], check=False, capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"compiling textcore failed (run `make kotlin`):\n{built.stderr}", pytrace=False)
    return subprocess.run([str(TOKENIZE), "--check-bundle", str(bundle)], check=False, capture_output=True, text=True)


def test_textcore_reproduces_every_qa_golden_case(bundle_dir, tmp_path) -> None:
    """The app's Kotlin QA (android_demo/textcore) gives the goldens' windows, and from each
    program's golden logits exactly the answers Python decoded; a changed golden answer is caught."""
    r = _replay_qa_on_the_jvm(bundle_dir)
    n = len(json.loads((bundle_dir / "goldens.json").read_text())["qa_cases"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"checked {n} qa cases, 2 programs: 0 differences" in r.stdout
    assert "tokenizer: gives every golden case's ids" in r.stdout
    # A fixed-length bundle: padded windows and logits.
    fixed = export_bundle(REFERENCE_MODEL, tmp_path / "fixed", ("fp32",), dynamic=False, max_seq_len=48,
                          qa_options={"doc_stride": 16})
    r = _replay_qa_on_the_jvm(fixed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 programs: 0 differences" in r.stdout
    goldens = json.loads((fixed / "goldens.json").read_text())
    assert any(len(c["windows"]) > 1 for c in goldens["qa_cases"])
    # An edited golden answer is a difference, named.
    edited = tmp_path / "edited"
    shutil.copytree(bundle_dir, edited)
    goldens = json.loads((edited / "goldens.json").read_text())
    goldens["qa_cases"][0]["programs"]["int8"]["answers"][0]["end"] += 1
    (edited / "goldens.json").write_text(json.dumps(goldens))
    r = _replay_qa_on_the_jvm(edited)
    assert r.returncode == 1
    assert "qa_cases[0]" in r.stdout and "int8: answer 0 is" in r.stdout
    # Edited tokenizer settings (the manifest has no hash) are caught on the golden text cases.
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["tokenizer"]["do_lower_case"] = not manifest["tokenizer"]["do_lower_case"]
    (edited / "manifest.json").write_text(json.dumps(manifest))
    r = _replay_qa_on_the_jvm(edited)
    assert r.returncode == 1 and "tokenizer: differs" in r.stdout and "re-export the bundle" in r.stdout, r.stdout


def _edited(bundle_dir: Path, tmp_path: Path, manifest_change=None, goldens_change=None) -> Path:
    """A copy of the bundle with the manifest and/or goldens edited by hand (file digests updated,
    as a careful hand would)."""
    from albert_edge.bundle_format import file_entry

    copy = tmp_path / "edited"
    shutil.copytree(bundle_dir, copy)
    if goldens_change is not None:
        goldens = json.loads((copy / "goldens.json").read_text())
        goldens_change(goldens)
        (copy / "goldens.json").write_text(json.dumps(goldens))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["goldens"].update(file_entry(copy / "goldens.json"))
    if manifest_change is not None:
        manifest_change(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _first_answer(goldens: dict) -> dict:
    return goldens["qa_cases"][0]["programs"]["fp32"]["answers"][0]


# Hand edits that change what an app answers: `verify` must fail on each (exit 2, naming why).
ANSWER_EDITS = [
    ("max_answer_len", lambda m: m["qa"].update(max_answer_len=1), None),
    ("no_answer_threshold", lambda m: m["qa"].update(no_answer_threshold=-100.0), None),
    ("align_to_words", lambda m: m["qa"].update(align_to_words=not m["qa"]["align_to_words"]), None),
    ("doc_stride", lambda m: m["qa"].update(doc_stride=0), None),
    ("max_question_len", lambda m: m["qa"].update(max_question_len=2), None),
    ("a golden answer's text", None, lambda g: _first_answer(g).update(answer="something else")),
    ("a golden answer's start", None, lambda g: _first_answer(g).update(start=_first_answer(g)["start"] + 1)),
    ("a window's offsets", None,
     lambda g: g["qa_cases"][0]["windows"][0]["offsets"].__setitem__(-2, [0, 1])),
]


@pytest.mark.parametrize("what, manifest_change, goldens_change", ANSWER_EDITS, ids=[e[0] for e in ANSWER_EDITS])
def test_verify_fails_on_hand_edits_that_change_answers(bundle_dir, tmp_path, capsys, what, manifest_change,
                                                        goldens_change) -> None:
    copy = _edited(bundle_dir, tmp_path, manifest_change, goldens_change)
    assert main(["verify", str(copy)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(r"the (golden answers|windows \(token ids, offsets or words\)) of QA golden case \d+", err), err
    with pytest.raises(BundleError, match="manifest.json or goldens.json was edited"):
        Bundle.load(copy)  # nor does anything else answer from it (ask, compare)


OUTPUT_EDITS = [
    ("outputs swapped", lambda m: m["programs"][0].update(outputs=m["programs"][0]["outputs"][::-1]),
     r"outputs: names \['end_logits', 'start_logits'\]"),
    ("an output renamed", lambda m: m["programs"][1]["outputs"][0].update(name="logits"), r"outputs: names \['logits'"),
    ("a wrong dtype", lambda m: m["programs"][0]["outputs"][1].update(dtype="float16"),
     r"outputs\[1\] \(end_logits\): field 'dtype' must be one of \"float32\""),
    ("a wrong shape", lambda m: m["programs"][0]["outputs"][0].update(shape=[1, "seq", 2]),
     r"outputs\[0\] \(start_logits\): shape \[1, \"seq\", 2\]; accepted: \[1, \"seq\"\]"),
    ("a fixed length for seq", lambda m: m["programs"][0]["outputs"][0].update(shape=[1, 7]),
     r"shape \[1, 7\]"),
]


@pytest.mark.parametrize("what, change, message", OUTPUT_EDITS, ids=[e[0] for e in OUTPUT_EDITS])
def test_outputs_are_checked_as_the_app_reads_them(bundle_dir, tmp_path, capsys, what, change, message) -> None:
    copy = _edited(bundle_dir, tmp_path, change)
    with pytest.raises(BundleError, match=message):
        read_manifest(copy)
    assert main(["verify", str(copy)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_top_k_lists_only_whole_word_spans_and_no_null_answer_without_a_threshold(bundle, bundle_dir, capsys) -> None:
    """More answers asked for than a short passage has spans: the list ends with the real spans,
    instead of "(no answer)" and part words made of [CLS]-based spans of probability 0."""
    context = "Alpha beta gamma delta."
    settings = bundle.qa_settings
    assert settings.no_answer_threshold is None and settings.align_to_words
    answers = bundle.answer("What is beta?", context, top_k=60)
    assert answers and all(a["answer"] for a in answers)
    for a in answers:
        assert a["start"] == 0 or context[a["start"] - 1] == " ", a
        assert a["end"] == len(context) or context[a["end"]] in " .", a
    assert main(["ask", str(bundle_dir), "--question", "What is beta?", "--context", context, "--top-k", "60"]) == 0
    assert "(no answer)" not in capsys.readouterr().out


def test_ask_names_text_that_is_not_utf8(bundle_dir, capsys) -> None:
    bad = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")  # as Python decodes such argv
    for option, value in (("--context", bad), ("--question", bad)):
        args = {"--question": "What?", "--context": "Some passage.", option: value}
        assert main(["ask", str(bundle_dir), *[x for kv in args.items() for x in kv]]) == 2
        err = capsys.readouterr().err
        assert f"{option} is not UTF-8 (byte 0xe9 at character 3); pass UTF-8 text" in err, err
        assert "surrogate" not in err


def test_a_short_golden_logit_row_blames_the_goldens(bundle_dir, tmp_path) -> None:
    copy = _edited(bundle_dir, tmp_path, None,
                   lambda g: g["qa_cases"][0]["programs"]["int8"]["start_logits"][0].pop())
    with pytest.raises(BundleError, match=r"qa_cases\[0\]\.programs\.int8\.start_logits\[0\]: \d+ logits for a window "
                                          r"of \d+ tokens \(one per token\): goldens.json was edited or cut"):
        Bundle.load(copy)


def test_a_golden_window_edited_out_of_shape_is_refused_not_a_traceback(bundle_dir, tmp_path) -> None:
    copy = _edited(bundle_dir, tmp_path, None,
                   lambda g: g["qa_cases"][0]["windows"][0].update(offsets=[0] * len(g["qa_cases"][0]["windows"][0]["offsets"])))
    with pytest.raises(BundleError, match=r"qa_cases\[0\]\.windows\[0\]: offsets \(\[start, end\] per token\) must be "
                                          r"arrays of \d+ values, one per token"):
        Bundle.load(copy)
