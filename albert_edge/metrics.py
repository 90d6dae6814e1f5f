"""Evaluation metrics in plain numpy, for the training loop, the model card and model comparisons.

Three groups:

- classification: ``accuracy``, ``confusion_matrix``, ``precision_recall_f1``, ``macro_f1`` and
  ``classification_report`` (a JSON-serialisable dict). Each takes the label set explicitly so a
  class missing from one evaluation split still gets its row, column and zero scores, and a
  misspelt label is an error instead of a silent extra class;
- regression: ``pearson`` and ``spearman`` (average ranks for ties, as scipy does);
- fidelity of a quantized or exported model against its float reference: ``sqnr_db``, ``cosine``,
  ``max_abs_diff``, ``top1_agreement``; plus ``softmax``.

Conventions, chosen to agree with scikit-learn (``zero_division=0``) and scipy:

- a ratio whose denominator is zero is 0.0: precision of a class never predicted, recall of a
  class absent from ``y_true``, F1 of a class absent from both. ``macro_f1`` averages over every
  label in ``labels``, so such a class pulls the average down;
- a correlation with a constant input is undefined and returned as ``nan``, as scipy does;
- inputs are array-likes (lists, numpy arrays, CPU tensors); all arithmetic is in float64.

Every error a caller can cause is a ``MetricsError`` (a ``ValueError``) naming the argument, the
offending value and what is accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from albert_edge.errors import MetricsError

__all__ = [
    "MetricsError",
    "PerClass",
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "macro_f1",
    "classification_report",
    "pearson",
    "spearman",
    "sqnr_db",
    "cosine",
    "max_abs_diff",
    "top1_agreement",
    "softmax",
]



# --- input checks ---------------------------------------------------------------------------------


def _vector(values: ArrayLike, name: str) -> NDArray:
    """``values`` as a non-empty 1-D array (any dtype)."""
    if isinstance(values, (str, bytes)):
        raise MetricsError(f"{name} must be a sequence of values, got the string {values!r}")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricsError(f"{name} must be 1-D (one value per example), got shape {arr.shape}")
    if arr.size == 0:
        raise MetricsError(f"{name} is empty; metrics need at least one example")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[NDArray, NDArray]:
    """Two non-empty 1-D arrays of the same length."""
    x, y = _vector(a, name_a), _vector(b, name_b)
    if len(x) != len(y):
        raise MetricsError(f"{name_a} has {len(x)} values but {name_b} has {len(y)}; they must match")
    return x, y


def _label_index(labels: Sequence[Hashable]) -> dict[Hashable, int]:
    """Label -> row/column index, in the order given."""
    if isinstance(labels, (str, bytes)):
        raise MetricsError(f"labels must be a sequence of class labels, got the string {labels!r}")
    labels = list(labels)
    if not labels:
        raise MetricsError("labels is empty; pass every class label, e.g. ['negative', 'neutral', 'positive']")
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        repeated = sorted({repr(l) for l, n in Counter(labels).items() if n > 1})
        raise MetricsError(f"labels must be unique, got {', '.join(repeated)} more than once in {labels!r}")
    return index


def _encode(values: NDArray, index: dict[Hashable, int], name: str) -> NDArray[np.int64]:
    """Labels -> their indices in ``labels``; every value must be one of ``labels``."""
    codes = np.fromiter((index.get(v, -1) for v in values.tolist()), dtype=np.int64, count=len(values))
    if (codes < 0).any():
        unknown = Counter(v for v, c in zip(values.tolist(), codes) if c < 0)
        shown = ", ".join(f"{v!r} ({n}x)" for v, n in unknown.most_common(5))
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise MetricsError(f"{name} has values not in labels: {shown}{more}; labels are {list(index)!r}")
    return codes


def _floats(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """``values`` as a non-empty, all-finite float64 array of any shape."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MetricsError(f"{name} must be numeric, got {type(values).__name__} ({e})") from e
    if arr.size == 0:
        raise MetricsError(f"{name} is empty; it needs at least one value")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise MetricsError(f"{name} has {bad} non-finite value(s) (nan or inf) out of {arr.size}")
    return arr


def _same_shape(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[NDArray, NDArray]:
    x, y = _floats(a, name_a), _floats(b, name_b)
    if x.shape != y.shape:
        raise MetricsError(f"{name_a} has shape {x.shape} but {name_b} has {y.shape}; they must match")
    return x, y


def _ratio(num: NDArray, den: NDArray) -> NDArray[np.float64]:
    """num / den elementwise, 0.0 where den == 0."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _json_label(label: Hashable) -> Any:
    """A label as a JSON value: numpy scalars become Python ones."""
    return label.item() if isinstance(label, np.generic) else label


# --- classification -------------------------------------------------------------------------------


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of examples where ``y_pred`` equals ``y_true``; both 1-D of length N."""
    t, p = _pair(y_true, y_pred, "y_true", "y_pred")
    hits = sum(a == b for a, b in zip(t.tolist(), p.tolist()))
    return hits / len(t)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Hashable]) -> NDArray[np.int64]:
    """Counts, int64 of shape (K, K) for K = len(labels): ``[i, j]`` = true ``labels[i]``
    predicted as ``labels[j]`` (rows true, columns predicted, both in the order of ``labels``)."""
    t, p = _pair(y_true, y_pred, "y_true", "y_pred")
    index = _label_index(labels)
    k = len(index)
    t, p = _encode(t, index, "y_true"), _encode(p, index, "y_pred")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)  # (K, K)


class PerClass(NamedTuple):
    """Per-class scores, each of shape (K,) in the order of ``labels``."""

    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    support: NDArray[np.int64]  # number of examples whose true label is the class


def _per_class(cm: NDArray[np.int64]) -> PerClass:
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)  # (K,) tp + fp
    support = cm.sum(axis=1)  # (K,) tp + fn
    # F1 as 2tp / (2tp + fp + fn): equal to the harmonic mean wherever that is defined, and 0.0
    # (not nan) where precision or recall is 0/0.
    return PerClass(
        precision=_ratio(tp, predicted),
        recall=_ratio(tp, support),
        f1=_ratio(2 * tp, predicted + support),
        support=support.astype(np.int64),
    )


def precision_recall_f1(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Hashable]) -> PerClass:
    """Precision, recall, F1 and support for each of ``labels``.

    A zero denominator gives 0.0: precision of a class never predicted, recall of a class with no
    true examples (support 0). Matches scikit-learn's ``precision_recall_fscore_support(...,
    labels=labels, average=None, zero_division=0)``.
    """
    return _per_class(confusion_matrix(y_true, y_pred, labels))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Hashable]) -> float:
    """Unweighted mean of the per-class F1 over every label in ``labels``.

    A label absent from both ``y_true`` and ``y_pred`` counts as F1 0.0, as in scikit-learn's
    ``f1_score(..., labels=labels, average="macro", zero_division=0)``.
    """
    return float(precision_recall_f1(y_true, y_pred, labels).f1.mean())


def classification_report(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Hashable]) -> dict[str, Any]:
    """Everything above in one JSON-serialisable dict::

        {"n": N, "accuracy": float, "macro_f1": float, "labels": [...],
         "per_class": {str(label): {"precision", "recall", "f1", "support"}},
         "confusion_matrix": [[int]*K]*K}   # rows true, columns predicted, in "labels" order

    ``per_class`` keys are ``str(label)`` because JSON object keys are strings; ``labels`` keeps
    the original values (numpy scalars converted to Python ones).
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    scores = _per_class(cm)
    labels = list(labels)
    per_class = {
        str(label): {
            "precision": float(scores.precision[i]),
            "recall": float(scores.recall[i]),
            "f1": float(scores.f1[i]),
            "support": int(scores.support[i]),
        }
        for i, label in enumerate(labels)
    }
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": float(np.trace(cm) / n),
        "macro_f1": float(scores.f1.mean()),
        "labels": [_json_label(label) for label in labels],
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


# --- regression -----------------------------------------------------------------------------------


def _paired_floats(x: ArrayLike, y: ArrayLike, name_x: str, name_y: str) -> tuple[NDArray, NDArray]:
    a, b = _pair(x, y, name_x, name_y)  # 1-D, same length, non-empty
    a, b = _floats(a, name_x), _floats(b, name_y)
    if len(a) < 2:
        raise MetricsError(f"{name_x} and {name_y} have 1 value each; a correlation needs at least 2")
    return a, b


def _pearson(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(da @ da) * float(db @ db))
    if denom == 0.0:  # a constant input: undefined, as in scipy
        return math.nan
    return float(np.clip((da @ db) / denom, -1.0, 1.0))


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation of two 1-D float sequences of the same length (>= 2, all finite).

    ``nan`` when either input is constant (the correlation is undefined there).
    """
    return _pearson(*_paired_floats(x, y, "x", "y"))


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks, tied values sharing the mean of the ranks they span (scipy's "average")."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])  # (N,)
    starts = np.flatnonzero(starts_group)  # (G,) first position of each tie group
    ends = np.append(starts[1:], len(values))  # (G,) one past its last position
    group_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = group_rank[np.cumsum(starts_group) - 1]
    return ranks


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation: Pearson on average ranks (ties share their mean rank).

    Same inputs as ``pearson``; ``nan`` when either input is constant.
    """
    a, b = _paired_floats(x, y, "x", "y")
    return _pearson(_average_ranks(a), _average_ranks(b))


# --- fidelity -------------------------------------------------------------------------------------


def sqnr_db(reference: ArrayLike, test: ArrayLike) -> float:
    """Signal-to-quantization-noise ratio in dB: ``10 log10(sum ref^2 / sum (ref - test)^2)``.

    ``reference`` and ``test`` have the same shape (any), all finite. ``+inf`` when they are
    identical (no noise); ``-inf`` when the reference is all zeros and the test is not.
    """
    ref, out = _same_shape(reference, test, "reference", "test")
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    """Cosine similarity of two same-shape arrays, flattened.

    With a zero vector the cosine is undefined; we return 1.0 when both are all zeros (they are
    identical) and 0.0 when only one is.
    """
    x, y = _same_shape(a, b, "a", "b")
    x, y = x.ravel(), y.ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 or ny == 0.0:
        return 1.0 if nx == ny else 0.0
    return float(np.clip((x @ y) / (nx * ny), -1.0, 1.0))


def max_abs_diff(a: ArrayLike, b: ArrayLike) -> float:
    """Largest ``|a - b|`` over two same-shape arrays."""
    x, y = _same_shape(a, b, "a", "b")
    return float(np.max(np.abs(x - y)))


def top1_agreement(logits_a: ArrayLike, logits_b: ArrayLike) -> float:
    """Fraction of rows whose argmax (over the last axis) agrees.

    Logits of shape (N, C), or (C,) for one example, or (..., C); both the same shape. Ties in a
    row resolve to the first maximal class, as ``numpy.argmax`` does.
    """
    x, y = _same_shape(logits_a, logits_b, "logits_a", "logits_b")
    if x.ndim == 0:
        raise MetricsError("logits_a is a scalar; top-1 agreement needs logits of shape (N, C) or (C,)")
    a = x.reshape(-1, x.shape[-1]).argmax(axis=-1)  # (N,)
    b = y.reshape(-1, y.shape[-1]).argmax(axis=-1)  # (N,)
    return float(np.mean(a == b))


def softmax(logits: ArrayLike, axis: int = -1) -> NDArray[np.floating]:
    """Softmax along ``axis``, stable for large logits (the row maximum is subtracted first).

    Returns the input's shape; float32/float16 inputs keep their dtype, anything else is float64.
    A row of all ``-inf`` has no defined softmax and comes out ``nan``.
    """
    x = np.asarray(logits)
    if not np.issubdtype(x.dtype, np.floating):
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise MetricsError(f"logits must be numeric, got dtype {x.dtype} ({e})") from e
    if x.ndim == 0 or x.size == 0:
        raise MetricsError(f"logits must have at least one value along an axis, got shape {x.shape}")
    if not -x.ndim <= axis < x.ndim:
        raise MetricsError(f"axis {axis} is out of range for logits of shape {x.shape}")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
