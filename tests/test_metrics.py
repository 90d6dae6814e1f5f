"""Metrics: hand-computed cases, agreement with scikit-learn and scipy, and the error messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from albert_edge.metrics import (
    MetricsError,
    accuracy,
    classification_report,
    confusion_matrix,
    cosine,
    macro_f1,
    max_abs_diff,
    pearson,
    precision_recall_f1,
    softmax,
    spearman,
    sqnr_db,
    top1_agreement,
)

LABELS = ["negative", "neutral", "positive"]
# 7 examples; by hand:
#   negative: tp 2, fp 1 (a neutral), fn 1 (-> positive)  P 2/3  R 2/3  F1 2/3   support 3
#   neutral:  tp 1, fp 0,             fn 1 (-> negative)  P 1    R 1/2  F1 2/3   support 2
#   positive: tp 2, fp 1 (a negative), fn 0               P 2/3  R 1    F1 4/5   support 2
Y_TRUE = ["negative", "negative", "negative", "neutral", "neutral", "positive", "positive"]
Y_PRED = ["negative", "negative", "positive", "neutral", "negative", "positive", "positive"]


# --- classification, by hand ----------------------------------------------------------------------


def test_accuracy_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(5 / 7)
    assert accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert accuracy(np.array([0, 1]), np.array([1, 0])) == 0.0


def test_confusion_matrix_rows_true_columns_predicted():
    cm = confusion_matrix(Y_TRUE, Y_PRED, LABELS)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[2, 0, 1], [1, 1, 0], [0, 0, 2]])
    # the order of labels is the order of rows and columns
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, LABELS[::-1]), [[2, 0, 0], [0, 1, 1], [1, 0, 2]])


def test_precision_recall_f1_by_hand():
    s = precision_recall_f1(Y_TRUE, Y_PRED, LABELS)
    np.testing.assert_allclose(s.precision, [2 / 3, 1, 2 / 3])
    np.testing.assert_allclose(s.recall, [2 / 3, 1 / 2, 1])
    np.testing.assert_allclose(s.f1, [2 / 3, 2 / 3, 4 / 5])
    np.testing.assert_array_equal(s.support, [3, 2, 2])
    assert macro_f1(Y_TRUE, Y_PRED, LABELS) == pytest.approx((2 / 3 + 2 / 3 + 4 / 5) / 3)


def test_zero_division_is_zero():
    # "b" is never predicted (precision 0/0), "c" never occurs nor is predicted (everything 0/0)
    s = precision_recall_f1(["a", "b", "b"], ["a", "a", "a"], ["a", "b", "c"])
    np.testing.assert_allclose(s.precision, [1 / 3, 0, 0])
    np.testing.assert_allclose(s.recall, [1, 0, 0])
    np.testing.assert_allclose(s.f1, [0.5, 0, 0])
    np.testing.assert_array_equal(s.support, [1, 2, 0])
    assert macro_f1(["a", "b", "b"], ["a", "a", "a"], ["a", "b", "c"]) == pytest.approx(0.5 / 3)
    assert not np.isnan(s.precision).any()


def test_classification_report_is_json_and_complete():
    report = classification_report(Y_TRUE, Y_PRED, LABELS)
    assert json.loads(json.dumps(report)) == report
    assert report["n"] == 7
    assert report["accuracy"] == pytest.approx(5 / 7)
    assert report["macro_f1"] == pytest.approx(macro_f1(Y_TRUE, Y_PRED, LABELS))
    assert report["labels"] == LABELS
    assert report["confusion_matrix"] == [[2, 0, 1], [1, 1, 0], [0, 0, 2]]
    assert report["per_class"]["positive"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})


def test_classification_report_with_numpy_integer_labels():
    labels = np.array([0, 1, 2])
    report = classification_report(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2]), labels)
    text = json.dumps(report)  # numpy scalars would not serialise
    assert json.loads(text)["labels"] == [0, 1, 2]
    assert set(report["per_class"]) == {"0", "1", "2"}
    assert all(type(v) is int for row in report["confusion_matrix"] for v in row)


# --- classification against scikit-learn ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_classification_matches_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    labels = [f"c{i}" for i in range(k)]
    # some labels occur in neither array, some only in predictions, some only in truth
    true_pool = labels[: max(1, k - 1)] if seed % 3 == 0 else labels
    pred_pool = labels[1:] if seed % 2 == 0 else labels[:-1] if seed % 3 == 1 else labels
    n = int(rng.integers(1, 60))
    y_true = rng.choice(true_pool, size=n).tolist()
    y_pred = rng.choice(pred_pool, size=n).tolist()

    assert accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, labels), sk.confusion_matrix(y_true, y_pred, labels=labels))
    ours = precision_recall_f1(y_true, y_pred, labels)
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(ours.precision, p)
    np.testing.assert_allclose(ours.recall, r)
    np.testing.assert_allclose(ours.f1, f)
    np.testing.assert_array_equal(ours.support, s)
    assert macro_f1(y_true, y_pred, labels) == pytest.approx(
        sk.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


# --- regression -----------------------------------------------------------------------------------


def test_pearson_and_spearman_by_hand():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # monotone but not linear: Spearman 1, Pearson below 1
    x = [1, 2, 3, 4, 5]
    y = [1, 4, 9, 16, 1000]
    assert spearman(x, y) == pytest.approx(1.0)
    assert pearson(x, y) < 0.8
    # ties share their mean rank: ranks of [10, 20, 20, 30] are [1, 2.5, 2.5, 4]
    assert spearman([10, 20, 20, 30], [1, 2, 3, 4]) == pytest.approx(pearson([1, 2.5, 2.5, 4], [1, 2, 3, 4]))


def test_correlation_of_a_constant_is_nan():
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))


@pytest.mark.parametrize("seed", range(10))
def test_correlations_match_scipy(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 80))
    if seed % 2:  # small integers: many ties (STS-B-like 0-5 scores)
        x = rng.integers(0, 6, size=n).astype(float)
        y = x + rng.integers(-2, 3, size=n)
    else:
        x = rng.normal(size=n)
        y = 0.5 * x + rng.normal(size=n)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        pytest.skip("constant draw")
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


# --- fidelity -------------------------------------------------------------------------------------


def test_sqnr_db():
    ref = np.array([3.0, 4.0])  # signal power 25
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(ref, ref + [0.5, 0.0]) == pytest.approx(10 * math.log10(25 / 0.25))  # 20 dB
    assert sqnr_db(np.zeros(3), np.ones(3)) == -math.inf
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8)).astype(np.float32)
    noisy = x + 0.01 * rng.normal(size=x.shape).astype(np.float32)
    assert 35 < sqnr_db(x, noisy) < 45  # ~40 dB for noise at 1% of a unit-variance signal


def test_sqnr_matches_torchao_formula():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 32))
    y = x + 0.05 * rng.normal(size=x.shape)
    # torchao.quantization.utils.compute_error: 20 log10(||x|| / ||x - y||)
    expected = float(20 * torch.log10(torch.linalg.norm(torch.tensor(x)) / torch.linalg.norm(torch.tensor(x - y))))
    assert sqnr_db(x, y) == pytest.approx(expected)
    assert sqnr_db(torch.tensor(x), torch.tensor(y)) == pytest.approx(expected)  # tensors are array-likes


def test_cosine_and_max_abs_diff():
    assert cosine([1, 0], [0, 1]) == 0.0
    assert cosine([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert cosine([1, 2], [-1, -2]) == pytest.approx(-1.0)
    assert cosine([[1, 1], [0, 0]], [[1, 0], [0, 0]]) == pytest.approx(1 / math.sqrt(2))  # flattened
    assert cosine([0, 0], [0, 0]) == 1.0
    assert cosine([0, 0], [1, 0]) == 0.0
    assert max_abs_diff([1.0, -2.0, 3.0], [1.5, -2.0, 0.0]) == 3.0
    assert max_abs_diff([[1.0]], [[1.0]]) == 0.0


def test_top1_agreement():
    a = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]])
    b = np.array([[0.0, 3.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]])
    assert top1_agreement(a, b) == pytest.approx(3 / 4)
    assert top1_agreement(a[0], b[0]) == 1.0  # one example, shape (C,)
    assert top1_agreement(a[None], b[None]) == pytest.approx(3 / 4)  # (1, N, C)


def test_softmax_is_stable_and_normalised():
    p = softmax([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-12)
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32) * 50
    for axis in (0, 1, -1):
        q = softmax(x, axis=axis)
        assert q.dtype == np.float32 and q.shape == x.shape
        np.testing.assert_allclose(q.sum(axis=axis), 1.0, rtol=1e-5)
        np.testing.assert_allclose(q, np.exp(x - x.max(axis=axis, keepdims=True)) / np.exp(
            x - x.max(axis=axis, keepdims=True)).sum(axis=axis, keepdims=True), rtol=1e-5)
    assert softmax([1, 2]).dtype == np.float64
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(softmax(x), torch.softmax(torch.tensor(x), dim=-1).numpy(), rtol=1e-5, atol=1e-7)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: accuracy([], []), r"y_true is empty"),
        (lambda: accuracy([1, 2], [1]), r"y_true has 2 values but y_pred has 1"),
        (lambda: accuracy("abc", "abd"), r"y_true must be a sequence of values, got the string 'abc'"),
        (lambda: accuracy([[1, 2]], [[1, 2]]), r"y_true must be 1-D .* got shape \(1, 2\)"),
        (lambda: confusion_matrix(["a"], ["b"], []), r"labels is empty"),
        (lambda: confusion_matrix(["a"], ["a"], ["a", "b", "a"]), r"labels must be unique, got 'a' more than once"),
        (lambda: confusion_matrix(["a", "x", "x"], ["a", "a", "a"], ["a", "b"]),
         r"y_true has values not in labels: 'x' \(2x\); labels are \['a', 'b'\]"),
        (lambda: macro_f1(["a"], ["neutrall"], ["a", "neutral"]), r"y_pred has values not in labels: 'neutrall'"),
        (lambda: classification_report([], [], ["a"]), r"y_true is empty"),
        (lambda: precision_recall_f1(["a"], ["a"], "ab"), r"labels must be a sequence of class labels"),
        (lambda: pearson([1.0], [2.0]), r"a correlation needs at least 2"),
        (lambda: spearman([1, 2, 3], [1, 2]), r"x has 3 values but y has 2"),
        (lambda: pearson([1, float("nan"), 3], [1, 2, 3]), r"x has 1 non-finite value"),
        (lambda: pearson(["a", "b"], [1, 2]), r"x must be numeric"),
        (lambda: sqnr_db(np.ones((2, 3)), np.ones((3, 2))), r"reference has shape \(2, 3\) but test has \(3, 2\)"),
        (lambda: sqnr_db([], []), r"reference is empty"),
        (lambda: sqnr_db([1.0, 2.0], [1.0, float("inf")]), r"test has 1 non-finite value"),
        (lambda: cosine([1, 2], [1, 2, 3]), r"a has shape \(2,\) but b has \(3,\)"),
        (lambda: max_abs_diff([], []), r"a is empty"),
        (lambda: top1_agreement(1.0, 2.0), r"logits_a is a scalar"),
        (lambda: top1_agreement(np.ones((2, 3)), np.ones((2, 4))), r"logits_a has shape \(2, 3\) but logits_b"),
        (lambda: softmax([]), r"logits must have at least one value"),
        (lambda: softmax([1.0, 2.0], axis=1), r"axis 1 is out of range for logits of shape \(2,\)"),
    ],
)
def test_errors_name_the_argument_and_value(call, message):
    with pytest.raises(MetricsError, match=message):
        call()
