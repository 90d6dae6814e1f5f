"""albert_edge.wh_fronting: cloze questions put in the form people ask, and left alone where the
narrow rule does not apply."""

from __future__ import annotations

import random

import pytest

from albert_edge.cloze import cloze_questions
from albert_edge.wh_fronting import front

CASES = [
    # (sentence with ___ for the blank, kind, fronted question or None)
    ("The city was founded in ___ by settlers from the coast.", "what year",
     "In what year was the city founded by settlers from the coast?"),
    ("The city was founded in ___ by settlers from the coast.", "when", "When was the city founded by settlers from the coast?"),
    ("The theory was published by ___ in May.", "what", "By whom was the theory published in May?"),
    ("She was born in ___ and moved to Rome.", "what", "Where was she born?"),
    ("She was from ___.", "what", "Where was she from?"),
    ("Its capital is ___.", "what", "What is its capital?"),
    ("He has long been called ___ by his friends.", "what", "What has he long been called by his friends?"),
    ("The family is composed of ___ species in two genera.", "what number",
     "How many species is the family composed of in two genera?"),
    ("This bill should be paid within ___ days.", "what number", "Within how many days should this bill be paid?"),
    ("He was the king of ___, now in exile.", "what", "What was he the king of?"),
    # Not fronted: the blank opens the sentence, sits inside a noun phrase, or the clause has no
    # auxiliary (fronting it needs "did" and the verb's base form).
    ("___ was founded by settlers.", "what", None),
    ("The evening program was opened by the ___, a Newport group.", "what", None),
    ("Tibetans are an ___ ethnic group native to Tibet.", "what", None),
    ("Einstein published the theory in ___.", "what year", None),
    ("We will stay because in ___ and around the world are countries.", "what", None),
    ("In these estimates no account has been taken of the ___ cases.", "what number", None),
]


@pytest.mark.parametrize(("sentence", "kind", "expected"), CASES)
def test_front(sentence: str, kind: str, expected: str | None) -> None:
    left, right = sentence.split("___")
    assert front(left.split(), right.rstrip(".").split(), kind) == expected


def test_cloze_questions_carry_their_fronted_twin() -> None:
    passage = ["Paris grew quickly in the north.", "The city was founded in 1821 by settlers from the coast.",
               "Its mayor is Jean Dupont."]
    found = {q.answer: q for q in cloze_questions(passage, random.Random(0), per_passage=3)}
    assert found["1821"].question == "The city was founded in what year by settlers from the coast?"
    assert found["1821"].fronted == "In what year was the city founded by settlers from the coast?"
    assert found["Jean Dupont"].fronted == "What is its mayor?"
    for q in found.values():  # the twin never gives the answer away
        assert q.fronted is None or q.answer.lower() not in q.fronted.lower()
