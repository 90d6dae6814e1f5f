"""Cloze questions from prose: passages, question shape, answer kinds, and what is dropped."""

from __future__ import annotations

import random
import re

from albert_edge.cloze import MAX_QUESTION_WORDS, ClozeQuestion, cloze_questions, passages, questions_of

PASSAGE = [
    "The town of Ashford was founded on March 3, 1821 by farmers from the coast.",
    "By 1900 it had 4,500 people and two mills.",
    "Its first mayor was John Miller, a baker.",
    "The old mill burned down in 1903 after a dry summer.",
]


def _all(passage: list[str], seed: int = 0) -> list[ClozeQuestion]:
    """Every question the passage allows (no per-passage or per-sentence cap)."""
    return cloze_questions(passage, random.Random(seed), per_passage=100, per_sentence=100)


def _only(sentence: str) -> list[tuple[str, str, str]]:
    return sorted((q.kind, q.answer, q.question) for q in _all([sentence]))


# ---- passages ---------------------------------------------------------------------------------


def test_passages_respect_max_words() -> None:
    sentences = ["one two three", "four five", "six seven eight nine ten eleven", "twelve", "a b", "c d e"]
    got = passages(sentences, max_words=5)
    assert got == [["one two three", "four five"], ["six seven eight nine ten eleven"], ["twelve", "a b"], ["c d e"]]
    for p in got:  # only a sentence alone may be longer than max_words
        assert len(p) == 1 or sum(len(s.split()) for s in p) <= 5
    assert [s for p in got for s in p] == sentences
    assert passages([]) == []


# ---- questions --------------------------------------------------------------------------------


def test_same_seed_same_questions_other_seeds_differ() -> None:
    first = cloze_questions(PASSAGE, random.Random(3))
    assert cloze_questions(PASSAGE, random.Random(3)) == first
    assert len({tuple(cloze_questions(PASSAGE, random.Random(seed))) for seed in range(20)}) > 1
    assert questions_of([PASSAGE, PASSAGE[:2]], seed=5) == questions_of([PASSAGE, PASSAGE[:2]], seed=5)


def test_questions_are_well_formed() -> None:
    context = " ".join(PASSAGE)
    questions = _all(PASSAGE)
    assert {q.kind for q in questions} == {"when", "what year", "what number", "what"}
    for q in questions:
        assert q.context == context
        assert context[q.answer_start : q.answer_start + len(q.answer)] == q.answer
        assert q.question.endswith("?") and not q.question.endswith("??")
        assert q.question[0].isupper()
        assert re.search(rf"\b{q.kind}\b", q.question, re.IGNORECASE), q
        assert q.answer.lower() not in q.question.lower(), q
        assert len(re.findall(rf"(?<!\w){re.escape(q.answer)}(?!\w)", context)) == 1


def test_caps_per_passage_and_per_sentence() -> None:
    assert len(cloze_questions(PASSAGE, random.Random(0), per_passage=2)) == 2
    one_each = cloze_questions(PASSAGE, random.Random(0), per_passage=100, per_sentence=1)
    starts = [len(" ".join(PASSAGE[:k])) + (k > 0) for k in range(len(PASSAGE))]
    sentence_of = [max(k for k, s in enumerate(starts) if s <= q.answer_start) for q in one_each]
    assert sorted(sentence_of) == list(range(len(PASSAGE)))


def test_answer_kinds() -> None:
    assert _only("The treaty was signed on 4 July 1776 in the hall.") == [
        ("when", "4 July 1776", "The treaty was signed on when in the hall?")]
    assert _only("Work began on March 3, 1821 and ended soon.") == [
        ("when", "March 3, 1821", "Work began on when and ended soon?")]
    assert _only("The old mill burned down in 1903 after a dry summer.") == [
        ("what year", "1903", "The old mill burned down in what year after a dry summer?")]
    assert _only("They counted 4,500 sheep and 3 million birds.") == [
        ("what number", "3 million", "They counted 4,500 sheep and what number birds?"),
        ("what number", "4,500", "They counted what number sheep and 3 million birds?"),
    ]
    assert _only("Prices rose by 12.5 percent that spring.") == [
        ("what number", "12.5 percent", "Prices rose by what number that spring?")]
    assert _only("Its first mayor was John Miller, a baker.") == [
        ("what", "John Miller", "Its first mayor was what, a baker?")]


def test_what_is_not_a_name() -> None:
    assert _only("Paris is large and old.") == []  # capitalised only because it starts the sentence
    assert _only("Later I saw It and This and Al there.") == []  # pronouns, and names under 3 letters
    assert _only("In March the river rose.") == []  # a month alone
    assert _only("Yesterday he met Mr Smith at the gate.") == [
        ("what", "Smith", "Yesterday he met Mr what at the gate?")]  # titles are left out of names
    assert _only("It was The Hague that hosted them.") == [
        ("what", "Hague", "It was The what that hosted them?")]
    assert _only("She paid $500 for 2 hats.") == [("what number", "2", "She paid $500 for what number hats?")]


def test_ambiguous_or_given_away_answers_are_dropped() -> None:
    # "Paris" twice in the passage: ambiguous, whichever sentence it is cut from.
    questions = _all(["Paris is large.", "He moved to Paris in 1990."])
    assert [(q.kind, q.answer) for q in questions] == [("what year", "1990")]
    # The answer (case aside) is still in the question: answerable without reading.
    assert _only("The ship Victory sailed past a victory arch.") == []


def test_long_sentence_keeps_the_words_nearest_the_blank() -> None:
    left = " ".join(f"l{i}" for i in range(40))
    right = " ".join(f"r{i}" for i in range(40))
    (q,) = _all([f"{left.capitalize()} in 1903 {right}."])
    words = q.question.rstrip("?").split()
    assert len(words) <= MAX_QUESTION_WORDS
    assert words[words.index("what") - 2 :][:5] == ["l39", "in", "what", "year", "r0"]
    assert q.answer == "1903"
