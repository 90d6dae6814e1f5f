"""The reference baselines fine-tuned models are compared with: TF-IDF + logistic regression for
classification; for extractive QA the sliding-window answerer (:func:`sliding_window_answer`).

A standard, untuned-by-hand setup, so its number means the same across datasets:

- ``TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True, min_df=2)``: word
  uni- and bigrams seen in at least two training texts, log-scaled term frequency;
- ``LogisticRegression(max_iter=1000)`` (lbfgs, multinomial over all classes), with ``C``:
  1.0 (scikit-learn's default) when no validation set is given; otherwise each ``C`` in
  ``c_grid`` is fitted on the training set and the one with the best validation macro-F1 is kept
  (ties go to the smaller ``C``, i.e. the stronger regularisation). The model is not refitted on
  train + validation, so the validation set stays held out.

The vectorizer is fitted on the training texts only. scikit-learn is needed here and only here; it
is imported inside ``tfidf_logreg`` so the rest of the package does not depend on it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Hashable, Sequence
from typing import Any

from albert_edge.metrics import MetricsError, _encode, _label_index, _vector, classification_report, macro_f1

log = logging.getLogger(__name__)

VECTORIZER = {"lowercase": True, "ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2}
MAX_ITER = 1000
DEFAULT_C = 1.0
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def _check_split(texts: Sequence[str], labels: Sequence[Hashable], name: str, index: dict) -> None:
    """Texts are strings, one label per text, every label one of ``labels``."""
    if isinstance(texts, str):
        raise MetricsError(f"{name}_texts must be a sequence of strings, got the string {texts[:40]!r}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise MetricsError(f"{name}_texts[{i}] is {type(text).__name__} {text!r}; every text must be a str")
    if len(texts) == 0:
        raise MetricsError(f"{name}_texts is empty; the {name} split needs at least one text")
    if len(labels) != len(texts):
        raise MetricsError(f"{name}_texts has {len(texts)} texts but {name}_labels has {len(labels)} labels")
    _encode(_vector(labels, f"{name}_labels"), index, f"{name}_labels")


def tfidf_logreg(
    train_texts: Sequence[str],
    train_labels: Sequence[Hashable],
    eval_texts: Sequence[str],
    eval_labels: Sequence[Hashable],
    *,
    labels: Sequence[Hashable],
    seed: int = 0,
    val_texts: Sequence[str] | None = None,
    val_labels: Sequence[Hashable] | None = None,
    c_grid: Sequence[float] = C_GRID,
) -> dict[str, Any]:
    """Fit TF-IDF + logistic regression on the training split and score it on the eval split.

    ``labels`` is the full class list (the order of the report's confusion matrix); every label
    in every split must be one of them. Pass ``val_texts`` and ``val_labels`` to choose ``C``
    from ``c_grid`` by validation macro-F1; without them ``C`` is 1.0. ``seed`` is passed to the
    classifier as ``random_state`` (lbfgs itself is deterministic).

    Returns a JSON-serialisable dict: ``{"report": classification_report(eval_labels, predictions,
    labels), "settings": {...}}``, where settings records the vectorizer and classifier
    parameters, the chosen ``C``, the validation macro-F1 of each ``C`` tried (or ``None``), the
    vocabulary size, split sizes and the scikit-learn version.
    """
    try:
        import sklearn
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        raise ImportError(
            "the TF-IDF + logistic regression baseline needs scikit-learn: pip install scikit-learn "
            "(it is in albert-edge's dev extra: pip install -e '.[dev]')"
        ) from e

    index = _label_index(labels)
    _check_split(train_texts, train_labels, "train", index)
    _check_split(eval_texts, eval_labels, "eval", index)
    if (val_texts is None) != (val_labels is None):
        raise MetricsError("pass both val_texts and val_labels to choose C, or neither")
    if val_texts is not None:
        _check_split(val_texts, val_labels, "val", index)
        grid = [float(c) for c in c_grid]
        if not grid or any(not c > 0 for c in grid):
            raise MetricsError(f"c_grid must be a non-empty list of positive numbers, got {list(c_grid)!r}")
        grid = sorted(set(grid))
    train_y = list(_vector(train_labels, "train_labels").tolist())
    if len(set(train_y)) < 2:
        raise MetricsError(f"train_labels has only one class ({train_y[0]!r}); a classifier needs at least two")

    vectorizer = TfidfVectorizer(**VECTORIZER)
    try:
        x_train = vectorizer.fit_transform(train_texts)
    except ValueError as e:  # "empty vocabulary" when no term reaches min_df
        raise MetricsError(
            f"train_texts gives no features with min_df={VECTORIZER['min_df']} ({e}); "
            "the baseline needs words that occur in at least two training texts"
        ) from e

    def fit(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed).fit(x_train, train_y)

    validation: dict[str, float] | None = None
    if val_texts is None:
        best_c, model = DEFAULT_C, fit(DEFAULT_C)
    else:
        x_val = vectorizer.transform(val_texts)
        val_y = list(_vector(val_labels, "val_labels").tolist())
        validation, best_c, model, best = {}, None, None, -1.0
        for c in grid:  # ascending, and only a strictly better score moves on: ties keep the smaller C
            candidate = fit(c)
            score = macro_f1(val_y, candidate.predict(x_val).tolist(), labels)
            validation[repr(c)] = score
            log.info("C=%g: validation macro-F1 %.4f", c, score)
            if score > best + 1e-9:  # prefix sums round: an equal score must not win by an ulp
                best_c, model, best = c, candidate, score

    predictions = model.predict(vectorizer.transform(eval_texts)).tolist()
    report = classification_report(list(_vector(eval_labels, "eval_labels").tolist()), predictions, labels)
    settings = {
        "method": "tfidf_logreg",
        "vectorizer": {**VECTORIZER, "ngram_range": list(VECTORIZER["ngram_range"])},
        "classifier": {"C": best_c, "max_iter": MAX_ITER, "solver": model.solver, "random_state": seed},
        "c_selection": "validation macro-F1 over c_grid" if validation is not None else "default C, no validation set",
        "validation_macro_f1": validation,
        "vocabulary_size": len(vectorizer.vocabulary_),
        "n_train": len(train_texts),
        "n_val": None if val_texts is None else len(val_texts),
        "n_eval": len(eval_texts),
        "sklearn_version": sklearn.__version__,
    }
    return {"report": report, "settings": settings}


# ---- extractive QA: the sliding-window word-overlap answerer ----------------------------------

_QA_WORD = re.compile(r"\w(?:[\w'’.,-]*\w)?")
QA_MAX_ANSWER_WORDS = 4


def _qa_words(text: str) -> list[re.Match[str]]:
    return list(_QA_WORD.finditer(text))


def sliding_window_answer(question: str, context: str, max_words: int = QA_MAX_ANSWER_WORDS) -> str:
    """The sliding-window baseline of the SQuAD paper (Rajpurkar et al. 2016, after Richardson et
    al.'s MCTest answerer), for spans instead of given candidates.

    Candidates: every run of 1..``max_words`` context words none of which is a question word
    (lower-cased). Score: the summed inverse-count weight ``log(1 + 1/count)`` (count in the
    context) of the question words found among the ``n`` context words on each side of the
    candidate, ``n`` = half the number of distinct question words (at least 1). The best score wins; ties go to the earlier,
    then the shorter candidate. Empty string if no candidate exists.
    """
    q = {m.group().lower() for m in _qa_words(question)}
    words = _qa_words(context)
    low = [m.group().lower() for m in words]
    counts: dict[str, int] = {}
    for w in low:
        counts[w] = counts.get(w, 0) + 1
    weight = [math.log(1 + 1 / counts[w]) if w in q else 0.0 for w in low]
    prefix = [0.0]
    for x in weight:
        prefix.append(prefix[-1] + x)
    n, width = len(words), max(len(q) // 2, 1)
    best, span = -1.0, None
    for i in range(n):
        for k in range(1, max_words + 1):
            j = i + k  # candidate words [i, j)
            if j > n or low[j - 1] in q:
                break
            score = (prefix[i] - prefix[max(0, i - width)]) + (prefix[min(n, j + width)] - prefix[j])
            if score > best + 1e-9:  # prefix sums round: an equal score must not win by an ulp
                best, span = score, (words[i].start(), words[j - 1].end())
    return context[span[0] : span[1]] if span else ""


def sliding_window_answers(examples: Sequence[Any]) -> list[str]:
    """:func:`sliding_window_answer` for objects with ``question`` and ``context`` (``QAExample``)."""
    return [sliding_window_answer(e.question, e.context) for e in examples]
