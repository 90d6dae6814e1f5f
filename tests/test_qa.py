"""albert_edge.qa against transformers 4.57's question-answering pipeline, and its input checks.

The reference cases (tests/data/qa_reference/pipeline_cases.jsonl) come from
tests/make_qa_pipeline_goldens.py, which runs the pipeline on the random-weight checkpoint next
to them; its docstring says how to regenerate them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from albert_edge.checkpoint import load_pretrained
from albert_edge.qa import MAX_CONTEXT_CHARS, QAError, QASettings, answer_question, decode_answers, make_windows
from albert_edge.tokenizer import AlbertTokenizer, TokenizerError

REFERENCE = Path(__file__).resolve().parent / "data" / "qa_reference"


def _read_cases() -> tuple[dict, list[dict]]:
    lines = (REFERENCE / "pipeline_cases.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


HEADER, CASES = _read_cases()


def _settings(case: dict) -> QASettings:
    return QASettings(
        max_seq_len=case["max_seq_len"],
        doc_stride=case["doc_stride"],
        max_answer_len=case["max_answer_len"],
        no_answer_threshold=0.0 if case["handle_impossible_answer"] else None,
    )


@pytest.fixture(scope="module")
def tok() -> AlbertTokenizer:
    return AlbertTokenizer.from_pretrained(REFERENCE)


@pytest.fixture(scope="module")
def run():
    model = load_pretrained(REFERENCE)

    def forward(window):
        def t(x):
            return torch.tensor([x])

        with torch.no_grad():
            start, end = model(t(window.input_ids), t(window.attention_mask), t(window.token_type_ids))
        return start[0].numpy(), end[0].numpy()

    return forward


def test_reference_cases_cover_what_matters() -> None:
    assert HEADER["reference"].startswith("transformers 4.57")
    assert len(CASES) >= 200
    assert sum(len(c["windows"]) > 1 for c in CASES) >= 100
    assert max(len(c["windows"]) for c in CASES) >= 5
    assert sum(c["top_k"] > 1 for c in CASES) >= 30
    assert sum(c["handle_impossible_answer"] for c in CASES) >= 30
    assert any(a["answer"] == "" for c in CASES for a in c["answers"])  # "no answer" won somewhere
    assert {c["max_answer_len"] for c in CASES} >= {1, 3, 15, 30}


def test_windows_equal_the_pipeline_features(tok: AlbertTokenizer) -> None:
    for case in CASES:
        windows = make_windows(tok, case["question"], case["context"], _settings(case))
        got = [{"input_ids": list(w.input_ids), "token_type_ids": list(w.token_type_ids)} for w in windows]
        assert got == case["windows"], case["question"]


def test_answers_equal_the_pipeline(tok: AlbertTokenizer, run) -> None:
    for case in CASES:
        got = answer_question(tok, run, case["question"], case["context"], _settings(case), top_k=case["top_k"])
        expected = case["answers"]
        assert [(a["answer"], a["start"], a["end"]) for a in got] == [
            (a["answer"], a["start"], a["end"]) for a in expected
        ], case["question"]
        for a, b in zip(got, expected):
            assert a["score"] == pytest.approx(b["score"], rel=1e-4, abs=1e-12)
            assert case["context"][a["start"] : a["end"]] == a["answer"]


def test_threshold_moves_the_no_answer_decision(tok: AlbertTokenizer, run) -> None:
    case = next(c for c in CASES if len(c["windows"]) > 1)
    base = QASettings(max_seq_len=case["max_seq_len"], doc_stride=case["doc_stride"])
    span = answer_question(tok, run, case["question"], case["context"], base)[0]
    with_null = answer_question(
        tok, run, case["question"], case["context"], QASettings(**{**base.to_dict(), "no_answer_threshold": 0.0}), 5
    )
    null = next(a for a in with_null if a["answer"] == "")
    ratio = np.log(null["score"] / span["score"])  # log(p_null / p_best_span)
    for t, expect_null in ((ratio - 0.01, True), (ratio + 0.01, False)):
        settings = QASettings(**{**base.to_dict(), "no_answer_threshold": float(t)})
        best = answer_question(tok, run, case["question"], case["context"], settings)[0]
        assert (best["answer"] == "") is expect_null


def test_question_is_cut_to_max_question_len(tok: AlbertTokenizer) -> None:
    question = " ".join(["what about the river"] * 30)
    settings = QASettings(max_seq_len=64, doc_stride=8, max_question_len=10)
    windows = make_windows(tok, question, "The river runs to the sea in the north.", settings)
    assert len(windows) == 1
    assert windows[0].token_type_ids.count(0) == 10 + 2  # [CLS] 10 question tokens [SEP]


@pytest.mark.parametrize(
    ("question", "context", "message"),
    [
        ("", "some text", "question is empty"),
        ("who?", "  \n ", "context is empty"),
        ("who?", None, "context must be a string"),
        ("who?", "x " * (MAX_CONTEXT_CHARS // 2 + 1), f"at most {MAX_CONTEXT_CHARS:,}"),
    ],
)
def test_bad_question_or_context(tok: AlbertTokenizer, question, context, message) -> None:
    with pytest.raises(QAError, match=message):
        make_windows(tok, question, context, QASettings(max_seq_len=64, doc_stride=16))


def test_a_megabyte_context_is_refused_quickly(tok: AlbertTokenizer) -> None:
    with pytest.raises(QAError, match="1,000,000 characters"):
        make_windows(tok, "who?", "a" * 1_000_000, QASettings())


def test_question_that_leaves_no_room(tok: AlbertTokenizer) -> None:
    settings = QASettings(max_seq_len=16, doc_stride=2, max_question_len=64)
    with pytest.raises(QAError, match="leaves no room"):
        make_windows(tok, "what " * 20, "the answer", settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_seq_len": 4}, "max_seq_len=4"),
        ({"doc_stride": 384}, "doc_stride=384 must be smaller"),
        ({"max_answer_len": 0}, "max_answer_len=0"),
        ({"no_answer_threshold": float("nan")}, "no_answer_threshold=nan"),
        ({"max_question_len": True}, "max_question_len=True"),
    ],
)
def test_bad_settings(values, message) -> None:
    with pytest.raises(QAError, match=message):
        QASettings(**values)


def test_settings_round_trip_and_name_bad_fields() -> None:
    s = QASettings.for_length(128, no_answer_threshold=1.5)
    assert (s.doc_stride, s.max_question_len) == (64, 64)
    assert QASettings.from_dict(s.to_dict()) == s
    with pytest.raises(QAError, match="unknown field.*stride"):
        QASettings.from_dict({**s.to_dict(), "stride": 3}, where="manifest.json qa")
    with pytest.raises(QAError, match="lacks field.*max_answer_len"):
        QASettings.from_dict({k: v for k, v in s.to_dict().items() if k != "max_answer_len"})


def test_decode_checks_its_inputs(tok: AlbertTokenizer) -> None:
    settings = QASettings(max_seq_len=32, doc_stride=4)
    windows = make_windows(tok, "who?", "Alice wrote it.", settings)
    n = len(windows[0])
    with pytest.raises(QAError, match="top_k=0"):
        decode_answers(windows, [np.zeros(n)], [np.zeros(n)], "Alice wrote it.", settings, tok.cls_id, top_k=0)
    with pytest.raises(QAError, match="one of each per window"):
        decode_answers(windows, [], [], "Alice wrote it.", settings, tok.cls_id)
    with pytest.raises(QAError, match="for a window of"):
        decode_answers(windows, [np.zeros(n + 1)], [np.zeros(n + 1)], "Alice wrote it.", settings, tok.cls_id)


def test_a_long_question_shrinks_the_stride_to_half_a_window(tok: AlbertTokenizer) -> None:
    """Where the pipeline fails (doc_stride >= the context tokens a window holds), we use half of them."""
    settings = QASettings(max_seq_len=48, doc_stride=20, max_question_len=30)
    question, context = "what about the river " * 12, "the river runs north " * 40
    assert len(tok.tokenize(question)) > 30  # cut to 30: 15 context tokens per window < doc_stride
    windows = make_windows(tok, question, context, settings)
    room = 48 - 30 - 3
    firsts = [next(i for i, q in enumerate(w.sequence_ids) if q == 1) for w in windows]
    starts = [w.offsets[f][0] for w, f in zip(windows, firsts)]
    tokens = tok.encode_windows(question, context, max_length=10_000)[0]
    context_starts = [o[0] for o, q in zip(tokens.offsets, tokens.sequence_ids) if q == 1]
    assert starts[:3] == [context_starts[0], context_starts[room - room // 2], context_starts[2 * (room - room // 2)]]
    with pytest.raises(TokenizerError, match="stride=20 must be smaller"):
        tok.encode_windows(question, context, max_length=48, stride=20, max_text_tokens=30)


def test_as_many_candidates_as_spans(tok: AlbertTokenizer) -> None:
    """A window of n tokens has n² span scores; top_k with 2 top_k + 10 == n² decodes (argpartition
    cannot partition at the array's length) and gives the best spans."""
    settings = QASettings(max_seq_len=8, doc_stride=2, max_question_len=4)
    window = make_windows(tok, "x", "a b", settings)[0]
    n = len(window) + len(window) % 2  # even, so that n² - 10 is
    window = tok.pad(window, n)
    top_k = (n * n - 10) // 2
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=n).astype(np.float32), rng.normal(size=n).astype(np.float32)
    answers = decode_answers([window], [start], [end], "a b", settings, tok.cls_id, top_k=top_k)
    assert answers and answers == sorted(answers, key=lambda a: -a["score"])


def test_top_k_beyond_the_real_spans_adds_no_cls_spans(tok):
    """A short window and top_k above its number of spans: every answer is a span of context
    words, never "" or a part word built from [CLS] (probability-0 spans the pipeline lists)."""
    context = "alpha beta gamma"
    settings = QASettings(max_seq_len=32, doc_stride=8)
    (window,) = make_windows(tok, "what?", context, settings)
    ctx = [i for i, q in enumerate(window.sequence_ids) if q == 1]
    start = np.full(len(window), -5.0, np.float32)
    end = np.full(len(window), -5.0, np.float32)
    start[ctx[0]], end[ctx[-1]] = 3.0, 3.0  # the whole context is the best answer
    answers = decode_answers([window], [start], [end], context, settings, tok.cls_id, top_k=100)
    words = context.split()
    allowed = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
    assert answers[0]["answer"] == context
    assert [a for a in answers if a["answer"] not in allowed] == []


def test_when_every_span_underflows_the_answer_is_none_not_an_empty_list(tok):
    settings = QASettings(max_seq_len=32, doc_stride=8)
    (window,) = make_windows(tok, "what?", "alpha beta gamma", settings)
    start = np.zeros(len(window), np.float32)
    start[0] = 200.0  # all the probability on [CLS]: every span's product is 0 in float32
    for k in (1, 3, 50):
        answers = decode_answers([window], [start], [start.copy()], "alpha beta gamma", settings, tok.cls_id, top_k=k)
        assert answers == [{"answer": "", "start": 0, "end": 0, "score": 0.0}]
