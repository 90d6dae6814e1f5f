"""Transfer text for distillation: new texts made from training texts, for a teacher to label.

A student learns the teacher's function only where it sees the teacher's outputs. The labelled
training set is small, so distillation gets more inputs by perturbing it, as Tang et al. (2019,
"Distilling Task-Specific Knowledge from BERT into Simple Neural Networks") do: each word is
deleted or replaced by a word of another training text with a small probability, and some copies
are cut to a random run of words (n-gram sampling). The teacher's logits, not the source label,
are the targets, so a perturbation that changes the sentiment is labelled as such.

Pure and deterministic for a seed; copies equal to their source, to each other or to a key in
``exclude`` (e.g. every held-out text's key) are dropped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from albert_edge.errors import DataError

__all__ = ["augment_texts"]


def _copy(words: list[str], vocabulary: Sequence[str], rng: random.Random, p_delete: float, p_replace: float,
          p_ngram: float) -> list[str]:
    out = []
    for w in words:
        r = rng.random()
        if r < p_delete:
            continue
        out.append(rng.choice(vocabulary) if r < p_delete + p_replace else w)
    if len(out) > 3 and rng.random() < p_ngram:
        n = rng.randint(3, len(out))
        start = rng.randint(0, len(out) - n)
        out = out[start:start + n]
    return out


def augment_texts(texts: Sequence[str], copies: int, *, seed: int = 0, key: Callable[[str], str] = str,
                  exclude: frozenset[str] | set[str] = frozenset(), p_delete: float = 0.1, p_replace: float = 0.1,
                  p_ngram: float = 0.25) -> list[str]:
    """Up to `copies` perturbed copies of each text, in order of their source (see the module
    docstring). `key` normalises a text for the duplicate and `exclude` checks."""
    if copies < 0 or isinstance(copies, bool):
        raise DataError(f"augment: copies={copies!r}; accepted: an integer >= 0")
    for name, p in (("p_delete", p_delete), ("p_replace", p_replace), ("p_ngram", p_ngram)):
        if not 0.0 <= p <= 1.0:
            raise DataError(f"augment: {name}={p!r}; accepted: a probability in [0, 1]")
    if p_delete + p_replace > 1.0:
        raise DataError(f"augment: p_delete + p_replace = {p_delete + p_replace}; accepted: at most 1")
    rng = random.Random(seed)
    vocabulary = sorted({w for t in texts for w in t.split()})
    seen = {key(t) for t in texts} | set(exclude)
    out: list[str] = []
    for text in texts:
        words = text.split()
        for _ in range(copies):
            new = " ".join(_copy(words, vocabulary, rng, p_delete, p_replace, p_ngram))
            k = key(new)
            if new and k and k not in seen:
                seen.add(k)
                out.append(new)
    return out
