"""Cloze questions turned into the form people ask: the wh-phrase moved to the front, the
auxiliary verb inverted ("The city was founded in what year?" -> "In what year was the city
founded?"; "The theory was published by what?" -> "By whom was the theory published?").

Rule-based and deliberately narrow: a question is fronted only when the words before the blank
are one simple clause (no punctuation) whose auxiliary ("is", "was", "has", "can"...) follows a
subject of at most six words. Clauses without an auxiliary would need "did" and the verb's base
form, which needs a lemmatizer; those questions stay in cloze form (``front`` returns None), as
do blanks at the start of the sentence, where the wh-word is already in front. Everything is a
pure function of the sentence and the blank: no randomness, so cloze splits stay reproducible.
"""

from __future__ import annotations

__all__ = ["front"]

_AUX = frozenset("is are was were has have had will would can could may might must shall should".split())
# Prepositions that travel with the wh-phrase to the front ("In what year ...", "By whom ...").
_PREPS = frozenset("in on at by from since during until after before to for with of into near under over "
                   "through between among against about within without".split())
_STRANDED = frozenset("of".split())  # left at the blank: "What was he the king of?"
_TIME_PREPS = frozenset("in on at during".split())  # "in 1821" -> "When"
_PLACE_PREPS = frozenset("in at near".split())  # "in Paris" -> "Where"
_PERSON_PREPS = frozenset("by to with for against".split())  # "by Einstein" -> "By whom"
# Subject words that are lower-cased once they no longer open the sentence.
_LOWER = frozenset("the a an this that these those it its he she we they his her our their there some many "
                   "most several each every both all one two".split())
MAX_SUBJECT_WORDS = 6
# Words that open another clause, or that cannot be part of a plain subject: a left side holding
# them is not one simple clause.
_CLAUSE = frozenset("because that which who whom whose when where while if and or but than as so not no "
                    "maybe perhaps although though since unless whether whatever however".split())
# Between the auxiliary and a blank object: only these, then the verb ("has long been called what").
_ADVERBS = frozenset("been being be also first long never already often usually later still now once recently "
                     "originally then only commonly generally widely sometimes formerly officially".split())
# Before a number: modifiers of the number, not prepositions ("about what number genera").
_NUMBER_MODIFIERS = frozenset("about over nearly almost around approximately roughly some only just under".split())
_PARTICIPLE_ENDS = ("ed", "en", "wn", "ght", "ung", "ade", "ld")  # "founded", "given", "known", "bought", "made"...


def _wh_phrase(kind: str, prep: str | None) -> str:
    """The fronted wh-phrase for a blank of `kind` ("when", "what year", "what number", "what")
    after preposition `prep` (None: no preposition before the blank)."""
    if prep is None:
        return kind
    if kind == "when":
        return "when" if prep in _TIME_PREPS else f"{prep} when"
    if kind == "what year":
        return f"{prep} what year"
    if kind == "what" and prep in _PLACE_PREPS:
        return "where"
    if kind == "what" and prep in _PERSON_PREPS:
        return f"{prep} whom"
    return f"{prep} {kind}"


def front(left: list[str], right: list[str], kind: str) -> str | None:
    """The fronted question for a blank of `kind` between the words `left` and `right` of a
    sentence (trailing punctuation of `right` already removed), or None where the rule does not
    apply (see the module docstring)."""
    words = list(left)
    if not words or any(not w.replace("-", "").replace("'", "").replace("’", "").isalnum() for w in words):
        return None  # a blank that opens the sentence, or more than one simple clause before it
    first = words[0].lower()
    if any(w.lower() in _CLAUSE for w in words[1:]) or first in _CLAUSE | _PREPS or first.endswith(("ed", "ing")):
        return None  # not one simple clause that opens with its subject
    counted = []  # "how many": the blank counts the noun after it ("what number species")
    if kind == "what number":
        if words[-1].lower() in _NUMBER_MODIFIERS:
            words.pop()
        if right and right[0].isalpha() and right[0].islower() and right[0].endswith("s"):
            counted, right = [right[0]], right[1:]
    prep, stranded = None, []
    if words and words[-1].lower() in _STRANDED:
        stranded = [words.pop().lower()]
    elif words and words[-1].lower() in _PREPS:
        prep = words.pop().lower()
    if prep == "from" and kind == "what":
        prep, stranded = None, ["from"]
        kind = "where"
    auxes = [i for i, w in enumerate(words) if w.lower() in _AUX]
    if not auxes or auxes[0] == 0 or auxes[0] > MAX_SUBJECT_WORDS:
        return None
    k = auxes[0]
    if prep is None and not stranded:  # the blank is the object: only adverbs and a verb before it
        between = words[k + 1:]
        if between and not (between[-1].lower().endswith(_PARTICIPLE_ENDS)
                            and all(w.lower() in _ADVERBS for w in between[:-1])):
            return None  # the blank is inside a noun phrase ("the what", "an what ethnic group")
    subject = words[:k]
    if subject[0].lower() in _LOWER:
        subject[0] = subject[0].lower()
    tail = []
    for w in right:  # up to the first clause boundary: an appositive or a second clause is dropped
        if w[0] in ",;:(—–-" or w.lower() in _CLAUSE:
            break
        tail.append(w)
        if w[-1] in ",;:)":
            tail[-1] = w.rstrip(",;:)")
            break
    if counted:
        wh = [*([prep] if prep else []), "how many", counted[0]]
    else:
        wh = [_wh_phrase(kind, prep)]
    text = " ".join([*wh, words[k].lower(), *subject, *words[k + 1:], *stranded, *tail]).strip()
    return text[0].upper() + text[1:] + "?"
