"""Regression group metrics: mean prediction, mean target, group losses (MSE / MAE) and their disparities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labworks.fairness._inputs import ArrayLike, as_1d, as_weights, check_lengths, to_numpy
from labworks.fairness.comparators import check_method
from labworks.fairness.groups import encode_groups

__all__ = ["regression_disparity", "regression_group_metrics"]

_STATS = ("mean_prediction", "mean_target", "mse", "mae", "mean_error")


def regression_group_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, sample_weight: ArrayLike | None = None
) -> pd.DataFrame:
    """Per group (rows) and overall (last row): n, weight, mean_prediction, mean_target, mse, mae, mean_error.

    One pass of weighted segment sums; empty intersectional groups are NaN with n = 0.
    """
    yt = to_numpy(as_1d(y_true, "y_true")).astype(np.float64)
    yp = to_numpy(as_1d(y_pred, "y_pred")).astype(np.float64)
    n = check_lengths(y_true=yt, y_pred=yp)
    if np.isnan(yt).any() or np.isnan(yp).any():
        raise ValueError("y_true / y_pred contain NaN values")
    groups = encode_groups(sensitive_features, n=n)
    codes = to_numpy(groups.codes)
    w = as_weights(sample_weight, n, yt)
    w = np.ones(n) if w is None else to_numpy(w)
    G = groups.n_groups
    e = yp - yt
    cols = {
        "n": np.bincount(codes, minlength=G).astype(float),
        "weight": np.bincount(codes, weights=w, minlength=G),
    }
    for name, v in (
        ("mean_prediction", yp),
        ("mean_target", yt),
        ("mse", e * e),
        ("mae", np.abs(e)),
        ("mean_error", e),
    ):
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[name] = np.bincount(codes, weights=w * v, minlength=G) / cols["weight"]
    df = pd.DataFrame(cols, index=pd.Index([groups.label_str(i) for i in range(G)], name="group"))
    overall = {"n": float(n), "weight": w.sum()}
    for name, v in (
        ("mean_prediction", yp),
        ("mean_target", yt),
        ("mse", e * e),
        ("mae", np.abs(e)),
        ("mean_error", e),
    ):
        overall[name] = float(np.dot(w, v) / w.sum())
    df.loc["overall"] = overall
    df["n"] = df["n"].astype(int)
    return df


def regression_disparity(
    table: pd.DataFrame, stat: str = "mse", method: str = "between_groups", reference: Any = None
) -> float:
    """Difference of a group statistic: max − min, max |g − overall|, or g − reference (signed); for group
    loss, ``method="worst"`` gives the bounded-group-loss value max_g loss_g."""
    if stat not in _STATS:
        raise ValueError(f"unknown statistic {stat!r}; use one of {', '.join(_STATS)}")
    groups = table.drop(index="overall")
    v = groups.loc[groups["n"] > 0, stat]
    if method == "worst":
        return float(v.max())
    check_method(method)
    if method == "between_groups":
        return float(v.max() - v.min())
    if method == "to_overall":
        return float((v - table.loc["overall", stat]).abs().max())
    if reference is None or str(reference) not in v.index:
        raise ValueError(f"unknown reference group {reference!r}; groups are: {', '.join(v.index)}")
    rest = table.loc["overall"]  # pooled-rest needs sums: recompute from weights
    ref = groups.loc[str(reference)]
    rest_val = (rest[stat] * rest["weight"] - ref[stat] * ref["weight"]) / (rest["weight"] - ref["weight"])
    return float(rest_val - ref[stat])
