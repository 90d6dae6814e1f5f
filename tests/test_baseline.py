"""The TF-IDF + logistic regression baseline on a tiny separable corpus, its settings and its errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from albert_edge.baseline import C_GRID, tfidf_logreg
from albert_edge.metrics import MetricsError

pytest.importorskip("sklearn")

LABELS = ["negative", "neutral", "positive"]
WORDS = {
    "negative": ["awful", "terrible", "hate", "worst", "broken", "sad"],
    "neutral": ["table", "monday", "train", "report", "window", "paper"],
    "positive": ["great", "love", "wonderful", "best", "happy", "excellent"],
}
FILLER = ["the", "a", "today", "this", "is", "my", "really"]


def corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """n short texts: each has two words of its class among filler shared by all classes."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = LABELS[i % 3]
        words = list(rng.choice(WORDS[label], size=2)) + list(rng.choice(FILLER, size=3))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize())
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def splits():
    return corpus(90, seed=0), corpus(30, seed=1), corpus(30, seed=2)


def test_separable_corpus_is_learned(splits):
    (train_x, train_y), _, (eval_x, eval_y) = splits
    result = tfidf_logreg(train_x, train_y, eval_x, eval_y, labels=LABELS)
    report, settings = result["report"], result["settings"]
    assert json.loads(json.dumps(result)) == result
    assert report["n"] == 30 and report["labels"] == LABELS
    assert report["accuracy"] >= 0.95 and report["macro_f1"] >= 0.95
    assert settings["classifier"]["C"] == 1.0 and settings["validation_macro_f1"] is None
    assert settings["vectorizer"] == {"lowercase": True, "ngram_range": [1, 2], "sublinear_tf": True, "min_df": 2}
    assert settings["n_train"] == 90 and settings["n_eval"] == 30 and settings["n_val"] is None
    assert settings["vocabulary_size"] > 0


def test_c_is_chosen_on_the_validation_set(splits):
    (train_x, train_y), (val_x, val_y), (eval_x, eval_y) = splits
    result = tfidf_logreg(train_x, train_y, eval_x, eval_y, labels=LABELS, val_texts=val_x, val_labels=val_y,
                          c_grid=(10.0, 0.01, 1.0))
    settings = result["settings"]
    scores = settings["validation_macro_f1"]
    assert list(scores) == ["0.01", "1.0", "10.0"]  # tried in ascending order
    best = max(scores.values())
    assert settings["classifier"]["C"] == min(float(c) for c, s in scores.items() if s == best)
    assert settings["n_val"] == 30
    assert result["report"]["accuracy"] >= 0.95


def test_a_better_validation_score_beats_a_smaller_c(splits):
    (train_x, train_y), (val_x, val_y), (eval_x, eval_y) = splits
    # a neutral-heavy training set: with C=1e-4 the weights vanish and the prior predicts "neutral"
    train_x, train_y = train_x + ["the today"] * 30, train_y + ["neutral"] * 30
    result = tfidf_logreg(train_x, train_y, eval_x, eval_y, labels=LABELS, val_texts=val_x, val_labels=val_y,
                          c_grid=(1e-4, 1.0))
    scores = result["settings"]["validation_macro_f1"]
    assert scores["0.0001"] < 0.5 < scores["1.0"]
    assert result["settings"]["classifier"]["C"] == 1.0


def test_same_inputs_same_result(splits):
    (train_x, train_y), _, (eval_x, eval_y) = splits
    assert tfidf_logreg(train_x, train_y, eval_x, eval_y, labels=LABELS) == tfidf_logreg(
        train_x, train_y, eval_x, eval_y, labels=LABELS)


def test_default_grid_is_ascending_and_positive():
    assert list(C_GRID) == sorted(C_GRID) and all(c > 0 for c in C_GRID)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"train_labels": ["negative"] * 89 + ["mixed"]}, r"train_labels has values not in labels: 'mixed'"),
        ({"eval_labels": ["positive"] * 29}, r"eval_texts has 30 texts but eval_labels has 29 labels"),
        ({"train_texts": ["fine"] * 89 + [None]}, r"train_texts\[89\] is NoneType None; every text must be a str"),
        ({"eval_texts": [], "eval_labels": []}, r"eval_texts is empty"),
        ({"train_labels": ["neutral"] * 90}, r"train_labels has only one class \('neutral'\)"),
        ({"val_texts": ["a b"]}, r"pass both val_texts and val_labels"),
        ({"train_texts": [f"w{i}" for i in range(90)]}, r"train_texts gives no features with min_df=2"),
    ],
)
def test_errors_name_the_split_and_value(splits, change, message):
    (train_x, train_y), _, (eval_x, eval_y) = splits
    kwargs = dict(train_texts=train_x, train_labels=train_y, eval_texts=eval_x, eval_labels=eval_y, labels=LABELS)
    kwargs.update(change)
    with pytest.raises(MetricsError, match=message):
        tfidf_logreg(**kwargs)


def test_missing_sklearn_says_how_to_install(monkeypatch, splits):
    for name in ("sklearn", "sklearn.feature_extraction.text", "sklearn.linear_model"):
        monkeypatch.setitem(sys.modules, name, None)  # import of a None entry raises ImportError
    (train_x, train_y), _, (eval_x, eval_y) = splits
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        tfidf_logreg(train_x, train_y, eval_x, eval_y, labels=LABELS)


@pytest.mark.parametrize("grid", [(), (1.0, 0.0), (-1.0,)])
def test_bad_c_grid_is_named(splits, grid):
    (train_x, train_y), (val_x, val_y), (eval_x, eval_y) = splits
    with pytest.raises(MetricsError, match=r"c_grid must be a non-empty list of positive numbers"):
        tfidf_logreg(train_x, train_y, eval_x, eval_y, labels=LABELS, val_texts=val_x, val_labels=val_y, c_grid=grid)
