"""The shipped question-answering model `default-qa`: its files and card, `ask`, `info`, and
(slow) that the card's held-out figures are reproduced from the shipped weights and that int8
keeps F1 within a point of fp32 on the held-out questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_edge.checkpoint import DEFAULT_QA_MODEL_DIR, load_model
from albert_edge.cli import main
from albert_edge.model import AlbertForQuestionAnswering
from albert_edge.qa_data import cloze_split
from albert_edge.workflows import eager_answers, evaluate_qa


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((DEFAULT_QA_MODEL_DIR / "card.json").read_text())


def test_shipped_files(card: dict) -> None:
    for name in ("config.json", "model.safetensors", "spiece.model", "MODEL_CARD.md", "card.json"):
        assert (DEFAULT_QA_MODEL_DIR / name).is_file(), name
    model = load_model("default-qa")
    assert isinstance(model, AlbertForQuestionAnswering)
    assert card["model"]["parameters"] == model.num_parameters()


def test_card_has_the_figures_the_issue_asks_for(card: dict) -> None:
    n = card["data"]["test"]["questions"]
    assert n > 1000
    for row in (card["test"], card["baseline_sliding_window"], card["programs"]["fp32"], card["programs"]["int8"]):
        assert row["questions"] == n and 0 <= row["exact_match"] <= 100 and 0 <= row["f1"] <= 100
    assert card["timings_s"] and card["hardware"]["cpu"]
    text = (DEFAULT_QA_MODEL_DIR / "MODEL_CARD.md").read_text()
    for phrase in ("not human questions", "sliding-window", "int8 program", "Split by document"):
        assert phrase in text


def test_int8_keeps_f1_within_a_point_and_the_card_states_the_baseline(card: dict) -> None:
    tuned, base, p = card["test"], card["baseline_sliding_window"], card["programs"]
    assert abs(p["int8"]["f1"] - p["fp32"]["f1"]) <= 1.0, p
    assert p["fp32"]["f1"] == pytest.approx(tuned["f1"], abs=0.5)  # lowering alone changes ~nothing
    text = (DEFAULT_QA_MODEL_DIR / "MODEL_CARD.md").read_text()
    assert f"{base['f1']:.2f}" in text and f"{tuned['f1']:.2f}" in text  # both stated, whichever is higher


def test_ask_default_qa_answers_the_cards_examples(card: dict, capsys) -> None:
    """No download: the shipped weights answer with a span of the passage."""
    for e in card["examples"]:
        assert main(["ask", "default-qa", "--question", e["question"], "--context", e["context"]]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "# default-qa (eager fp32)"
        score, span, text = out[1].split("\t")
        a, b = map(int, span.split("-"))
        assert e["context"][a:b] == text and 0 < float(score) <= 1


def test_info_describes_default_qa(capsys) -> None:
    assert main(["info", "default-qa"]) == 0
    assert "AlbertForQuestionAnswering" in capsys.readouterr().out


@pytest.mark.slow
def test_card_test_figures_are_reproduced(card: dict) -> None:
    """The shipped weights on the regenerated held-out questions (a spread of 400) give the
    card's figures on the same questions: the card cannot describe another model."""
    from albert_edge.make_default_qa import SETTINGS

    questions = cloze_split("test", limit=400)
    figures = evaluate_qa("default-qa", questions, SETTINGS)
    full = cloze_split("test")
    assert len(full) == card["data"]["test"]["questions"]
    # The card's test figures are over all test questions; a 400-question spread is within a few points.
    assert figures["f1"] == pytest.approx(card["test"]["f1"], abs=5)
    answers = eager_answers("default-qa", questions[0].question, questions[0].context, top_k=3)
    assert all(questions[0].context[a["start"]:a["end"]] == a["answer"] for a in answers)


def test_shipped_model_dir_is_in_the_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"default_qa_model/*"' in pyproject
