"""Analytic intervals: Wilson score interval for a rate, Newcombe's hybrid score interval for a difference.

With sample weights the Kish effective sample size n_eff = (Σw)² / Σw² of the rate's denominator rows
replaces n (a standard design-effect approximation, stated in the table's ``ci_method``).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from labworks.fairness.confusion import canonical_rate, parts_from_cells

if TYPE_CHECKING:
    from labworks.fairness.metrics import GroupMetrics

__all__ = ["add_wilson", "newcombe_interval", "wilson_interval"]


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for successes / n (arrays broadcast); NaN where n = 0."""
    z = _z(confidence)
    x, nn = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / nn
        denom = 1 + z * z / nn
        center = (p + z * z / (2 * nn)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn))
        lo, hi = np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)
        lo, hi = np.where(x <= 0, 0.0, np.minimum(lo, p)), np.where(x >= nn, 1.0, np.maximum(hi, p))
    bad = ~(nn > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def newcombe_interval(
    x1: np.ndarray | float,
    n1: np.ndarray | float,
    x2: np.ndarray | float,
    n2: np.ndarray | float,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe (1998, method 10) interval for p1 − p2 from the two Wilson intervals."""
    p1, p2 = np.asarray(x1, float) / np.asarray(n1, float), np.asarray(x2, float) / np.asarray(n2, float)
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def effective_n(gm: GroupMetrics, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(G,) numerator "successes" and n (or Kish n_eff when weighted) of rate ``metric`` per group, and overall
    as the last entry."""
    metric = canonical_rate(metric)
    num, den = parts_from_cells(gm.cells, metric)
    tot_num, tot_den = parts_from_cells(gm.cells.sum(0), metric)
    num, den = np.append(num, tot_num), np.append(den, tot_den)
    if gm.sample_weight is None or gm.row_index is None:
        return num, den
    w2 = np.bincount(gm.row_index, weights=gm.sample_weight**2, minlength=4 * gm.n_groups).reshape(-1, 4)
    _, den2 = parts_from_cells(w2, metric)
    den2 = np.append(den2, den2.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = den**2 / den2
        rate = num / den
    return rate * n_eff, n_eff


def add_wilson(df: pd.DataFrame, gm: GroupMetrics, confidence: float = 0.95) -> pd.DataFrame:
    """Add Wilson ``lower``/``upper`` columns to a tidy table from :meth:`GroupMetrics.table`."""
    df = df.copy()
    df["lower"], df["upper"] = np.nan, np.nan
    for m in df["metric"].unique():
        x, n = effective_n(gm, m)
        lo, hi = wilson_interval(x, n, confidence)
        est = np.append(gm.estimable(m), True)
        rows = np.flatnonzero(df["metric"].to_numpy() == m)
        df.loc[df.index[rows], "lower"] = np.where(est, lo, np.nan)
        df.loc[df.index[rows], "upper"] = np.where(est, hi, np.nan)
    df["ci_method"] = "wilson" + ("-kish" if gm.sample_weight is not None else "")
    df["confidence"] = confidence
    return df


def difference_interval(
    gm: GroupMetrics, metric: str, group: object, reference: object, confidence: float = 0.95
) -> tuple[float, float, float]:
    """value(group) − value(reference) with its Newcombe interval: (estimate, lower, upper)."""
    x, n = effective_n(gm, metric)
    a, b = gm.groups.code_of(group), gm.groups.code_of(reference)
    lo, hi = newcombe_interval(x[a], n[a], x[b], n[b], confidence)
    est = gm.by_group(metric)
    return float(est[a] - est[b]), float(lo), float(hi)
