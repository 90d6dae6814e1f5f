"""tests/data/handwritten_qa.jsonl: questions as people ask them ("When was Vinson Massif
discovered?", not the cloze "Vinson Massif was discovered in what?"), written once by hand over
passages of held-out documents and kept fixed, so that the shipped QA model's card can report a
figure on them beside the cloze test split."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_edge.qa_data import read_qa

DATA = Path(__file__).resolve().parent / "data" / "handwritten_qa.jsonl"


def test_the_questions_are_well_formed() -> None:
    examples = read_qa(DATA)  # checks every answer against its context
    assert len(examples) >= 40
    assert all(e.answers for e in examples)
    assert len({e.context for e in examples}) >= 15
    assert all(e.question.endswith("?") for e in examples)
    # Not the cloze form, where the wh-word stands in the answer's place at the end.
    assert not any(e.question.endswith(("what?", "when?", "who?")) for e in examples)
    assert sum(e.question.split()[0].lower() in ("what", "who", "when", "where", "which", "how") for e in examples) > 35


@pytest.mark.slow
def test_the_passages_are_held_out() -> None:
    """Every passage is one of the test-split documents' passages, which no model trains on."""
    from albert_edge import corpora
    from albert_edge.cloze import passages

    splits = corpora.pretraining_splits()
    held_out = {" ".join(p) for d in splits["test"] for p in passages(d.sentences)}
    trained = {s for name in ("train", "valid") for d in splits[name] for s in d.sentences}
    for e in read_qa(DATA):
        assert e.context in held_out, e.question
        assert not any(s in trained for s in e.context.split(". ") if len(s) > 40), e.question
