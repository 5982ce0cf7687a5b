"""Vectorised, seeded bootstrap of every group metric from (group × confusion-cell) counts.

A row bootstrap only changes how many times each row is drawn. Rows that share a (group, cell, weight)
"atom" are exchangeable, so the replicate cells are ``R @ M``: R (B × A) are the resample counts of the A
atoms and M (A × 4G) is each atom's one-hot (group, cell) row times its weight. With
``scheme="multinomial"`` R ~ Multinomial(n, m_a / n) — exactly the distribution of fairlearn's
row resampling (``DataFrame.sample(frac=1, replace=True)``); ``scheme="poisson"`` draws R ~ Poisson(m_a),
the Poisson bootstrap. Unweighted data has at most 4G atoms, so B = 1000 replicates of 1M rows cost
microseconds after the one counting pass. Continuous weights make every row an atom: the multinomial scheme
then draws n row indices per replicate and segment-sums their weights (exact, torch on any device), and the
Poisson scheme runs the product in chunks of atoms; neither materialises a B × n matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from labworks.fairness.comparators import compare_cells
from labworks.fairness.confusion import canonical_rate, rate_from_cells
from labworks.fairness.metrics import DEFAULT_METRICS, GroupMetrics, _combine_eo

__all__ = ["BootstrapResult", "bootstrap", "bootstrap_ci"]

Scheme = Literal["multinomial", "poisson"]


@dataclass(frozen=True)
class BootstrapResult:
    """Replicate confusion cells and their percentile intervals.

    Attributes:
        cells: (B, G, 4) replicate weighted cells; ``point`` the original GroupMetrics.
    """

    cells: np.ndarray
    point: GroupMetrics
    scheme: str
    seed: int

    @property
    def n_boot(self) -> int:
        return self.cells.shape[0]

    def _valid(self, metric: str) -> np.ndarray:
        return self.point.estimable(metric)

    def samples(self, metric: str) -> np.ndarray:
        """(B, G) replicate rates (NaN where a replicate's denominator is empty or the group is not estimable)."""
        return np.where(self._valid(metric), rate_from_cells(self.cells, metric), np.nan)

    def interval(self, metric: str, confidence: float = 0.95) -> np.ndarray:
        """(G + 1, 2) percentile interval per group, overall last."""
        s = np.concatenate(
            [self.samples(metric), rate_from_cells(self.cells.sum(1), metric)[:, None]], axis=1
        )
        return _quantiles(s, confidence).T

    def comparison_samples(
        self, metric: str, kind: str = "difference", method: str = "between_groups", reference: Any = None
    ) -> np.ndarray:
        ref = self.point.groups.code_of(reference) if method == "vs_reference" else None
        return compare_cells(self.cells, metric, kind, method, valid=self._valid(metric), reference=ref)  # type: ignore[arg-type]

    def comparison_interval(
        self,
        metric: str,
        kind: str = "difference",
        method: str = "between_groups",
        reference: Any = None,
        confidence: float = 0.95,
    ) -> tuple[float, float]:
        lo, hi = _quantiles(self.comparison_samples(metric, kind, method, reference), confidence)
        return float(lo), float(hi)

    def equalized_odds_interval(
        self,
        kind: str = "difference",
        method: str = "between_groups",
        agg: str = "worst_case",
        reference: Any = None,
        confidence: float = 0.95,
    ) -> tuple[float, float]:
        """Percentile interval of the equalized-odds scalar (max of two maxima included)."""
        t = self.comparison_samples("true_positive_rate", kind, method, reference)
        f = self.comparison_samples("false_positive_rate", kind, method, reference)
        lo, hi = _quantiles(_combine_eo(t, f, kind, method, agg), confidence)
        return float(lo), float(hi)

    def add_to_table(self, df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
        df = df.copy()
        df["lower"], df["upper"] = np.nan, np.nan
        for m in df["metric"].unique():
            iv = self.interval(m, confidence)
            rows = df.index[df["metric"].to_numpy() == m]
            df.loc[rows, "lower"], df.loc[rows, "upper"] = iv[:, 0], iv[:, 1]
        df["ci_method"] = f"bootstrap-{self.scheme}(B={self.n_boot}, seed={self.seed})"
        df["confidence"] = confidence
        return df

    def disparity_table(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        methods: Sequence[str] = ("between_groups", "to_overall"),
        reference: Any = None,
        confidence: float = 0.95,
    ) -> pd.DataFrame:
        """Tidy table of differences and ratios (and equalized odds) with bootstrap intervals."""
        rows = []
        meths = list(methods) + (
            ["vs_reference"] if reference is not None and "vs_reference" not in methods else []
        )
        for method in meths:
            ref = reference if method == "vs_reference" else None
            for kind in ("difference", "ratio"):
                for m in metrics:
                    m = canonical_rate(m)
                    est = self.point.compare(m, kind, method, ref)
                    lo, hi = self.comparison_interval(m, kind, method, ref, confidence)
                    rows.append(
                        {"measure": m, "kind": kind, "method": method, "value": est, "lower": lo, "upper": hi}
                    )
                for agg in ("worst_case", "mean"):
                    est = self.point.equalized_odds(kind, method, agg, ref)
                    lo, hi = self.equalized_odds_interval(kind, method, agg, ref, confidence)
                    rows.append(
                        {
                            "measure": f"equalized_odds_{agg}",
                            "kind": kind,
                            "method": method,
                            "value": est,
                            "lower": lo,
                            "upper": hi,
                        }
                    )
        df = pd.DataFrame(rows)
        df["reference"] = "" if reference is None else str(reference)
        df["confidence"] = confidence
        return df


def _quantiles(s: np.ndarray, confidence: float) -> np.ndarray:
    a = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanquantile(s, [a, 1 - a], axis=0)


def _atoms(gm: GroupMetrics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell index k_a, weight w_a, multiplicity m_a) of the exchangeable atoms."""
    G4 = 4 * gm.n_groups
    if gm.sample_weight is None or gm.row_index is None:
        m = gm.counts.reshape(-1).astype(np.int64)
        k = np.arange(G4)
        keep = m > 0
        return k[keep], np.ones(int(keep.sum())), m[keep]
    if len(np.unique(gm.sample_weight)) > 4096:  # continuous weights: every row is its own atom
        return gm.row_index, gm.sample_weight, np.ones(len(gm.row_index), dtype=np.int64)
    key = pd.DataFrame({"k": gm.row_index, "w": gm.sample_weight})
    grouped = key.groupby(["k", "w"], sort=True).size()
    k = grouped.index.get_level_values(0).to_numpy().astype(np.int64)
    w = grouped.index.get_level_values(1).to_numpy().astype(np.float64)
    return k, w, grouped.to_numpy().astype(np.int64)


def bootstrap(
    gm: GroupMetrics,
    n_boot: int = 1000,
    seed: int = 0,
    scheme: Scheme = "multinomial",
    stratify: bool = False,
    device: str | torch.device | None = None,
    chunk_atoms: int = 65_536,
    max_matrix: int = 20_000_000,
) -> BootstrapResult:
    """Bootstrap replicate cells (B, G, 4) for a GroupMetrics.

    Args:
        n_boot: replicates B.
        seed: seeds numpy's PCG64 (and torch's generator on the many-atoms paths).
        scheme: "multinomial" (row resampling, as fairlearn) or "poisson".
        stratify: resample within each group (group sizes fixed), for tiny groups.
        device: torch device for the many-atoms paths (continuous weights).
        max_matrix: largest B × atoms resample-count matrix drawn in one piece (numpy); above it the
            many-atoms paths run (index counts per replicate, or chunked Poisson matmul).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be ≥ 1, got {n_boot}")
    if scheme not in ("multinomial", "poisson"):
        raise ValueError(f"scheme must be 'multinomial' or 'poisson', got {scheme!r}")
    if stratify and scheme != "multinomial":
        raise ValueError("stratify=True is only available with scheme='multinomial'")
    k, w, m = _atoms(gm)
    G4 = 4 * gm.n_groups
    rng = np.random.default_rng(seed)
    A = len(k)
    if A * n_boot <= max_matrix:
        R = _resample_counts(rng, m, k // 4 if stratify else None, n_boot, scheme)  # (B, A)
        M = np.zeros((A, G4))
        M[np.arange(A), k] = w
        cells = R @ M
    elif scheme == "multinomial":
        cells = _gather(k, w, m, n_boot, seed, stratify, G4, device)
    else:
        cells = _chunked(k, w, m, n_boot, seed, G4, device, chunk_atoms)
    return BootstrapResult(cells=cells.reshape(n_boot, gm.n_groups, 4), point=gm, scheme=scheme, seed=seed)


def _resample_counts(
    rng: np.random.Generator, m: np.ndarray, strata: np.ndarray | None, B: int, scheme: str
) -> np.ndarray:
    if scheme == "poisson":
        return rng.poisson(m.astype(np.float64), size=(B, len(m))).astype(np.float64)
    if strata is None:
        n = int(m.sum())
        return rng.multinomial(n, m / n, size=B).astype(np.float64)
    R = np.zeros((B, len(m)))
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        ns = int(m[idx].sum())
        R[:, idx] = rng.multinomial(ns, m[idx] / ns, size=B)
    return R


def _gather(
    k: np.ndarray, w: np.ndarray, m: np.ndarray, B: int, seed: int, stratify: bool, G4: int, device: Any
) -> np.ndarray:
    """Exact multinomial row resampling when atoms are many. Per replicate: draw n row indices (within each
    group when stratified), count how often each row was drawn (c = bincount(idx)), and take the product of
    those counts with the weighted one-hot (group, cell) rows as a segment sum, bincount(k, weights=w·c).
    numpy on the CPU, torch on ``device``."""
    k_rows, w_rows = np.repeat(k, m), np.repeat(w, m)
    if stratify:
        order = np.argsort(k_rows // 4, kind="stable")
        k_rows, w_rows = k_rows[order], w_rows[order]
    n = len(k_rows)
    grp = k_rows // 4
    sizes = np.bincount(grp, minlength=G4 // 4)
    starts, row_sizes = (np.cumsum(sizes) - sizes)[grp], sizes[grp]
    cells = np.empty((B, G4))
    if device is None:  # numpy; an explicit device (also "cpu") takes the torch path below
        rng = np.random.default_rng(seed)
        for b in range(B):
            idx = (
                starts + np.minimum((rng.random(n) * row_sizes).astype(np.int64), row_sizes - 1)
                if stratify
                else rng.integers(0, n, n)
            )
            c = np.bincount(idx, minlength=n)
            cells[b] = np.bincount(k_rows, weights=w_rows * c, minlength=G4)
        return cells
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    kt, wt = torch.as_tensor(k_rows, device=dev), torch.as_tensor(w_rows, device=dev, dtype=torch.float64)
    st, sz = torch.as_tensor(starts, device=dev), torch.as_tensor(row_sizes, device=dev)
    out = torch.empty(B, G4, dtype=torch.float64, device=dev)
    for b in range(B):
        if stratify:
            u = torch.rand(n, generator=gen, device=dev, dtype=torch.float64)
            tidx = st + torch.minimum((u * sz).long(), sz - 1)
        else:
            tidx = torch.randint(0, n, (n,), generator=gen, device=dev)
        tc = torch.bincount(tidx, minlength=n).to(torch.float64)
        out[b] = torch.bincount(kt, weights=wt * tc, minlength=G4)
    return out.cpu().numpy()


def _chunked(
    k: np.ndarray, w: np.ndarray, m: np.ndarray, B: int, seed: int, G4: int, device: Any, chunk: int
) -> np.ndarray:
    """Poisson bootstrap with many atoms: Poisson(m_a) counts per chunk of atoms, accumulated by one matmul
    each with the chunk's weighted one-hot (group, cell) rows; the B × n count matrix is never materialised."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator(device=dev).manual_seed(seed)
    kt = torch.as_tensor(k, device=dev)
    wt = torch.as_tensor(w, device=dev, dtype=torch.float64)
    mt = torch.as_tensor(m, device=dev, dtype=torch.float64)
    cells = torch.zeros(B, G4, dtype=torch.float64, device=dev)
    for s in range(0, len(k), chunk):
        sl = slice(s, s + chunk)
        R = torch.poisson(mt[sl].expand(B, -1), generator=gen)  # (B, chunk)
        onehot = torch.zeros(R.shape[1], G4, dtype=torch.float64, device=dev)
        onehot[torch.arange(R.shape[1], device=dev), kt[sl]] = wt[sl]
        cells += R @ onehot
    return cells.cpu().numpy()


def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    sample_weight: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
    scheme: Scheme = "multinomial",
    stratify: bool = False,
    pos_label: Any = 1,
    min_count: int = 1,
) -> BootstrapResult:
    """One-call bootstrap: group the data, then :func:`bootstrap`."""
    from labworks.fairness.metrics import group_metrics

    gm = group_metrics(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        sample_weight=sample_weight,
        pos_label=pos_label,
        min_count=min_count,
    )
    return bootstrap(gm, n_boot=n_boot, seed=seed, scheme=scheme, stratify=stratify)


def bootstrap_statistic(
    statistic: Any,
    n: int,
    *,
    n_boot: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap of any statistic of the rows (AUC by group, ECE, regression losses, …).

    ``statistic(rows)`` receives an int index array (the resampled rows) and returns a float or an array.
    Unlike :func:`bootstrap` this resamples rows in a loop (cost B × statistic), for statistics that are
    not functions of the confusion cells.

    Returns:
        (estimate, lower, upper), each shaped like the statistic; replicates giving NaN are skipped.
    """
    if n_boot < 1 or n < 1:
        raise ValueError(f"n_boot and n must be ≥ 1, got n_boot={n_boot}, n={n}")
    rng = np.random.default_rng(seed)
    est = np.asarray(statistic(np.arange(n)), dtype=np.float64)
    reps = np.stack(
        [np.asarray(statistic(rng.integers(0, n, size=n)), dtype=np.float64) for _ in range(n_boot)]
    )
    lo, hi = _quantiles(reps, confidence)
    return est, lo, hi


__all__ += ["bootstrap_statistic"]
