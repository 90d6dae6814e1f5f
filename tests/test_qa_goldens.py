"""The QA fixture textcore's JUnit tests replay (android_demo/textcore/src/test/resources/qa_cases.json)
is what Python gives today: the same windows from the shipped default-qa tokenizer, and the same
answers decoded from its stored logits. Regenerate with `.venv/bin/python export/make_qa_goldens.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from albert_edge.qa import QASettings, decode_answers, make_windows
from albert_edge.tokenizer import AlbertTokenizer

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "android_demo/textcore/src/test/resources/qa_cases.json"
STALE = "qa_cases.json is stale; run `.venv/bin/python export/make_qa_goldens.py`"


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_fixture_header(fixture: dict) -> None:
    assert fixture["format"] == "albert-edge-qa-cases/1"
    spiece = REPO / fixture["spiece"]
    assert hashlib.sha256(spiece.read_bytes()).hexdigest() == fixture["spiece_sha256"], STALE
    cases = fixture["cases"]
    assert len(cases) >= 20
    # The fixture covers what the JVM decoder must get right.
    settings = [c["settings"] for c in cases]
    assert any(len(c["windows"]) > 20 for c in cases)
    assert any(s["no_answer_threshold"] is not None for s in settings)
    assert any(not s["align_to_words"] for s in settings)
    assert any(c["pad"] for c in cases)
    assert any(a["answer"] == "" for c in cases for a in c["answers"])
    assert any(any(ord(ch) > 0xFFFF for ch in a["answer"]) for c in cases for a in c["answers"])


def test_windows_and_answers_are_pythons(fixture: dict) -> None:
    tok = AlbertTokenizer.from_pretrained(REPO / "albert_edge/default_qa_model")
    assert (tok.do_lower_case, tok.keep_accents, tok.split_digit_comma, tok.cls_id) == (
        fixture["do_lower_case"], fixture["keep_accents"], fixture["split_digit_comma"], fixture["cls_id"])
    for i, case in enumerate(fixture["cases"]):
        # (not from_dict, the manifest's reader: one case caps questions above its window on purpose,
        # to check the stride shrinking under a long question, which a bundle's manifest refuses)
        settings = QASettings(**case["settings"])
        windows = make_windows(tok, case["question"], case["context"], settings)
        if case["pad"]:
            windows = [tok.pad(w, settings.max_seq_len) for w in windows]
        got = [{"input_ids": list(w.input_ids), "attention_mask": list(w.attention_mask),
                "token_type_ids": list(w.token_type_ids), "offsets": [list(o) for o in w.offsets],
                "word_ids": list(w.word_ids), "sequence_ids": list(w.sequence_ids)} for w in windows]
        assert got == case["windows"], f"case {i}: windows differ; {STALE}"
        starts = [np.asarray(r, dtype=np.float32) for r in case["start_logits"]]
        ends = [np.asarray(r, dtype=np.float32) for r in case["end_logits"]]
        answers = decode_answers(windows, starts, ends, case["context"], settings, tok.cls_id, case["top_k"])
        want = case["answers"]
        assert [(a["answer"], a["start"], a["end"]) for a in answers] == [
            (a["answer"], a["start"], a["end"]) for a in want], f"case {i}: answers differ; {STALE}"
        for a, w in zip(answers, want):
            assert math.isclose(a["score"], w["score"], rel_tol=1e-5), (i, a, w)
            assert case["context"][a["start"]:a["end"]] == a["answer"]
