"""Reweighing (Kamiran & Calders; AIF360's ``Reweighing``): w(a, y) = P(A=a)·P(Y=y) / P(A=a, Y=y)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labworks.fairness._inputs import ArrayLike, as_1d, as_weights, check_lengths, to_numpy
from labworks.fairness.groups import GroupIndex, encode_groups

__all__ = ["Reweighing", "reweighing_weights"]


class Reweighing:
    """Pre-processing that makes the label independent of the (intersectional) group in the weighted data.

    ``fit(y, sensitive_features, sample_weight)`` learns a factor per (group, label) cell;
    ``transform`` returns new per-row weights (factor × original weight). Labels may be multiclass.
    """

    def __init__(self) -> None:
        self.factors_: pd.DataFrame | None = None
        self._groups: GroupIndex | None = None
        self._classes: np.ndarray | None = None

    def fit(
        self, y: ArrayLike, sensitive_features: Any, sample_weight: ArrayLike | None = None
    ) -> Reweighing:
        yv = to_numpy(as_1d(y, "y"))
        n = check_lengths(y=yv)
        if pd.isna(yv).any():
            raise ValueError("y contains NaN/missing values")
        groups = encode_groups(sensitive_features, n=n)
        codes = to_numpy(groups.codes)
        cls_codes, classes = pd.factorize(yv, sort=True)
        w = as_weights(sample_weight, n, yv)
        w = np.ones(n) if w is None else to_numpy(w)
        G, C = groups.n_groups, len(classes)
        joint = np.bincount(codes * C + cls_codes, weights=w, minlength=G * C).reshape(G, C)
        total = joint.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            factors = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True) / (total * joint)
        factors[joint == 0] = np.nan  # no rows in this cell: no factor is needed
        self.factors_ = pd.DataFrame(
            factors, index=groups.pandas_index(), columns=pd.Index(classes, name="label")
        )
        self._groups, self._classes = groups, np.asarray(classes)
        return self

    def transform(
        self, y: ArrayLike, sensitive_features: Any, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        """(n,) reweighed sample weights for rows (y, group) seen at fit time."""
        if self.factors_ is None or self._groups is None or self._classes is None:
            raise RuntimeError("call fit() first")
        yv = to_numpy(as_1d(y, "y"))
        n = check_lengths(y=yv)
        groups = encode_groups(sensitive_features, n=n)
        if groups.levels != self._groups.levels:
            raise ValueError("sensitive feature levels differ from those seen at fit time")
        cls = np.searchsorted(self._classes, yv)
        if (cls >= len(self._classes)).any() or (
            self._classes[np.minimum(cls, len(self._classes) - 1)] != yv
        ).any():
            raise ValueError("y has labels not seen at fit time")
        f = self.factors_.to_numpy()[to_numpy(groups.codes), cls]
        w = as_weights(sample_weight, n, yv)
        return f if w is None else f * to_numpy(w)

    def fit_transform(
        self, y: ArrayLike, sensitive_features: Any, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        return self.fit(y, sensitive_features, sample_weight).transform(y, sensitive_features, sample_weight)


def reweighing_weights(
    y: ArrayLike, sensitive_features: Any, sample_weight: ArrayLike | None = None
) -> np.ndarray:
    """(n,) Reweighing sample weights in one call."""
    return Reweighing().fit_transform(y, sensitive_features, sample_weight)
