"""Further group-fairness measures in the fairlearn calling style: predictive parity, error-rate parity, and
any rate by name (``metric_difference(..., metric="false_omission_rate")``)."""

from __future__ import annotations

from typing import Any

from labworks.fairness._inputs import ArrayLike
from labworks.fairness.compat import MethodArg
from labworks.fairness.metrics import group_metrics

__all__ = [
    "error_rate_difference",
    "error_rate_ratio",
    "metric_difference",
    "metric_ratio",
    "predictive_parity_difference",
    "predictive_parity_ratio",
]


def metric_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    metric: str,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """Difference of any confusion rate (see ``labworks.fairness.RATES``) across groups under ``method``."""
    gm = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
        min_count=min_count,
    )
    return gm.difference(metric, method, reference)


def metric_ratio(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    metric: str,
    method: MethodArg = "between_groups",
    sample_weight: ArrayLike | None = None,
    reference: Any = None,
    min_count: int = 1,
) -> float:
    """Ratio of any confusion rate across groups under ``method``."""
    gm = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
        min_count=min_count,
    )
    return gm.ratio(metric, method, reference)


def predictive_parity_difference(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: MethodArg = "between_groups", sample_weight: ArrayLike | None = None, reference: Any = None, min_count: int = 1) -> float:  # fmt: skip
    """PPV (precision) difference across groups."""
    return metric_difference(y_true, y_pred, sensitive_features=sensitive_features, metric="positive_predictive_value", method=method, sample_weight=sample_weight, reference=reference, min_count=min_count)  # fmt: skip


def predictive_parity_ratio(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: MethodArg = "between_groups", sample_weight: ArrayLike | None = None, reference: Any = None, min_count: int = 1) -> float:  # fmt: skip
    """PPV (precision) ratio across groups."""
    return metric_ratio(y_true, y_pred, sensitive_features=sensitive_features, metric="positive_predictive_value", method=method, sample_weight=sample_weight, reference=reference, min_count=min_count)  # fmt: skip


def error_rate_difference(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: MethodArg = "between_groups", sample_weight: ArrayLike | None = None, reference: Any = None, min_count: int = 1) -> float:  # fmt: skip
    """Error-rate (1 − accuracy) difference across groups (error-rate parity)."""
    return metric_difference(y_true, y_pred, sensitive_features=sensitive_features, metric="error_rate", method=method, sample_weight=sample_weight, reference=reference, min_count=min_count)  # fmt: skip


def error_rate_ratio(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: MethodArg = "between_groups", sample_weight: ArrayLike | None = None, reference: Any = None, min_count: int = 1) -> float:  # fmt: skip
    """Error-rate ratio across groups."""
    return metric_ratio(y_true, y_pred, sensitive_features=sensitive_features, metric="error_rate", method=method, sample_weight=sample_weight, reference=reference, min_count=min_count)  # fmt: skip
