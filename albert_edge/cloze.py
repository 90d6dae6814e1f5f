"""Cloze-style extractive questions made from plain prose (the QA set of the shipped QA model).

What it is, honestly: not human questions. A sentence of a passage has one span cut out (a date,
a year, another number, or a run of capitalised words: a name) and replaced by a wh-phrase
("when", "what year", "what number", "what"); the rest of the sentence, ending in "?", is the
question, asked against the whole passage; the span is the answer. So a question shares most of
its words with one sentence of the passage, and answering means finding that sentence and the
span that fits the wh-phrase. No paraphrase, no reasoning across sentences. Questions whose
answer is in the question already (answerable without reading) are dropped, and so are answers
the passage holds more than once (ambiguous). Everything is deterministic for a seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from albert_edge.wh_fronting import front

__all__ = ["ClozeQuestion", "cloze_questions", "passages"]

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
# Earlier patterns win where spans overlap (a full date before its year).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("when", re.compile(rf"\b(?:(?:{_MONTHS}) \d{{1,2}}, \d{{4}}|\d{{1,2}} (?:{_MONTHS}) \d{{4}}|(?:{_MONTHS}) \d{{4}})\b")),
    ("what year", re.compile(r"(?<![\d$£€.,])\b(?:1[0-9]{3}|20[0-9]{2})\b(?![\d,.%]\d|%)")),
    ("what number", re.compile(r"(?<![\w$£€.,])\d{1,3}(?:,\d{3})*(?:\.\d+)?(?: ?%| percent| million| billion)?(?![\w,.]\w)")),
    ("what", re.compile(r"(?<!^)(?<![\w'’-])(?:[A-Z][a-z]+|[A-Z]\.)(?: (?:[A-Z][a-z]+|[A-Z]\.)){0,3}(?![\w'’-])")),
)
# Capitalised words that are not names (sentence starts, titles, pronouns, months alone).
_NOT_NAMES = frozenset(
    "I The A An In On At Of And But Or If It Its This That These Those He She We They You His Her Our Their "
    "Mr Mrs Ms Dr St Congress President Government Senate House State States Nation".split()
    + _MONTHS.split("|")
)
MAX_QUESTION_WORDS = 30
MAX_PASSAGE_WORDS = 90


@dataclass(frozen=True)
class ClozeQuestion:
    """A question over ``context`` whose answer is ``context[answer_start:answer_start + len(answer)]``."""

    question: str
    context: str
    answer: str
    answer_start: int
    kind: str  # the wh-phrase: "when", "what year", "what number", "what"
    # The same question with the wh-phrase fronted ("In what year was the city founded?"), where
    # ``wh_fronting.front`` applies; None where it does not.
    fronted: str | None = None


def passages(sentences: Sequence[str], max_words: int = MAX_PASSAGE_WORDS) -> list[list[str]]:
    """Consecutive sentences grouped into passages of at most ``max_words`` words (a longer
    sentence is a passage of its own)."""
    out: list[list[str]] = []
    cur: list[str] = []
    words = 0
    for s in sentences:
        n = len(s.split())
        if cur and words + n > max_words:
            out.append(cur)
            cur, words = [], 0
        cur.append(s)
        words += n
    if cur:
        out.append(cur)
    return out


def _candidates(sentence: str) -> list[tuple[int, int, str]]:
    taken: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(sentence):
            a, b = m.span()
            if kind == "what":
                words = m.group().split()
                while words and words[0] in _NOT_NAMES:  # "The Beatles" -> "Beatles"
                    a += len(words.pop(0)) + 1
                if not words or (len(words) == 1 and len(words[0]) < 3):
                    continue
            if any(a < y and x < b for x, y, _ in taken):
                continue
            taken.append((a, b, kind))
    return taken


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]", " ", text.lower()).split())


def _question(sentence: str, a: int, b: int, kind: str) -> tuple[str, str | None]:
    """The cloze question for the blank sentence[a:b], and its wh-fronted form (or None)."""
    left, right = sentence[:a].split(), sentence[b:].split()
    if len(left) + len(right) + 1 > MAX_QUESTION_WORDS:  # keep the words nearest the blank
        keep = (MAX_QUESTION_WORDS - 1) // 2
        left, right = left[-keep:], right[:keep]
    right_text = " ".join(right).rstrip(" .!?;:,")
    text = re.sub(r" (?=[,;:)])", "", " ".join([*left, kind, right_text]).strip())
    return text[0].upper() + text[1:] + "?", front(left, right_text.split(), kind)


def cloze_questions(
    passage: Sequence[str], rng: random.Random, per_passage: int = 3, per_sentence: int = 1
) -> list[ClozeQuestion]:
    """Up to ``per_passage`` questions over the passage (its sentences joined by spaces), at most
    ``per_sentence`` from one sentence, candidates drawn with ``rng``."""
    context = " ".join(passage)
    starts, pos = [], 0
    for s in passage:
        starts.append(pos)
        pos += len(s) + 1
    found: list[ClozeQuestion] = []
    for sentence, offset in zip(passage, starts):
        cands = _candidates(sentence)
        rng.shuffle(cands)
        made = 0
        for a, b, kind in cands:
            if made == per_sentence:
                break
            answer = sentence[a:b]
            question, fronted = _question(sentence, a, b, kind)
            key = _norm(answer)
            if not key or f" {key} " in f" {_norm(question)} ":
                continue  # answerable without reading
            if len(re.findall(rf"(?<!\w){re.escape(answer)}(?!\w)", context)) != 1:
                continue  # ambiguous: the answer text occurs elsewhere in the passage
            found.append(ClozeQuestion(question, context, answer, offset + a, kind, fronted))
            made += 1
    rng.shuffle(found)
    return found[:per_passage]


def questions_of(documents: Iterable[Sequence[str]], seed: int, per_passage: int = 3) -> list[ClozeQuestion]:
    """Questions over the passages of each document (a document: its sentences in order)."""
    rng = random.Random(seed)
    out: list[ClozeQuestion] = []
    for sentences in documents:
        for p in passages(sentences):
            out.extend(cloze_questions(p, rng, per_passage))
    return out
