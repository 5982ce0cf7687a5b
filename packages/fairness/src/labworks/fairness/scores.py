"""Score-based metrics per group: threshold sweeps, ROC / precision–recall curves, AUC, calibration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from labworks.fairness._inputs import ArrayLike, as_1d, as_weights, binarize, check_lengths, to_numpy
from labworks.fairness.confusion import canonical_rate, rate_from_cells
from labworks.fairness.groups import GroupIndex, encode_groups

__all__ = [
    "ThresholdSweep",
    "auc_by_group",
    "bias_auc_by_group",
    "calibration_by_group",
    "pr_curve_by_group",
    "roc_curve_by_group",
    "threshold_sweep",
]


def _prep(
    y_true: ArrayLike,
    scores: ArrayLike,
    sensitive_features: Any,
    sample_weight: ArrayLike | None,
    pos_label: Any,
) -> tuple[np.ndarray, np.ndarray, GroupIndex, np.ndarray, np.ndarray]:
    yt = as_1d(y_true, "y_true")
    s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
    n = check_lengths(y_true=yt, scores=s)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN values")
    y = to_numpy(binarize(yt, "y_true", pos_label))
    groups = encode_groups(sensitive_features, n=n)
    w = as_weights(sample_weight, n, y)
    w = np.ones(n) if w is None else to_numpy(w)
    return y, s, groups, to_numpy(groups.codes), w


class ThresholdSweep:
    """Confusion cells for every (threshold, group): ``cells`` (T, G, 4) weighted, ``counts`` (T, G, 4) rows;
    prediction = score ≥ threshold. A rate is estimable where its denominator has ≥ ``min_count`` rows."""

    def __init__(self, thresholds: np.ndarray, cells: np.ndarray, groups: GroupIndex, counts: np.ndarray | None = None, min_count: int = 1) -> None:  # fmt: skip
        self.thresholds, self.cells, self.groups = thresholds, cells, groups
        self.counts = cells if counts is None else counts
        self.min_count = min_count

    def estimable(self, metric: str) -> np.ndarray:
        """(T, G) bool mask: denominator rows ≥ min_count and positive weight."""
        from labworks.fairness.confusion import parts_from_cells

        return (parts_from_cells(self.counts, metric)[1] >= max(self.min_count, 1)) & (
            parts_from_cells(self.cells, metric)[1] > 0
        )

    def rate(self, metric: str) -> np.ndarray:
        """(T, G) rate per threshold and group (NaN = not estimable)."""
        return np.where(self.estimable(metric), rate_from_cells(self.cells, metric), np.nan)

    def overall(self, metric: str) -> np.ndarray:
        return rate_from_cells(self.cells.sum(1), metric)

    def table(
        self,
        metrics: Sequence[str] = (
            "selection_rate",
            "true_positive_rate",
            "false_positive_rate",
            "positive_predictive_value",
        ),
    ) -> pd.DataFrame:
        """Tidy: threshold, group, metric, value (overall rows included)."""
        frames = []
        labels = [self.groups.label_str(i) for i in range(self.groups.n_groups)] + ["overall"]
        for m in metrics:
            m = canonical_rate(m)
            vals = np.concatenate([self.rate(m), self.overall(m)[:, None]], axis=1)
            T, G1 = vals.shape
            frames.append(
                pd.DataFrame(
                    {
                        "threshold": np.repeat(self.thresholds, G1),
                        "group": np.tile(labels, T),
                        "metric": m,
                        "value": vals.ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def disparity(
        self, metric: str, kind: str = "difference", method: str = "between_groups", reference: Any = None
    ) -> np.ndarray:
        """(T,) group comparison of ``metric`` at every threshold."""
        from labworks.fairness.comparators import compare_cells

        ref = self.groups.code_of(reference) if method == "vs_reference" else None
        return compare_cells(self.cells, metric, kind, method, valid=self.estimable(metric), reference=ref)  # type: ignore[arg-type]


def threshold_sweep(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    thresholds: ArrayLike | int = 101,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
    min_count: int = 1,
) -> ThresholdSweep:
    """Every confusion rate per group at every threshold, in one sort-free pass.

    Args:
        thresholds: an int (evenly spaced over [min, max] score) or explicit thresholds.
    Returns:
        ThresholdSweep with cells (T, G, 4).
    """
    y, s, groups, codes, w = _prep(y_true, scores, sensitive_features, sample_weight, pos_label)
    if isinstance(thresholds, int | np.integer):
        if thresholds < 2:
            raise ValueError(f"thresholds must be ≥ 2 when an int, got {thresholds}")
        th = np.linspace(s.min(), s.max(), int(thresholds))
    else:
        th = np.sort(to_numpy(as_1d(thresholds, "thresholds")).astype(np.float64))
    T, G = len(th), groups.n_groups
    k = np.searchsorted(th, s, side="right")  # number of thresholds ≤ score: positive for j < k
    # histogram by (group, label, k) then reverse cumulative sums over k
    idx = (codes * 2 + y) * (T + 1) + k

    def cells_of(weights: np.ndarray | None) -> np.ndarray:
        h = (
            np.bincount(idx, weights=weights, minlength=G * 2 * (T + 1))
            .reshape(G, 2, T + 1)
            .astype(np.float64)
        )
        above = np.cumsum(h[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]  # rows with k > j, j = 0..T-1
        tot = h.sum(2, keepdims=True)
        tp, fp = above[:, 1, :], above[:, 0, :]
        fn, tn = tot[:, 1] - tp, tot[:, 0] - fp
        return np.stack([tp, fp, tn, fn], axis=-1).transpose(1, 0, 2)  # (T, G, 4)

    return ThresholdSweep(th, cells_of(w), groups, cells_of(None), min_count)


def _roc_one(
    y: np.ndarray, s: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(w * y)[last]
    fps = np.cumsum(w * (1 - y))[last]
    return tps, fps, s[last], tps[-1], fps[-1]


def roc_curve_by_group(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per group (and 'overall'): (fpr, tpr, thresholds), starting at (0, 0); NaN rates if a class is absent."""
    y, s, groups, codes, w = _prep(y_true, scores, sensitive_features, sample_weight, pos_label)
    out = {}
    for g, name in _parts(groups, codes):
        m = codes == g if g >= 0 else np.ones(len(y), bool)
        if not m.any():
            continue
        tps, fps, th, P, N = _roc_one(y[m], s[m], w[m])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = (np.r_[0.0, fps / N], np.r_[0.0, tps / P], np.r_[np.inf, th])
    return out


def pr_curve_by_group(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per group (and 'overall'): (recall, precision, thresholds) in decreasing-threshold order."""
    y, s, groups, codes, w = _prep(y_true, scores, sensitive_features, sample_weight, pos_label)
    out = {}
    for g, name in _parts(groups, codes):
        m = codes == g if g >= 0 else np.ones(len(y), bool)
        if not m.any():
            continue
        tps, fps, th, P, _ = _roc_one(y[m], s[m], w[m])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = (tps / P, tps / (tps + fps), th)
    return out


def _parts(groups: GroupIndex, codes: np.ndarray) -> list[tuple[int, str]]:
    return [(g, groups.label_str(g)) for g in range(groups.n_groups)] + [(-1, "overall")]


def auc_by_group(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
) -> pd.Series:
    """ROC AUC per group and overall (trapezoid = Mann–Whitney with ties counted ½); NaN if a class is absent."""
    curves = roc_curve_by_group(
        y_true,
        scores,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
        pos_label=pos_label,
    )
    vals = {}
    for name, (fpr, tpr, _) in curves.items():
        vals[name] = (
            float(np.trapezoid(tpr, fpr))
            if np.isfinite(fpr).all() and np.isfinite(tpr).all()
            else float("nan")
        )
    return pd.Series(vals, name="auc")


def average_precision_by_group(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
) -> pd.Series:
    """Average precision Σ (R_k − R_{k−1}) P_k per group and overall."""
    curves = pr_curve_by_group(
        y_true,
        scores,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
        pos_label=pos_label,
    )
    return pd.Series(
        {k: float(np.sum(np.diff(np.r_[0.0, r]) * p)) for k, (r, p, _) in curves.items()},
        name="average_precision",
    )


def calibration_by_group(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
) -> tuple[pd.DataFrame, pd.Series]:
    """Reliability table and expected calibration error per group.

    Bins as scikit-learn's ``calibration_curve`` (edges over [0, 1] or score quantiles, right-closed interior
    edges). ECE_g = Σ_b (W_gb / W_g) |frac_positive_gb − mean_score_gb|.

    Returns:
        (reliability: group, bin, lower, upper, n, weight, mean_score, frac_positive; ece: Series per group + overall)
    """
    y, s, groups, codes, w = _prep(y_true, scores, sensitive_features, sample_weight, pos_label)
    if (s < 0).any() or (s > 1).any():
        raise ValueError("scores must be probabilities in [0, 1] for calibration")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(s, np.linspace(0, 100, n_bins + 1))
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    b = np.searchsorted(edges[1:-1], s)
    G = groups.n_groups
    rows, ece = [], {}
    for g, name in _parts(groups, codes):
        m = codes == g if g >= 0 else np.ones(len(y), bool)
        cnt = np.bincount(b[m], minlength=n_bins)
        W = np.bincount(b[m], weights=w[m], minlength=n_bins)
        ss = np.bincount(b[m], weights=w[m] * s[m], minlength=n_bins)
        yy = np.bincount(b[m], weights=w[m] * y[m], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            ms, fp = ss / W, yy / W
        nz = W > 0
        ece[name] = float(np.sum(W[nz] / W.sum() * np.abs(fp[nz] - ms[nz]))) if W.sum() > 0 else float("nan")
        for i in range(n_bins):
            rows.append(
                {
                    "group": name,
                    "bin": i,
                    "lower": edges[i],
                    "upper": edges[i + 1],
                    "n": int(cnt[i]),
                    "weight": W[i],
                    "mean_score": ms[i],
                    "frac_positive": fp[i],
                }
            )
    del G
    return pd.DataFrame(rows), pd.Series(ece, name="ece")


def _auc_weighted(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    if y.min() == y.max():
        return float("nan")
    tps, fps, _, P, N = _roc_one(y, s, w)
    return float(np.trapezoid(np.r_[0.0, tps / P], np.r_[0.0, fps / N]))


def bias_auc_by_group(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
) -> pd.DataFrame:
    """Per group: subgroup AUC, BPSN AUC (background positives vs subgroup negatives) and BNSP AUC (background
    negatives vs subgroup positives) — Borkan et al.'s score-based bias AUCs. Low BPSN: the group's negatives
    score high (false-positive bias); low BNSP: its positives score low (false-negative bias)."""
    y, s, groups, codes, w = _prep(y_true, scores, sensitive_features, sample_weight, pos_label)
    rows = []
    for g in range(groups.n_groups):
        m = codes == g
        if not m.any():
            continue
        bpsn = (~m & (y == 1)) | (m & (y == 0))
        bnsp = (~m & (y == 0)) | (m & (y == 1))
        rows.append(
            {
                "group": groups.label_str(g),
                "n": int(m.sum()),
                "subgroup_auc": _auc_weighted(y[m], s[m], w[m]),
                "bpsn_auc": _auc_weighted(y[bpsn], s[bpsn], w[bpsn]),
                "bnsp_auc": _auc_weighted(y[bnsp], s[bnsp], w[bnsp]),
            }
        )
    return pd.DataFrame(rows).set_index("group")
