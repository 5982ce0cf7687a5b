"""fairlearn-compatible top-level functions: same names, same signatures, same conventions.

Migrating is an import change: ``from fairlearn.metrics import demographic_parity_difference`` →
``from labworks.fairness import demographic_parity_difference``. Extensions are keyword-only and
default to fairlearn behaviour: ``method="vs_reference"`` with ``reference=`` (AIF360-style signed
comparison of the pooled rest against a privileged group) and ``min_count``.

One deliberate difference: a group whose rate has an empty denominator (e.g. TPR in a group with no
positives) is NaN and excluded with a :class:`NotEstimableWarning`; fairlearn (via scikit-learn's
``confusion_matrix(normalize=...)``) reports 0 there, which can make an incomplete comparison look fair.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from labworks.fairness._inputs import ArrayLike, as_1d, as_weights, binarize, check_lengths, to_numpy
from labworks.fairness.confusion import confusion_cells, rate_from_cells
from labworks.fairness.metrics import group_metrics

__all__ = [
    "count",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "false_negative_rate",
    "false_positive_rate",
    "mean_prediction",
    "selection_rate",
    "true_negative_rate",
    "true_positive_rate",
]

MethodArg = Literal["between_groups", "to_overall", "vs_reference"]


def _cells(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None, pos_label: Any
) -> np.ndarray:
    yt, yp = as_1d(y_true, "y_true"), as_1d(y_pred, "y_pred")
    n = check_lengths(y_true=yt, y_pred=yp)
    yt, yp = to_numpy(binarize(yt, "y_true", pos_label)), to_numpy(binarize(yp, "y_pred", pos_label))
    w = as_weights(sample_weight, n, yt)
    cells, _ = confusion_cells(np.zeros(n, dtype=np.int64), yt, yp, 1, to_numpy(w) if w is not None else None)
    return cells[0]


def selection_rate(
    y_true: ArrayLike, y_pred: ArrayLike, *, pos_label: Any = 1, sample_weight: ArrayLike | None = None
) -> float:
    """Weighted fraction of predictions equal to ``pos_label`` (``y_true`` only checked for length)."""
    yp = as_1d(y_pred, "y_pred")
    if y_true is not None:
        check_lengths(y_true=as_1d(y_true, "y_true"), y_pred=yp)
    n = check_lengths(y_pred=yp)
    sel = to_numpy(binarize(yp, "y_pred", pos_label)).astype(np.float64)
    w = as_weights(sample_weight, n, sel)
    w = np.ones(n) if w is None else to_numpy(w)
    return float(np.dot(sel, w) / w.sum())


def true_positive_rate(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None, pos_label: Any = None
) -> float:
    """TP / (TP + FN); NaN when there are no positives."""
    return float(rate_from_cells(_cells(y_true, y_pred, sample_weight, pos_label), "true_positive_rate"))


def true_negative_rate(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None, pos_label: Any = None
) -> float:
    """TN / (TN + FP); NaN when there are no negatives."""
    return float(rate_from_cells(_cells(y_true, y_pred, sample_weight, pos_label), "true_negative_rate"))


def false_positive_rate(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None, pos_label: Any = None
) -> float:
    """FP / (FP + TN); NaN when there are no negatives."""
    return float(rate_from_cells(_cells(y_true, y_pred, sample_weight, pos_label), "false_positive_rate"))


def false_negative_rate(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None, pos_label: Any = None
) -> float:
    """FN / (FN + TP); NaN when there are no positives."""
    return float(rate_from_cells(_cells(y_true, y_pred, sample_weight, pos_label), "false_negative_rate"))


def count(y_true: ArrayLike, y_pred: ArrayLike) -> int:
    """Number of rows."""
    return check_lengths(y_true=as_1d(y_true, "y_true"), y_pred=as_1d(y_pred, "y_pred"))


def mean_prediction(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """Weighted mean of ``y_pred`` (for regression or scores)."""
    yp = to_numpy(as_1d(y_pred, "y_pred")).astype(np.float64)
    n = check_lengths(y_true=as_1d(y_true, "y_true"), y_pred=yp)
    if np.isnan(yp).any():
        raise ValueError("y_pred contains NaN values")
    w = as_weights(sample_weight, n, yp)
    w = np.ones(n) if w is None else to_numpy(w)
    return float(np.dot(yp, w) / w.sum())


def _gm(y_true: Any, y_pred: Any, sensitive_features: Any, sample_weight: Any, min_count: int) -> Any:
    return group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
        min_count=min_count,
    )


def demographic_parity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """Selection-rate difference: max − min (between_groups), max |g − overall| (to_overall), or signed
    SR(rest) − SR(reference) (vs_reference = AIF360 ``statistical_parity_difference``)."""
    return _gm(y_true, y_pred, sensitive_features, sample_weight, min_count).difference(
        "selection_rate", method, reference
    )


def demographic_parity_ratio(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """Selection-rate ratio: min / max (between_groups), folded g / overall (to_overall), or SR(rest) /
    SR(reference) (vs_reference = AIF360 ``disparate_impact_ratio``, may exceed 1)."""
    return _gm(y_true, y_pred, sensitive_features, sample_weight, min_count).ratio(
        "selection_rate", method, reference
    )


def equalized_odds_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    agg: Literal["worst_case", "mean"] = "worst_case",
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """max(ΔTPR, ΔFPR) (agg='worst_case') or their mean (agg='mean'); see GroupMetrics.equalized_odds."""
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg}")
    gm = _gm(y_true, y_pred, sensitive_features, sample_weight, min_count)
    return gm.equalized_odds("difference", method, agg, reference)


def equalized_odds_ratio(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    agg: Literal["worst_case", "mean"] = "worst_case",
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """min(TPR ratio, FPR ratio) (agg='worst_case') or their mean (agg='mean')."""
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg}")
    gm = _gm(y_true, y_pred, sensitive_features, sample_weight, min_count)
    return gm.equalized_odds("ratio", method, agg, reference)


def equal_opportunity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """True-positive-rate difference under ``method``."""
    gm = _gm(y_true, y_pred, sensitive_features, sample_weight, min_count)
    return gm.difference("true_positive_rate", method, reference)


def equal_opportunity_ratio(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """True-positive-rate ratio under ``method``."""
    gm = _gm(y_true, y_pred, sensitive_features, sample_weight, min_count)
    return gm.ratio("true_positive_rate", method, reference)
