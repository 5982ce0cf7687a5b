"""Group metrics: one pass of segment sums → every confusion-derived rate per group, with honesty flags.

``group_metrics(y_true, y_pred, sensitive_features=...)`` returns a :class:`GroupMetrics` holding the
per-group weighted and unweighted confusion cells. Every rate, difference, ratio, tidy table,
interval and bootstrap is computed from those cells.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from labworks.fairness._inputs import ArrayLike, as_1d, as_weights, binarize, check_lengths, first_tensor
from labworks.fairness.comparators import check_method, compare_cells
from labworks.fairness.confusion import (
    canonical_rate,
    confusion_cells,
    parts_from_cells,
    rate_from_cells,
)
from labworks.fairness.groups import GroupIndex, encode_groups

__all__ = ["DEFAULT_METRICS", "GroupMetrics", "NotEstimableWarning", "group_metrics"]

DEFAULT_METRICS: tuple[str, ...] = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "positive_predictive_value",
    "accuracy",
)


class NotEstimableWarning(UserWarning):
    """A group's rate has an empty denominator (or too few rows) and was left out of a comparison."""


Agg = Literal["worst_case", "mean"]


@dataclass(frozen=True)
class GroupMetrics:
    """Confusion cells per group and everything derived from them.

    Attributes:
        cells: (G, 4) weighted TP, FP, TN, FN per group.
        counts: (G, 4) unweighted row counts per cell.
        groups: the GroupIndex (labels, names, codes).
        min_count: a rate is estimable in a group only if its denominator has ≥ min_count rows.
    """

    cells: np.ndarray
    counts: np.ndarray
    groups: GroupIndex
    min_count: int = 1
    sample_weight: np.ndarray | None = None
    row_index: np.ndarray | None = None  # (n,) group*4 + cell per row, kept for weighted bootstraps

    # ---------------------------------------------------------------- basic quantities
    @property
    def n_groups(self) -> int:
        return self.cells.shape[0]

    @property
    def n(self) -> np.ndarray:
        """(G,) rows per group (unweighted)."""
        return self.counts.sum(-1)

    @property
    def positives(self) -> np.ndarray:
        """(G,) rows with y_true = 1 per group."""
        return self.counts[:, 0] + self.counts[:, 3]

    @property
    def negatives(self) -> np.ndarray:
        return self.counts[:, 1] + self.counts[:, 2]

    def estimable(self, metric: str) -> np.ndarray:
        """(G,) bool: the rate's denominator has ≥ min_count rows and a positive weight."""
        _, den_w = parts_from_cells(self.cells, metric)
        _, den_n = parts_from_cells(self.counts, metric)
        return (den_n >= max(self.min_count, 1)) & (den_w > 0)

    def by_group(self, metric: str) -> np.ndarray:
        """(G,) rate per group; NaN where not estimable (never a silent 0)."""
        return np.where(self.estimable(metric), rate_from_cells(self.cells, metric), np.nan)

    def smoothed_by_group(self, metric: str, strength: float = 10.0) -> np.ndarray:
        """(G,) rates shrunk towards the overall rate: (num + s·r_overall) / (den + s) — a Beta prior worth
        ``strength`` pseudo-rows centred on the overall rate (empirical Bayes), for small intersectional groups.
        Groups with an empty denominator get the overall rate; flags from :meth:`estimable` still apply."""
        if strength < 0:
            raise ValueError(f"strength must be non-negative, got {strength}")
        num, den = parts_from_cells(self.cells, metric)
        prior = self.overall(metric)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (num + strength * prior) / (den + strength)

    def overall(self, metric: str) -> float:
        return float(rate_from_cells(self.cells.sum(0), metric))

    def frame(self, metrics: Sequence[str] = DEFAULT_METRICS) -> pd.DataFrame:
        """Wide table: one row per group, one column per metric (NaN = not estimable)."""
        data = {canonical_rate(m): self.by_group(m) for m in metrics}
        return pd.DataFrame(data, index=self.groups.pandas_index())

    # ---------------------------------------------------------------- comparisons
    def _reference_code(self, method: str, reference: Any) -> int | None:
        if method != "vs_reference":
            return None
        if reference is None:
            raise ValueError("method='vs_reference' needs reference=<privileged group label>")
        code = self.groups.code_of(reference)
        if self.n[code] == 0:
            raise ValueError(f"reference group {reference!r} has no rows")
        return code

    def _warn_excluded(self, metric: str, valid: np.ndarray) -> None:
        bad = [self.groups.label_str(int(i)) for i in np.flatnonzero(~valid) if self.n[i] > 0]
        empty = int(((~valid) & (self.n == 0)).sum())
        if bad or empty:
            parts = []
            if bad:
                parts.append(f"groups with an empty or too-small denominator: {', '.join(bad[:10])}")
            if empty:
                parts.append(f"{empty} empty intersectional group(s)")
            warnings.warn(
                f"{metric} not estimable for {'; '.join(parts)}; they are excluded from the comparison",
                NotEstimableWarning,
                stacklevel=3,
            )

    def compare(
        self,
        metric: str,
        kind: Literal["difference", "ratio"] = "difference",
        method: str = "between_groups",
        reference: Any = None,
    ) -> float:
        """Difference or ratio of ``metric`` across groups under the named ``method``."""
        metric = canonical_rate(metric)
        check_method(method)
        ref = self._reference_code(method, reference)
        valid = self.estimable(metric)
        if method != "vs_reference":
            self._warn_excluded(metric, valid)
            excluded_rows = bool(((~valid) & (self.n > 0)).any())
            # one estimable group left after excluding others: no comparison is possible (NaN, not 0);
            # a single group in the data compares to itself (0, as fairlearn)
            if valid.sum() == 0 or (method == "between_groups" and valid.sum() < 2 and excluded_rows):
                return float("nan")
        else:
            rest = parts_from_cells(self.counts.sum(0) - self.counts[ref], metric)[1]
            if not valid[ref] or rest < max(self.min_count, 1):
                warnings.warn(
                    f"{metric} not estimable for the reference group or the rest; result is NaN",
                    NotEstimableWarning,
                    stacklevel=2,
                )
                return float("nan")
        return float(compare_cells(self.cells, metric, kind, method, valid=valid, reference=ref))

    def difference(self, metric: str, method: str = "between_groups", reference: Any = None) -> float:
        return self.compare(metric, "difference", method, reference)

    def ratio(self, metric: str, method: str = "between_groups", reference: Any = None) -> float:
        return self.compare(metric, "ratio", method, reference)

    def vs_reference_by_group(self, metric: str, reference: Any, kind: str = "difference") -> np.ndarray:
        """(G,) signed value(g) − value(reference) (or ratio) for every group (Aequitas-style)."""
        ref = self.groups.code_of(reference)
        v = self.by_group(metric)
        with np.errstate(divide="ignore", invalid="ignore"):
            return v - v[ref] if kind == "difference" else v / v[ref]

    def equalized_odds(
        self,
        kind: Literal["difference", "ratio"] = "difference",
        method: str = "between_groups",
        agg: Agg = "worst_case",
        reference: Any = None,
    ) -> float:
        """Equalized odds from the TPR and FPR comparisons.

        between_groups / to_overall: worst_case = max of the two differences (min of ratios), mean = their
        mean (fairlearn). vs_reference: worst_case = max(|ΔTPR|, |ΔFPR|) (AIF360 ``equalized_odds_difference``),
        mean = signed ½(ΔTPR + ΔFPR) (AIF360 ``average_odds_difference``); ratios fold to ≤ 1 for worst_case.
        """
        if agg not in ("worst_case", "mean"):
            raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg!r}")
        t = self.compare("true_positive_rate", kind, method, reference)
        f = self.compare("false_positive_rate", kind, method, reference)
        return _combine_eo(np.array(t), np.array(f), kind, method, agg).item()

    def convention_table(self, metric: str, reference: Any = None) -> pd.DataFrame:
        """The same disparity under every named convention, side by side (what each library would report).

        Rows: fairlearn between_groups / to_overall, AIF360 privileged-vs-pooled-rest (with ``reference``) and the
        Aequitas-style per-group ratio to the reference (min and max over groups, fair iff within [0.8, 1.25]).
        """
        metric = canonical_rate(metric)
        rows = [
            ("fairlearn", "between_groups", "max − min", self.difference(metric), "min / max", self.ratio(metric)),
            ("fairlearn", "to_overall", "max |g − overall|", self.difference(metric, "to_overall"), "min fold(g / overall)", self.ratio(metric, "to_overall")),
        ]  # fmt: skip
        if reference is not None:
            rows.append(("AIF360", "vs_reference", "rest − reference", self.difference(metric, "vs_reference", reference),
                         "rest / reference", self.ratio(metric, "vs_reference", reference)))  # fmt: skip
            per = self.vs_reference_by_group(metric, reference, "ratio")
            diffs = self.vs_reference_by_group(metric, reference, "difference")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rows.append(("Aequitas", "each group vs reference", "largest |g − reference|",
                             float(diffs[np.nanargmax(np.abs(diffs))]) if np.isfinite(diffs).any() else float("nan"),
                             "min g / reference", float(np.nanmin(per)) if np.isfinite(per).any() else float("nan")))  # fmt: skip
                rows.append(("Aequitas", "each group vs reference", "", float("nan"), "max g / reference",
                             float(np.nanmax(per)) if np.isfinite(per).any() else float("nan")))  # fmt: skip
        return pd.DataFrame(
            rows,
            columns=["library", "method", "difference_definition", "difference", "ratio_definition", "ratio"],
        )

    # ---------------------------------------------------------------- tables
    def counts_table(self) -> pd.DataFrame:
        """Per group: n, positives, negatives, weighted n, and the min-count flag."""
        return pd.DataFrame(
            {
                "n": self.n,
                "positives": self.positives,
                "negatives": self.negatives,
                "weight": self.cells.sum(-1),
                "small_group": self.n < max(self.min_count, 1),
            },
            index=self.groups.pandas_index(),
        )

    def table(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        ci: Literal["wilson", "bootstrap"] | None = None,
        confidence: float = 0.95,
        n_boot: int = 1000,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Tidy table: one row per (group, metric) plus an 'overall' row per metric.

        Columns: group, <one per sensitive feature>, metric, value, numerator, denominator, n,
        positives, negatives, n_denominator, estimable [, lower, upper, ci_method].
        """
        rows = []
        labels = self.groups.labels()
        for m in metrics:
            m = canonical_rate(m)
            num, den = parts_from_cells(self.cells, m)
            _, den_n = parts_from_cells(self.counts, m)
            est = self.estimable(m)
            val = self.by_group(m)
            for g in range(self.n_groups):
                lab = labels[g]
                feats = lab if isinstance(lab, tuple) else (lab,)
                row: dict[str, Any] = {"group": self.groups.label_str(g)}
                row.update(dict(zip(self.groups.names, feats, strict=True)))
                row.update(
                    metric=m,
                    value=val[g],
                    numerator=num[g],
                    denominator=den[g],
                    n=int(self.n[g]),
                    positives=int(self.positives[g]),
                    negatives=int(self.negatives[g]),
                    n_denominator=int(den_n[g]),
                    estimable=bool(est[g]),
                )
                rows.append(row)
            tot = self.cells.sum(0)
            tot_n = self.counts.sum(0)
            o_num, o_den = parts_from_cells(tot, m)
            row = {"group": "overall", **dict.fromkeys(self.groups.names, "overall")}
            row.update(
                metric=m,
                value=self.overall(m),
                numerator=float(o_num),
                denominator=float(o_den),
                n=int(tot_n.sum()),
                positives=int(tot_n[0] + tot_n[3]),
                negatives=int(tot_n[1] + tot_n[2]),
                n_denominator=int(parts_from_cells(tot_n, m)[1]),
                estimable=bool(o_den > 0),
            )
            rows.append(row)
        df = pd.DataFrame(rows)
        if ci == "wilson":
            from labworks.fairness.intervals import add_wilson

            df = add_wilson(df, self, confidence)
        elif ci == "bootstrap":
            from labworks.fairness.bootstrap import bootstrap

            boot = bootstrap(self, n_boot=n_boot, seed=seed)
            df = boot.add_to_table(df, confidence)
        elif ci is not None:
            raise ValueError(f"ci must be None, 'wilson' or 'bootstrap', got {ci!r}")
        return df


def _combine_eo(t: np.ndarray, f: np.ndarray, kind: str, method: str, agg: str) -> np.ndarray:
    """Scalarise the TPR and FPR comparisons (arrays broadcast, e.g. bootstrap replicates)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "vs_reference":
            if agg == "mean":
                return (t + f) / 2
            if kind == "difference":
                return np.maximum(np.abs(t), np.abs(f))
            ft, ff = np.where(t > 1, 1 / t, t), np.where(f > 1, 1 / f, f)
            return np.minimum(ft, ff)
        if agg == "mean":
            return (t + f) / 2
        # NaN propagates: an equalized-odds value with one side not estimable is not estimable
        return np.maximum(t, f) if kind == "difference" else np.minimum(t, f)


def group_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    pos_label: Any = 1,
    min_count: int = 1,
) -> GroupMetrics:
    """Confusion cells per (intersectional) group for binary labels and predictions.

    Args:
        y_true: (n,) binary labels (numpy, pandas, pyarrow, list or torch on any device).
        y_pred: (n,) binary predictions.
        sensitive_features: one column or several (DataFrame / 2-D / mapping → cartesian groups).
        sample_weight: (n,) non-negative weights.
        pos_label: the positive label value.
        min_count: minimum rows in a rate's denominator for it to be estimable in a group.

    Returns:
        GroupMetrics.
    """
    yt = as_1d(y_true, "y_true")
    yp = as_1d(y_pred, "y_pred")
    n = check_lengths(y_true=yt, y_pred=yp)
    like = first_tensor(yt, yp)
    yt = binarize(yt, "y_true", pos_label)
    yp = binarize(yp, "y_pred", pos_label)
    device = like.device if like is not None else None
    groups = encode_groups(sensitive_features, n=n, device=device)
    if like is not None:
        yt, yp = torch.as_tensor(yt, device=device), torch.as_tensor(yp, device=device)
    w = as_weights(sample_weight, n, like if like is not None else yt)
    cells, counts = confusion_cells(groups.codes, yt, yp, groups.n_groups, w)
    w_np = row_index = None
    if w is not None:
        w_np = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else w
        row_index = row_cell_index(groups.codes, yt, yp)
    return GroupMetrics(
        cells=cells,
        counts=counts,
        groups=groups,
        min_count=min_count,
        sample_weight=w_np,
        row_index=row_index,
    )


def row_cell_index(codes: Any, y_true: Any, y_pred: Any) -> np.ndarray:
    """(n,) int64 group*4 + cell per row (TP=0, FP=1, TN=2, FN=3), as numpy."""
    c, t, p = (
        x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        for x in (codes, y_true, y_pred)
    )
    t, p = t.astype(np.int64), p.astype(np.int64)
    return c.astype(np.int64) * 4 + (1 - p) * 2 + (p ^ t)
