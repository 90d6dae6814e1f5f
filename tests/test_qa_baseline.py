"""The sliding-window QA baseline: right answers on cloze questions, what an answer may be, ties."""

from __future__ import annotations

import random
import string

import pytest

from albert_edge._textgen import training_corpus
from albert_edge.baseline import QA_MAX_ANSWER_WORDS, sliding_window_answer, sliding_window_answers
from albert_edge.qa_data import QAExample


def _words(text: str) -> set[str]:
    """Lower-cased words of ``text``, outer punctuation stripped."""
    return {w.strip(string.punctuation + "“”‘’–").lower() for w in text.split()} - {""}


@pytest.mark.parametrize(
    ("question", "context", "answer"),
    [
        ("The city was founded in what year by settlers?",
         "The river town was quiet. The city was founded in 1821 by settlers from the coast. Many came later.",
         "1821"),
        ("They counted what number sheep on the hill?",
         "The dog slept all day. They counted 4,500 sheep on the hill. Then it rained.", "4,500"),
        ("The race was won by what on Sunday morning?",
         "Rain fell for hours. The race was won by Alice on Sunday morning. She trained hard.", "Alice"),
        # Equal scores for "John" and "John Miller": the shorter wins.
        ("Its first mayor was what, a baker?", "The town grew. Its first mayor was John Miller, a baker. He died.",
         "John"),
    ],
)
def test_answers_cloze_questions(question: str, context: str, answer: str) -> None:
    assert sliding_window_answer(question, context) == answer


def test_answers_are_context_words_not_in_the_question() -> None:
    sentences = training_corpus(400, seed=11)
    rng = random.Random(0)
    answered = 0
    for i in range(0, 390, 3):
        context = " ".join(sentences[i : i + 3])
        question = " ".join(rng.sample(context.split(), 6)) + "?"
        answer = sliding_window_answer(question, context)
        if not answer:
            assert _words(context) <= _words(question)
            continue
        answered += 1
        assert answer in context and answer == answer.strip()
        assert answer[0].isalnum() and answer[-1].isalnum()
        assert 1 <= len([w for w in answer.split() if any(c.isalnum() for c in w)]) <= QA_MAX_ANSWER_WORDS
        assert not _words(answer) & _words(question), (question, answer)
    assert answered >= 120


def test_max_words() -> None:
    context = "bell alpha beta gamma delta epsilon zeta"
    assert sliding_window_answer("bell", context, max_words=1) == "alpha"
    assert sliding_window_answer("bell", "bell, alpha. bell") == "alpha"


def test_no_candidate_gives_empty_string() -> None:
    assert sliding_window_answer("The cat sat, didn't it?", "the Cat sat. Didn't it!") == ""
    assert sliding_window_answer("What?", "... !!! ---") == ""
    assert sliding_window_answer("What?", "") == ""


def test_ties_go_to_the_earlier_then_the_shorter_candidate() -> None:
    # No span of at most 4 words reaches both bells: the best spans have one beside them.
    assert sliding_window_answer("bell", "one bell two three four five six seven bell eight") == "one"
    # "two", "two three", ... all have the same "bell" on their left.
    assert sliding_window_answer("bell", "bell two three four five") == "two"


def test_ties_survive_float_rounding() -> None:
    # "two", "three" and "four" each have a "bell" on both sides: equal scores, so "two" must win
    # (prefix[4] - prefix[3] comes out one ulp above prefix[2] - prefix[1]).
    assert sliding_window_answer("bell", "one bell two bell three bell four bell") == "two"


def test_sliding_window_answers_maps_over_examples() -> None:
    examples = [
        QAExample("a", "The city was founded in what year?", "The city was founded in 1821. It grew.", ()),
        QAExample("b", "x y z", "x y z", ()),
    ]
    assert sliding_window_answers(examples) == ["1821", ""]
    assert sliding_window_answers([]) == []
