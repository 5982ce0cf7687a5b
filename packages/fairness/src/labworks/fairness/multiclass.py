"""Multiclass labels: one-vs-rest group metrics per class and macro aggregation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labworks.fairness._inputs import ArrayLike, as_1d, check_lengths, to_numpy
from labworks.fairness.confusion import canonical_rate
from labworks.fairness.metrics import GroupMetrics, group_metrics

__all__ = ["MulticlassGroupMetrics", "multiclass_group_metrics"]


@dataclass(frozen=True)
class MulticlassGroupMetrics:
    """One binary GroupMetrics per class (class c positive, the rest negative)."""

    per_class: dict[Any, GroupMetrics]

    @property
    def classes(self) -> list[Any]:
        return list(self.per_class)

    def by_group(self, metric: str) -> pd.DataFrame:
        """Groups × classes of the one-vs-rest rate, plus a 'macro' column (mean over classes, NaN-skipping)."""
        metric = canonical_rate(metric)
        first = next(iter(self.per_class.values()))
        df = pd.DataFrame(
            {c: gm.by_group(metric) for c, gm in self.per_class.items()}, index=first.groups.pandas_index()
        )
        df["macro"] = df[self.classes].mean(axis=1, skipna=True)
        return df

    def difference(
        self,
        metric: str,
        method: str = "between_groups",
        reference: Any = None,
        average: str | None = "macro",
    ) -> float | pd.Series:
        """Per-class disparities (average=None) or their macro mean (average='macro')."""
        vals = pd.Series({c: gm.difference(metric, method, reference) for c, gm in self.per_class.items()})
        return vals if average is None else float(vals.mean(skipna=True))

    def ratio(
        self,
        metric: str,
        method: str = "between_groups",
        reference: Any = None,
        average: str | None = "macro",
    ) -> float | pd.Series:
        vals = pd.Series({c: gm.ratio(metric, method, reference) for c, gm in self.per_class.items()})
        return vals if average is None else float(vals.mean(skipna=True))


def multiclass_group_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    labels: Sequence[Any] | None = None,
    sample_weight: ArrayLike | None = None,
    min_count: int = 1,
) -> MulticlassGroupMetrics:
    """One-vs-rest GroupMetrics for every class in ``labels`` (default: sorted union of y_true and y_pred)."""
    yt, yp = to_numpy(as_1d(y_true, "y_true")), to_numpy(as_1d(y_pred, "y_pred"))
    check_lengths(y_true=yt, y_pred=yp)
    if pd.isna(yt).any() or pd.isna(yp).any():
        raise ValueError("y_true / y_pred contain NaN/missing values")
    classes = list(labels) if labels is not None else sorted(set(pd.unique(yt)) | set(pd.unique(yp)))
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes, got {classes}")
    return MulticlassGroupMetrics(
        {
            c: group_metrics(
                (yt == c).astype(np.int64),
                (yp == c).astype(np.int64),
                sensitive_features=sensitive_features,
                sample_weight=sample_weight,
                min_count=min_count,
            )
            for c in classes
        }
    )
