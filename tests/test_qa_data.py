"""QA data files (SQuAD JSON, JSON Lines), SQuAD scores, training labels and the cloze splits.

Expected scores are worked out by hand from the official SQuAD v1.1/v2.0 evaluation script's
rules: lower case, punctuation and the whole words a/an/the removed, whitespace collapsed; token
F1 over the multiset of tokens; the maximum over gold answers; no gold answer means [""].
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_edge._textgen import training_corpus
from albert_edge.errors import DataError
from albert_edge.qa import QASettings, make_windows
from albert_edge.qa_data import (
    QAExample,
    cloze_split,
    exact_match,
    f1_score,
    normalize_answer,
    read_qa,
    squad_scores,
    training_features,
    write_qa_jsonl,
)
from albert_edge.tokenizer import AlbertTokenizer

REFERENCE = Path(__file__).resolve().parent / "data" / "qa_reference"

CTX_A = "Paris is the capital of France. It lies on the Seine."
CTX_B = "The Nile flows north through Egypt into the Mediterranean Sea."

SQUAD_V1 = {
    "version": "1.1",
    "data": [
        {
            "title": "France",
            "paragraphs": [
                {
                    "context": CTX_A,
                    "qas": [
                        {"id": "fr-1", "question": "What is the capital of France?",
                         "answers": [{"text": "Paris", "answer_start": 0}, {"text": "Paris", "answer_start": 0}]},
                        {"id": "fr-2", "question": "On which river?",
                         "answers": [{"text": "the Seine", "answer_start": 43}]},
                    ],
                }
            ],
        },
        {
            "title": "Egypt",
            "paragraphs": [
                {"context": CTX_B, "qas": [{"id": "eg-1", "question": "Which way does the Nile flow?",
                                             "answers": [{"text": "north", "answer_start": 15}]}]}
            ],
        },
    ],
}


def _write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---- reading ---------------------------------------------------------------------------------


def test_squad_v1_json(tmp_path: Path) -> None:
    examples = read_qa(_write_json(tmp_path / "v1.json", SQUAD_V1))
    assert examples == [
        QAExample("fr-1", "What is the capital of France?", CTX_A, (("Paris", 0), ("Paris", 0))),
        QAExample("fr-2", "On which river?", CTX_A, (("the Seine", 43),)),
        QAExample("eg-1", "Which way does the Nile flow?", CTX_B, (("north", 15),)),
    ]
    assert all(e.has_answer for e in examples)
    assert [e.id for e in read_qa(tmp_path / "v1.json", limit=2)] == ["fr-1", "fr-2"]


def test_squad_v2_json_no_answer_questions(tmp_path: Path) -> None:
    doc = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": CTX_A, "qas": [
        {"id": "a", "question": "What is the capital of France?", "is_impossible": False,
         "answers": [{"text": "Paris", "answer_start": 0}]},
        # SQuAD 2.0 keeps the distractor span under plausible_answers; answers is empty.
        {"id": "b", "question": "What is the capital of Spain?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "Paris", "answer_start": 0}]},
        # is_impossible wins over answers that are there anyway.
        {"id": "c", "question": "What is the capital of Italy?", "is_impossible": True,
         "answers": [{"text": "Paris", "answer_start": 0}]},
    ]}]}]}
    examples = read_qa(_write_json(tmp_path / "v2.json", doc))
    assert [(e.id, e.answers, e.has_answer) for e in examples] == [
        ("a", (("Paris", 0),), True), ("b", (), False), ("c", (), False)]


def test_jsonl_list_and_columnar_answers(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "q.jsonl", [
        {"id": "x1", "question": "Capital?", "context": CTX_A, "answers": [{"text": "France", "answer_start": 24}]},
        {"id": "x2", "question": "River?", "context": CTX_A,
         "answers": {"text": ["Seine", "the Seine"], "answer_start": [47, 43]}},
        {"question": "Spain?", "context": CTX_A, "answers": {"text": [], "answer_start": []}},
        {"id": 7, "question": "Sea?", "context": CTX_B, "answers": []},
    ])
    path.write_text(path.read_text(encoding="utf-8") + "\n  \n", encoding="utf-8")  # blank lines are skipped
    examples = read_qa(path)
    assert [(e.id, e.answers) for e in examples] == [
        ("x1", (("France", 24),)),
        ("x2", (("Seine", 47), ("the Seine", 43))),
        ("line-3", ()),
        ("7", ()),
    ]
    assert [e.id for e in read_qa(path, limit=1)] == ["x1"]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    examples = [
        QAExample("u1", "Où est « Zürich » ?", "Zürich liegt in der Schweiz. 東京 is far.",
                  (("Zürich", 0), ("東京", 29))),
        QAExample("u2", "Nothing?", CTX_B, ()),
    ]
    path = write_qa_jsonl(tmp_path / "out.jsonl", examples)
    assert path == tmp_path / "out.jsonl"
    assert read_qa(path) == examples
    assert "Zürich" in path.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes


# ---- errors: one line naming the file and the record -----------------------------------------


def _jsonl_with_bad_second_line(tmp_path: Path, bad: dict) -> Path:
    good = {"question": "Capital?", "context": CTX_A, "answers": [{"text": "Paris", "answer_start": 0}]}
    return _write_jsonl(tmp_path / "bad.jsonl", [good, {**good, **bad}])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"answers": [{"text": "Paris", "answer_start": 3}]},
         "answer 'Paris' is not at answer_start=3 of the context (the context has 'is is' there)"),
        ({"question": "   "}, "question is empty"),
        ({"context": ""}, "context is empty"),
        ({"question": 42}, "question must be a string, got int"),
        ({"context": None}, "context must be a string, got NoneType"),
        ({"answers": "Paris"}, "answers must be a list"),
        ({"answers": [{"text": "Paris"}]}, "answers[0] must be an object with text and answer_start"),
        ({"answers": [{"text": "Paris", "answer_start": "0"}]}, "int answer_start"),
        ({"answers": {"text": ["Paris"], "answer_start": []}}, "must be lists of equal length"),
    ],
)
def test_bad_jsonl_record_names_file_and_line(tmp_path: Path, bad: dict, message: str) -> None:
    path = _jsonl_with_bad_second_line(tmp_path, bad)
    with pytest.raises(DataError) as excinfo:
        read_qa(path)
    text = _one_line_error(excinfo)
    assert text.startswith(f"{path} line 2: ")
    assert message in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answers": [{"text": "Seine", "answer_start": 40}]}, "(the context has 'on th' there)"),
        ({"question": ""}, "question is empty"),
        ({"answers": [{"answer_start": 43}]}, "answers[0] must be an object with text and answer_start"),
        ({"answers": {"text": "the Seine"}}, "answers must be a list"),
    ],
)
def test_bad_squad_question_names_its_path(tmp_path: Path, change: dict, message: str) -> None:
    doc = json.loads(json.dumps(SQUAD_V1))
    doc["data"][0]["paragraphs"][0]["qas"][1].update(change)
    path = _write_json(tmp_path / "squad.json", doc)
    with pytest.raises(DataError) as excinfo:
        read_qa(path)
    text = _one_line_error(excinfo)
    assert text.startswith(f"{path}: data[0].paragraphs[0].qas[1]: ")
    assert message in text


def test_bad_squad_context_names_the_question(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(SQUAD_V1))
    doc["data"][1]["paragraphs"][0]["context"] = " \n "
    path = _write_json(tmp_path / "squad.json", doc)
    with pytest.raises(DataError) as excinfo:
        read_qa(path)
    assert _one_line_error(excinfo) == f"{path}: data[1].paragraphs[0].qas[0]: context is empty"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"question": "q", "context": "c", "answers": []}\nnot json\n', "line 2: not a JSON object"),
        (b'{"question": "q", "context": "caf\xe9"}\n', "not UTF-8 text (byte 33)"),
        (b"", "no questions"),
        (b"\n\n", "no questions"),
        (b'{"data": []}', "no questions in data"),
        (b'{"data": {"paragraphs": []}}', "data must be a list of articles"),
        (b'{"data": [{"title": "t"}]}', "data[0].paragraphs must be a list"),
        (b"[1, 2]\n", "line 1: expected an object, got list"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        read_qa(path)
    text = _one_line_error(excinfo)
    assert text.startswith(str(path)) and message in text


@pytest.mark.parametrize(
    "answer",
    [
        # Python's negative slice finds it, counting from the end.
        {"text": "France", "answer_start": CTX_A.index("France") - len(CTX_A)},
        {"text": "", "answer_start": 5},  # an empty span; training_features labels it end < start
    ],
)
def test_negative_start_or_empty_answer_is_refused(tmp_path: Path, answer: dict) -> None:
    path = _write_jsonl(tmp_path / "q.jsonl", [{"question": "Where?", "context": CTX_A, "answers": [answer]}])
    with pytest.raises(DataError, match="line 1.*(outside the context|text is empty)"):
        read_qa(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        read_qa(tmp_path / "nope.json")
    text = _one_line_error(excinfo)
    assert str(tmp_path / "nope.json") in text and "does not exist" in text


# ---- scores ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Cat!", "cat"),
        ("  An   apple, a   day. ", "apple day"),
        ("Theatre and thesis", "theatre and thesis"),  # articles only as whole words
        ("the-cat", "thecat"),  # punctuation goes first, so no article is left to remove
        ("U.S. army's 1,000", "us armys 1000"),
        ("A\tan\nthe", ""),
    ],
)
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        ("The Cat!", ["cat"], 1.0, 1.0),
        ("cat", ["dog"], 0.0, 0.0),
        # "big red dog" vs "red dog barked": 2 common of 3 and 3, P = R = 2/3.
        ("the big red dog", ["red dog barked"], 0.0, 2 / 3),
        # multiset overlap: x once, y once; P = 2/3, R = 1, F1 = 2 * (2/3) / (5/3) = 0.8.
        ("x x y", ["x y"], 0.0, 0.8),
        ("x y", ["x x y"], 0.0, 0.8),
        ("a a b", ["a b"], 1.0, 1.0),  # only "b" is left of either
        # the maximum over gold answers: 0 vs P = 1, R = 2/3, F1 = 0.8.
        ("red dog", ["cat", "a big red dog"], 0.0, 0.8),
        ("", ["Paris"], 0.0, 0.0),
        ("Paris", [""], 0.0, 0.0),
        # no gold answer: only an empty (after normalisation) prediction scores.
        ("", [], 1.0, 1.0),
        ("The.", [], 1.0, 1.0),
        ("Paris", [], 0.0, 0.0),
    ],
)
def test_exact_match_and_f1(prediction: str, gold: list[str], em: float, f1: float) -> None:
    assert exact_match(prediction, gold) == em
    assert f1_score(prediction, gold) == pytest.approx(f1, abs=1e-12)


def _ex(qid: str, *answers: str) -> QAExample:
    context = " ".join(answers) or "nothing here"
    starts, pos = [], 0
    for a in answers:
        starts.append(pos)
        pos += len(a) + 1
    return QAExample(qid, "q?", context, tuple(zip(answers, starts)))


def test_squad_scores_in_percent_with_split() -> None:
    examples = [_ex("1", "red dog barked"), _ex("2", "Paris"), _ex("3"), _ex("4")]
    predictions = ["the big red dog", "paris.", "", "something"]
    # EM 0, 1, 1, 0; F1 2/3, 1, 1, 0.
    scores = squad_scores(examples, predictions)
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 2) / 4)
    assert scores["questions"] == 4
    assert scores["has_answer"] == pytest.approx({"exact_match": 50.0, "f1": 100 * (2 / 3 + 1) / 2, "questions": 2})
    assert scores["no_answer"] == pytest.approx({"exact_match": 50.0, "f1": 50.0, "questions": 2})


@pytest.mark.parametrize("examples", [[_ex("1", "cat"), _ex("2", "dog")], [_ex("1"), _ex("2")]])
def test_squad_scores_without_split_when_one_kind(examples: list[QAExample]) -> None:
    scores = squad_scores(examples, ["cat", "cat"])
    assert set(scores) == {"exact_match", "f1", "questions"}


def test_squad_scores_needs_one_prediction_per_question() -> None:
    with pytest.raises(DataError, match="1 predictions for 2 questions"):
        squad_scores([_ex("1", "cat"), _ex("2", "dog")], ["cat"])
    with pytest.raises(DataError, match="no questions"):
        squad_scores([], [])


# ---- training labels -------------------------------------------------------------------------

SETTINGS = QASettings(max_seq_len=32, doc_stride=8)


@pytest.fixture(scope="module")
def tok() -> AlbertTokenizer:
    return AlbertTokenizer.from_pretrained(REFERENCE)


def _long_context_examples() -> list[QAExample]:
    """A ~100-word context and one question per answer: every 4th word, and some two-word spans."""
    context = " ".join(training_corpus(8, seed=5))
    words, pos = [], 0
    for w in context.split():
        start = context.index(w, pos)
        pos = start + len(w)
        core = w.strip(".,;:!?()\"'“”`")
        if core and core.isalnum():
            words.append((core, start + w.index(core)))
    examples = [QAExample(f"w{i}", "What is it?", context, (words[i],)) for i in range(0, len(words), 4)]
    for i in range(1, len(words) - 1, 9):
        (a_text, a), (b_text, b) = words[i], words[i + 1]
        examples.append(QAExample(f"p{i}", "Which two?", context, ((context[a : b + len(b_text)], a),)))
    return examples


def _covered(window, context_len: int) -> set[int]:
    """Context characters that some context token of the window spans."""
    spans = [span for span, q in zip(window.offsets, window.sequence_ids) if q == 1]
    return {c for s, e in spans for c in range(s, min(e, context_len))}


def test_training_labels_point_at_the_answer_tokens(tok: AlbertTokenizer) -> None:
    examples = _long_context_examples()
    features = training_features(examples, tok, SETTINGS)
    held = not_held = multi = 0
    i = 0
    for e in examples:
        windows = make_windows(tok, e.question, e.context, SETTINGS)
        assert len(windows) >= 4
        text, a = e.answers[0]
        b = a + len(text)
        holding = 0
        for w in windows:
            f = features[i]
            i += 1
            assert f.input_ids == w.input_ids and f.token_type_ids == w.token_type_ids
            answer_chars = {c for c in range(a, b) if not e.context[c].isspace()}
            if answer_chars <= _covered(w, len(e.context)):
                held += 1
                holding += 1
                s, t = f.start_position, f.end_position
                assert 0 < s <= t and w.sequence_ids[s] == w.sequence_ids[t] == 1
                assert w.offsets[s][0] <= a < w.offsets[s][1], (e.id, w.tokens[s])
                assert w.offsets[t][0] < b <= w.offsets[t][1], (e.id, w.tokens[t])
            else:
                not_held += 1
                assert (f.start_position, f.end_position) == (0, 0), e.id
        assert holding >= 1, e.id
        multi += holding > 1
    assert i == len(features)
    assert held >= len(examples) and not_held > held and multi >= 3  # overlapping windows were seen


def test_no_answer_example_is_labelled_cls_everywhere(tok: AlbertTokenizer) -> None:
    context = " ".join(training_corpus(8, seed=5))
    features = training_features([QAExample("n", "What is it?", context, ())], tok, SETTINGS)
    assert len(features) >= 4
    assert {(f.start_position, f.end_position) for f in features} == {(0, 0)}


def test_training_features_name_the_bad_question(tok: AlbertTokenizer) -> None:
    with pytest.raises(DataError, match="question q9: .*question is empty"):
        training_features([QAExample("q9", " ", CTX_A, ())], tok, SETTINGS)


# ---- the cloze splits of the offline corpora ---------------------------------------------------


@pytest.fixture(scope="module")
def test_questions() -> list[QAExample]:
    from albert_edge.corpora import CorpusError

    try:
        return cloze_split("test", limit=50)
    except CorpusError as e:
        pytest.skip(f"real corpora not installed ({e}); `make corpora`")


@pytest.mark.slow
def test_cloze_split_is_deterministic_and_answers_are_in_place(test_questions: list[QAExample]) -> None:
    assert len(test_questions) == 50 and len({e.id for e in test_questions}) == 50
    assert cloze_split("test", limit=50) == test_questions
    for e in test_questions:
        assert e.has_answer
        (text, start), = e.answers
        assert e.context[start : start + len(text)] == text
        assert e.question.endswith("?")


@pytest.mark.slow
def test_cloze_test_contexts_are_not_in_train(test_questions: list[QAExample]) -> None:
    """About 15 s: reads the corpora twice."""
    test_contexts = {e.context for e in cloze_split("test")}
    train_contexts = {e.context for e in cloze_split("train")}
    assert len(train_contexts) > 5 * len(test_contexts) > 0
    assert {e.context for e in test_questions} <= test_contexts
    assert not test_contexts & train_contexts


def test_cloze_split_rejects_unknown_split() -> None:
    with pytest.raises(DataError, match=r"split='dev'; accepted: train, valid, test"):
        cloze_split("dev")


def test_broken_squad_json_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    path.write_text('{"data": [{"title": "x", "paragraphs": [}', encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        read_qa(path)
    text = _one_line_error(excinfo)
    assert text.startswith(f"{path}: not valid JSON") and "line 1, column" in text


def test_a_byte_order_mark_is_allowed_and_limit_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    record = {"question": "Where?", "context": CTX_A, "answers": [{"text": "France", "answer_start": 24}]}
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(record) + "\n").encode())
    assert read_qa(path)[0].answers == (("France", 24),)
    with pytest.raises(DataError, match="limit=0"):
        read_qa(path, limit=0)
