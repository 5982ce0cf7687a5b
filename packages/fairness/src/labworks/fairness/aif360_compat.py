"""AIF360-convention metrics: signed, unprivileged (pooled rest) vs a named privileged group.

Same names and argument order as ``aif360.sklearn.metrics`` except that ``prot_attr`` is an explicit
array (or DataFrame for several attributes) instead of a level of ``y_true``'s index, and
``priv_group`` is a group label (a tuple for several attributes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labworks.fairness._inputs import ArrayLike, as_1d, binarize, check_lengths, to_numpy
from labworks.fairness.groups import encode_groups
from labworks.fairness.individual import generalized_entropy_index
from labworks.fairness.metrics import group_metrics

__all__ = [
    "average_odds_difference",
    "average_odds_error",
    "between_group_generalized_entropy_error",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "generalized_entropy_error",
    "smoothed_edf",
    "statistical_parity_difference",
]


def _gm(y_true: Any, y_pred: Any, prot_attr: Any, pos_label: Any, sample_weight: Any) -> Any:
    return group_metrics(
        y_true, y_pred, sensitive_features=prot_attr, pos_label=pos_label, sample_weight=sample_weight
    )


def statistical_parity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike | None = None,
    *,
    prot_attr: Any,
    priv_group: Any = 1,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """SR(unprivileged) − SR(privileged); with ``y_pred=None`` the base rates of ``y_true`` (as AIF360)."""
    yp = y_true if y_pred is None else y_pred
    return _gm(y_true, yp, prot_attr, pos_label, sample_weight).difference(
        "selection_rate", "vs_reference", priv_group
    )


def disparate_impact_ratio(
    y_true: ArrayLike,
    y_pred: ArrayLike | None = None,
    *,
    prot_attr: Any,
    priv_group: Any = 1,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """SR(unprivileged) / SR(privileged) (may exceed 1)."""
    yp = y_true if y_pred is None else y_pred
    return _gm(y_true, yp, prot_attr, pos_label, sample_weight).ratio(
        "selection_rate", "vs_reference", priv_group
    )


def equal_opportunity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    prot_attr: Any,
    priv_group: Any = 1,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """TPR(unprivileged) − TPR(privileged)."""
    return _gm(y_true, y_pred, prot_attr, pos_label, sample_weight).difference(
        "true_positive_rate", "vs_reference", priv_group
    )


def average_odds_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    prot_attr: Any,
    priv_group: Any = 1,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """½[(FPR_u − FPR_p) + (TPR_u − TPR_p)]."""
    gm = _gm(y_true, y_pred, prot_attr, pos_label, sample_weight)
    return gm.equalized_odds("difference", "vs_reference", "mean", priv_group)


def average_odds_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    prot_attr: Any,
    priv_group: Any = None,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """½(|FPR_u − FPR_p| + |TPR_u − TPR_p|); ``priv_group=None`` needs a binary attribute (first level)."""
    gm = _gm(y_true, y_pred, prot_attr, pos_label, sample_weight)
    if priv_group is None:
        if gm.n_groups != 2:
            raise ValueError(f"priv_group=None needs a binary protected attribute, got {gm.n_groups} groups")
        priv_group = gm.groups.labels()[0]
    t = gm.difference("true_positive_rate", "vs_reference", priv_group)
    f = gm.difference("false_positive_rate", "vs_reference", priv_group)
    return (abs(t) + abs(f)) / 2


def equalized_odds_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    prot_attr: Any,
    priv_group: Any = 1,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """max(|FPR_u − FPR_p|, |TPR_u − TPR_p|) (AIF360 ``ClassificationMetric.equalized_odds_difference``)."""
    gm = _gm(y_true, y_pred, prot_attr, pos_label, sample_weight)
    return gm.equalized_odds("difference", "vs_reference", "worst_case", priv_group)


def _b(y_true: ArrayLike, y_pred: ArrayLike, pos_label: Any) -> np.ndarray:
    yt, yp = as_1d(y_true, "y_true"), as_1d(y_pred, "y_pred")
    check_lengths(y_true=yt, y_pred=yp)
    t = to_numpy(binarize(yt, "y_true", pos_label)).astype(np.float64)
    p = to_numpy(binarize(yp, "y_pred", pos_label)).astype(np.float64)
    return 1.0 + p - t


def generalized_entropy_error(
    y_true: ArrayLike, y_pred: ArrayLike, alpha: float = 2, pos_label: Any = 1
) -> float:
    """Generalized entropy index of b = ŷ − y + 1 (AIF360 convention, incl. its α = 0 form)."""
    return generalized_entropy_index(_b(y_true, y_pred, pos_label), alpha=alpha, convention="aif360")


def between_group_generalized_entropy_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    prot_attr: Any = None,
    priv_group: Any = None,
    alpha: float = 2,
    pos_label: Any = 1,
) -> float:
    """GE of b with each b_i replaced by its group mean (privileged vs rest when ``priv_group`` is given)."""
    b = _b(y_true, y_pred, pos_label)
    groups = encode_groups(prot_attr, n=len(b))
    codes = to_numpy(groups.codes)
    if priv_group is not None:
        codes = (codes == groups.code_of(priv_group)).astype(np.int64)
    sums = np.bincount(codes, weights=b)
    cnt = np.bincount(codes)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / cnt
    return generalized_entropy_index(means[codes], alpha=alpha, convention="aif360")


def smoothed_edf(
    y_true: ArrayLike,
    y_pred: ArrayLike | None = None,
    *,
    prot_attr: Any,
    pos_label: Any = 1,
    concentration: float = 1.0,
    sample_weight: ArrayLike | None = None,
    convention: str = "aif360",
) -> float:
    """Smoothed empirical differential fairness ε (Foulds et al.) over the observed intersectional groups.

    Per group the Dirichlet-smoothed rate r = (P + α/|R|) / (N + α) of positive predictions (or labels when
    ``y_pred`` is None); ε = max over group pairs of |ln r_i − ln r_j| and |ln(1 − r_i) − ln(1 − r_j)|.
    ``convention="aif360"`` counts |R| as the classes present in each group (as AIF360's code does);
    ``"textbook"`` uses |R| = 2.
    """
    if concentration < 0:
        raise ValueError(f"concentration must be non-negative, got {concentration}")
    if convention not in ("aif360", "textbook"):
        raise ValueError(f"convention must be 'aif360' or 'textbook', got {convention!r}")
    src = y_true if y_pred is None else y_pred
    yv = to_numpy(
        binarize(as_1d(src, "y_pred" if y_pred is not None else "y_true"), "labels", pos_label)
    ).astype(np.float64)
    n = len(yv)
    groups = encode_groups(prot_attr, n=n)
    codes = to_numpy(groups.codes)
    w = (
        np.ones(n)
        if sample_weight is None
        else to_numpy(as_1d(sample_weight, "sample_weight")).astype(np.float64)
    )
    G = groups.n_groups
    tot = np.bincount(codes, weights=w, minlength=G)
    pos = np.bincount(codes, weights=w * yv, minlength=G)
    cnt = np.bincount(codes, minlength=G)
    if convention == "aif360":
        has_pos = np.bincount(codes, weights=yv, minlength=G) > 0
        has_neg = np.bincount(codes, weights=1 - yv, minlength=G) > 0
        n_classes = has_pos.astype(int) + has_neg.astype(int)
    else:
        n_classes = np.full(G, 2)
    keep = cnt > 0
    r = (pos[keep] + concentration / n_classes[keep]) / (tot[keep] + concentration)
    with np.errstate(divide="ignore"):  # a group with one class only gives r = 1 under AIF360's |R|: ε = inf
        lr, lnr = np.log(r), np.log(1 - r)
    return float(max(lr.max() - lr.min(), lnr.max() - lnr.min()))
