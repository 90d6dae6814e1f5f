"""albert_edge.augment: perturbed copies of training texts for a teacher to label."""

from __future__ import annotations

import pytest

from albert_edge.augment import augment_texts
from albert_edge.errors import DataError

TEXTS = ["the flight was late again and nobody helped", "what a lovely day at the beach with friends",
         "my phone battery died in the middle of the call", "thanks for the quick reply, very kind of you"]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def test_copies_are_new_perturbations_of_their_sources() -> None:
    copies = augment_texts(TEXTS, 20, seed=3, key=_key)
    assert 20 < len(copies) <= 20 * len(TEXTS)
    keys = [_key(c) for c in copies]
    assert len(set(keys)) == len(keys)  # no two alike
    assert not set(keys) & {_key(t) for t in TEXTS}  # none is a source
    vocabulary = {w for t in TEXTS for w in t.split()}
    assert all(set(c.split()) <= vocabulary for c in copies)  # words only from the training texts
    # Each copy keeps most of one source's words (a perturbation, not a new text).
    assert all(max(len(set(c.split()) & set(t.split())) / len(c.split()) for t in TEXTS) >= 0.5 for c in copies)
    assert augment_texts(TEXTS, 20, seed=3, key=_key) == copies  # deterministic for a seed
    assert augment_texts(TEXTS, 20, seed=4, key=_key) != copies


def test_excluded_keys_never_come_out() -> None:
    copies = augment_texts(TEXTS, 20, seed=0, key=_key)
    banned = {_key(c) for c in copies[::2]}
    again = augment_texts(TEXTS, 20, seed=0, key=_key, exclude=banned)
    assert again and not {_key(c) for c in again} & banned


def test_no_perturbation_gives_nothing_new_and_bad_arguments_are_refused() -> None:
    assert augment_texts(TEXTS, 5, p_delete=0, p_replace=0, p_ngram=0) == []  # every copy equals its source
    assert augment_texts(TEXTS, 0) == []
    with pytest.raises(DataError, match="copies=-1"):
        augment_texts(TEXTS, -1)
    with pytest.raises(DataError, match="p_delete=1.5"):
        augment_texts(TEXTS, 1, p_delete=1.5)
    with pytest.raises(DataError, match="at most 1"):
        augment_texts(TEXTS, 1, p_delete=0.6, p_replace=0.6)
