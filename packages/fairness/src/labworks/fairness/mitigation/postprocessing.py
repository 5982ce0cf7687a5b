"""Group-specific (randomised) thresholds: demographic parity, equal opportunity and equalized odds post-processing.

For each group the operating points of "predict 1 if score ≥ t" trace a curve of (FP, TP) counts; mixing two
thresholds at random reaches any point on the segment between them (Hardt, Price & Srebro 2016). Demographic
parity / equal opportunity pick one common selection rate / TPR and reach it in every group by mixing the two
neighbouring thresholds. Equalized odds picks one common (FPR, TPR) under every group's ROC convex hull and
reaches it by mixing two hull vertices and, below the hull, the random classifier. The common target is chosen
to maximise expected accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from labworks.fairness._inputs import ArrayLike, as_1d, binarize, check_lengths, to_numpy
from labworks.fairness.groups import GroupIndex, encode_groups

__all__ = ["CalibratedEqualizedOdds", "GroupPolicy", "ThresholdOptimizer"]

Constraint = Literal["demographic_parity", "equal_opportunity", "equalized_odds"]


@dataclass(frozen=True)
class GroupPolicy:
    """P(ŷ=1 | s) = β·(1{s ≥ t_hi} + p_mid·1{t_lo ≤ s < t_hi}) + (1 − β)·q."""

    t_hi: float
    t_lo: float
    p_mid: float
    beta: float = 1.0
    q: float = 0.0

    def proba(self, s: np.ndarray) -> np.ndarray:
        hard = (s >= self.t_hi).astype(np.float64) + self.p_mid * ((s >= self.t_lo) & (s < self.t_hi))
        return self.beta * hard + (1 - self.beta) * self.q


def _curve(
    y: np.ndarray, s: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Threshold curve: thresholds (+inf first), cumulative TP and FP (weighted), totals P and N."""
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.r_[0.0, np.cumsum(w * y)[last]]
    fp = np.r_[0.0, np.cumsum(w * (1 - y))[last]]
    th = np.r_[np.inf, s[last]]
    return th, tp, fp, float(tp[-1]), float(fp[-1])


def _hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the upper concave hull of points sorted by x (monotone chain)."""
    idx: list[int] = []
    for i in range(len(x)):
        while len(idx) >= 2:
            a, b = idx[-2], idx[-1]
            if (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a]) >= 0:
                idx.pop()
            else:
                break
        idx.append(i)
    return np.array(idx)


def _mix(param: np.ndarray, th: np.ndarray, target: float) -> GroupPolicy:
    """Policy reaching ``target`` of a non-decreasing ``param`` along thresholds ``th`` (by mixing neighbours)."""
    k = int(np.searchsorted(param, target, side="left"))
    if k == 0:
        return GroupPolicy(th[0], th[0], 0.0)
    if k >= len(param):
        return GroupPolicy(th[-1], th[-1], 0.0)
    lo, hi = param[k - 1], param[k]
    gamma = 0.0 if hi == lo else (target - lo) / (hi - lo)
    # between point k-1 (threshold th[k-1]) and point k (th[k]): rows with th[k] ≤ s < th[k-1] get prob gamma
    return GroupPolicy(th[k - 1], th[k], float(gamma))


class ThresholdOptimizer:
    """Post-process scores with group-specific randomised thresholds.

    Args:
        constraint: "demographic_parity", "equal_opportunity" or "equalized_odds".
        grid_size: candidate common targets (plus every group's own operating points for DP/EOpp).
    """

    def __init__(self, constraint: Constraint = "equalized_odds", grid_size: int = 1001) -> None:
        if constraint not in ("demographic_parity", "equal_opportunity", "equalized_odds"):
            raise ValueError(f"unknown constraint {constraint!r}")
        self.constraint, self.grid_size = constraint, grid_size
        self.policies_: dict[int, GroupPolicy] = {}
        self.groups_: GroupIndex | None = None
        self.target_: Any = None

    def fit(
        self,
        y_true: ArrayLike,
        scores: ArrayLike,
        *,
        sensitive_features: Any,
        sample_weight: ArrayLike | None = None,
    ) -> ThresholdOptimizer:
        yt = as_1d(y_true, "y_true")
        s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
        n = check_lengths(y_true=yt, scores=s)
        y = to_numpy(binarize(yt, "y_true")).astype(np.float64)
        w = (
            np.ones(n)
            if sample_weight is None
            else to_numpy(as_1d(sample_weight, "sample_weight")).astype(np.float64)
        )
        groups = encode_groups(sensitive_features, n=n)
        codes = to_numpy(groups.codes)
        present = [g for g in range(groups.n_groups) if (codes == g).any()]
        curves = {g: _curve(y[codes == g], s[codes == g], w[codes == g]) for g in present}
        for g, (_, _, _, P, N) in curves.items():
            if self.constraint != "demographic_parity" and (P == 0 or N == 0):
                raise ValueError(
                    f"group {groups.label_str(g)!r} has no {'positives' if P == 0 else 'negatives'}; {self.constraint} is not estimable"
                )
        total = w.sum()
        if self.constraint == "equalized_odds":
            self._fit_eo(curves, total)
        else:
            self._fit_rate(curves, total)
        self.groups_ = groups
        return self

    def _fit_rate(self, curves: dict[int, tuple], total: float) -> None:
        dp = self.constraint == "demographic_parity"
        params = {}
        for g, (_, tp, fp, P, N) in curves.items():
            params[g] = (tp + fp) / (P + N) if dp else tp / P
        grid = np.unique(np.r_[np.linspace(0, 1, self.grid_size), *params.values()])
        acc = np.zeros_like(grid)
        for g, (_, tp, fp, _, N) in curves.items():
            tp_t = np.interp(grid, params[g], tp)
            fp_t = np.interp(grid, params[g], fp)
            acc += tp_t + (N - fp_t)
        best = float(grid[int(np.argmax(acc))])
        self.target_ = best
        self.policies_ = {g: _mix(params[g], curves[g][0], best) for g in curves}
        self.accuracy_ = float(acc.max() / total)

    def _fit_eo(self, curves: dict[int, tuple], total: float) -> None:
        hulls = {}
        for g, (th, tp, fp, P, N) in curves.items():
            fx, ty = fp / N, tp / P
            h = _hull(fx, ty)
            hulls[g] = (fx[h], ty[h], th[h])
        grid = np.unique(np.r_[np.linspace(0, 1, self.grid_size), *[v[0] for v in hulls.values()]])
        tmin = np.min([np.interp(grid, hx, hy) for hx, hy, _ in hulls.values()], axis=0)
        acc = np.zeros_like(grid)
        for _, _, _, P, N in curves.values():
            acc += P * tmin + N * (1 - grid)
        k = int(np.argmax(acc))
        x, t = float(grid[k]), float(tmin[k])
        self.target_ = (x, t)
        self.accuracy_ = float(acc[k] / total)
        pol = {}
        for g, (hx, hy, hth) in hulls.items():
            hmix = _mix(hx, hth, x)
            h_at = float(np.interp(x, hx, hy))
            beta = 1.0 if h_at - x <= 1e-15 else (t - x) / (h_at - x)
            pol[g] = GroupPolicy(hmix.t_hi, hmix.t_lo, hmix.p_mid, float(np.clip(beta, 0, 1)), x)
        self.policies_ = pol

    def predict_proba(self, scores: ArrayLike, *, sensitive_features: Any) -> np.ndarray:
        """(n,) P(ŷ = 1) under the fitted randomised policy."""
        if self.groups_ is None:
            raise RuntimeError("call fit() first")
        s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
        groups = encode_groups(sensitive_features, n=len(s))
        if groups.levels != self.groups_.levels:
            raise ValueError("sensitive feature levels differ from those seen at fit time")
        codes = to_numpy(groups.codes)
        out = np.empty(len(s))
        for g in np.unique(codes):
            if int(g) not in self.policies_:
                raise ValueError(f"group {groups.label_str(int(g))!r} was not seen at fit time")
            m = codes == g
            out[m] = self.policies_[int(g)].proba(s[m])
        return out

    def predict(
        self, scores: ArrayLike, *, sensitive_features: Any, random_state: int | None = 0
    ) -> np.ndarray:
        """(n,) sampled {0, 1} predictions (seeded)."""
        p = self.predict_proba(scores, sensitive_features=sensitive_features)
        return (np.random.default_rng(random_state).random(len(p)) < p).astype(np.int64)


class CalibratedEqualizedOdds:
    """Calibrated equalized odds (Pleiss et al. 2017; AIF360's ``CalibratedEqOddsPostprocessing``), any number of groups.

    Each group's calibrated score h is mixed with its trivial calibrated predictor (the group base rate μ_g) at
    rate α_g so that every group's generalized cost — generalized FNR E[1 − h | y=1], generalized FPR
    E[h | y=0], or their base-rate-weighted sum — rises to the largest group cost. Calibration within groups is
    kept; only the chosen cost is equalised.

    Args:
        cost_constraint: "fnr", "fpr" or "weighted".
        fp_weight, fn_weight: weights of the "weighted" cost (normalised to sum 1, as AIF360).
    """

    def __init__(self, cost_constraint: Literal["fnr", "fpr", "weighted"] = "weighted", fp_weight: float = 1.0, fn_weight: float = 1.0) -> None:  # fmt: skip
        if cost_constraint not in ("fnr", "fpr", "weighted"):
            raise ValueError(f"cost_constraint must be 'fnr', 'fpr' or 'weighted', got {cost_constraint!r}")
        self.cost_constraint, self.fp_weight, self.fn_weight = cost_constraint, fp_weight, fn_weight
        self.mix_rates_: dict[int, float] = {}
        self.base_rates_: dict[int, float] = {}
        self.groups_: GroupIndex | None = None

    def _cost(self, y: np.ndarray, h: np.ndarray, w: np.ndarray) -> float:
        base = np.dot(w, y) / w.sum()
        gfpr = np.dot(w * (1 - y), h) / np.dot(w, 1 - y)
        gfnr = np.dot(w * y, 1 - h) / np.dot(w, y)
        if self.cost_constraint == "fpr":
            return float(gfpr)
        if self.cost_constraint == "fnr":
            return float(gfnr)
        fp, fn = self.fp_weight, self.fn_weight
        norm = fp + fn if fp != 0 and fn != 0 else 1.0
        return float(fp / norm * gfpr * (1 - base) + fn / norm * gfnr * base)

    def fit(
        self,
        y_true: ArrayLike,
        scores: ArrayLike,
        *,
        sensitive_features: Any,
        sample_weight: ArrayLike | None = None,
    ) -> CalibratedEqualizedOdds:
        yt = as_1d(y_true, "y_true")
        s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
        n = check_lengths(y_true=yt, scores=s)
        if np.isnan(s).any() or (s < 0).any() or (s > 1).any():
            raise ValueError("scores must be calibrated probabilities in [0, 1]")
        y = to_numpy(binarize(yt, "y_true")).astype(np.float64)
        w = (
            np.ones(n)
            if sample_weight is None
            else to_numpy(as_1d(sample_weight, "sample_weight")).astype(np.float64)
        )
        groups = encode_groups(sensitive_features, n=n)
        codes = to_numpy(groups.codes)
        costs, trivial = {}, {}
        for g in range(groups.n_groups):
            m = codes == g
            if not m.any():
                continue
            if y[m].min() == y[m].max():
                raise ValueError(
                    f"group {groups.label_str(g)!r} has only one class; generalized rates are not estimable"
                )
            mu = float(np.dot(w[m], y[m]) / w[m].sum())
            self.base_rates_[g] = mu
            costs[g] = self._cost(y[m], s[m], w[m])
            trivial[g] = self._cost(y[m], np.full(int(m.sum()), mu), w[m])
        target = max(costs.values())
        self.mix_rates_ = {
            g: 0.0 if costs[g] == target else (target - costs[g]) / (trivial[g] - costs[g]) for g in costs
        }
        bad = [groups.label_str(g) for g, a in self.mix_rates_.items() if not 0 <= a <= 1]
        if bad:
            raise ValueError(
                f"cannot equalise the cost for groups {bad}: their trivial predictor costs less than the target"
            )
        self.costs_, self.target_cost_ = costs, target
        self.groups_ = groups
        return self

    def _codes(self, n: int, sensitive_features: Any) -> np.ndarray:
        if self.groups_ is None:
            raise RuntimeError("call fit() first")
        groups = encode_groups(sensitive_features, n=n)
        if groups.levels != self.groups_.levels:
            raise ValueError("sensitive feature levels differ from those seen at fit time")
        codes = to_numpy(groups.codes)
        unseen = set(np.unique(codes).tolist()) - set(self.mix_rates_)
        if unseen:
            raise ValueError(f"groups not seen at fit time: {[groups.label_str(int(g)) for g in unseen]}")
        return codes

    def expected_scores(self, scores: ArrayLike, *, sensitive_features: Any) -> np.ndarray:
        """(n,) E[adjusted score] = (1 − α_g)·h + α_g·μ_g."""
        s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
        codes = self._codes(len(s), sensitive_features)
        a = np.array([self.mix_rates_.get(int(g), 0.0) for g in range(int(codes.max()) + 1)])[codes]
        mu = np.array([self.base_rates_.get(int(g), 0.0) for g in range(int(codes.max()) + 1)])[codes]
        return (1 - a) * s + a * mu

    def predict_scores(
        self, scores: ArrayLike, *, sensitive_features: Any, random_state: int | None = 0
    ) -> np.ndarray:
        """(n,) adjusted scores: each row's score is replaced by its group base rate with probability α_g (seeded)."""
        s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
        codes = self._codes(len(s), sensitive_features)
        a = np.array([self.mix_rates_.get(int(g), 0.0) for g in range(int(codes.max()) + 1)])[codes]
        mu = np.array([self.base_rates_.get(int(g), 0.0) for g in range(int(codes.max()) + 1)])[codes]
        swap = np.random.default_rng(random_state).random(len(s)) < a
        return np.where(swap, mu, s)

    def predict(
        self,
        scores: ArrayLike,
        *,
        sensitive_features: Any,
        threshold: float = 0.5,
        random_state: int | None = 0,
    ) -> np.ndarray:
        """(n,) labels = adjusted score ≥ threshold."""
        return (
            self.predict_scores(scores, sensitive_features=sensitive_features, random_state=random_state)
            >= threshold
        ).astype(np.int64)
