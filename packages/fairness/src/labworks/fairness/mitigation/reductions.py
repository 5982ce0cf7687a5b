"""Exponentiated-gradient reductions (Agarwal et al. 2018) over any estimator with ``fit(X, y, sample_weight)``.

The constrained problem min err(Q) s.t. |E[h | A=g, E] − E[h | E]| ≤ ε (E = all rows for demographic parity, Y=y
for equalized odds, Y=1 for equal opportunity) is solved as a game: the multipliers λ follow exponentiated
gradient on the constraint violations; the learner best-responds by a cost-sensitive fit, reduced to weighted
classification (label = 1{cost(0) > cost(1)}, weight = |cost(0) − cost(1)|). The result is a randomised
classifier Q over the best responses (plus the two constant classifiers): with scipy installed (extra
``labworks-fairness[reductions]``) its weights solve the small LP min error(Q) s.t. |γ(Q)| ≤ ε on the training
data; without scipy, Q is the uniform average of the iterates (the game's averaged play, slower to converge).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np

from labworks.fairness._inputs import ArrayLike, as_1d, binarize, check_lengths, to_numpy
from labworks.fairness.groups import encode_groups

__all__ = ["ExponentiatedGradient"]

Constraint = Literal["demographic_parity", "equalized_odds", "equal_opportunity"]


class _Const:
    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.value, dtype=np.int64)


class ExponentiatedGradient:
    """Fair classification by reduction to weighted classification.

    Args:
        estimator: any object with ``fit(X, y, sample_weight=...)`` and ``predict(X)`` (copied per iteration).
        constraint: "demographic_parity", "equalized_odds" or "equal_opportunity".
        eps: allowed violation of each constraint.
        max_iter: game rounds; bound: ‖λ‖₁ bound B (default 1/eps); eta0: step size × B.
    """

    def __init__(self, estimator: Any, constraint: Constraint = "demographic_parity", eps: float = 0.01, max_iter: int = 50,
                 bound: float | None = None, eta0: float = 2.0) -> None:  # fmt: skip
        if constraint not in ("demographic_parity", "equalized_odds", "equal_opportunity"):
            raise ValueError(f"unknown constraint {constraint!r}")
        if not hasattr(estimator, "fit") or not hasattr(estimator, "predict"):
            raise ValueError("estimator needs fit(X, y, sample_weight) and predict(X)")
        self.estimator, self.constraint, self.eps, self.max_iter = estimator, constraint, eps, max_iter
        self.bound = bound if bound is not None else 1.0 / eps
        self.eta0 = eta0
        self.predictors_: list[Any] = []
        self.weights_: np.ndarray | None = None
        self.history_: list[dict[str, float]] = []

    def _events(self, y: np.ndarray) -> list[np.ndarray]:
        if self.constraint == "demographic_parity":
            return [np.ones(len(y), bool)]
        if self.constraint == "equal_opportunity":
            return [y == 1]
        return [y == 0, y == 1]

    def fit(self, X: Any, y: ArrayLike, *, sensitive_features: Any) -> ExponentiatedGradient:
        yv = to_numpy(binarize(as_1d(y, "y"), "y")).astype(np.int64)
        n = check_lengths(y=yv, X=X)
        codes = to_numpy(encode_groups(sensitive_features, n=n).codes)
        G = int(codes.max()) + 1
        # signal matrix D (K, n): d gamma_k / d h_i for each constraint k = (event, group)
        rows = []
        for ev in self._events(yv):
            pe = ev.mean()
            for g in range(G):
                sel = ev & (codes == g)
                if sel.sum() == 0:
                    continue
                rows.append(sel / (n * sel.mean()) - ev / (n * pe))
        D = np.asarray(rows)  # (K, n)
        K = len(D)
        theta = np.zeros(2 * K)
        B, eta = self.bound, self.eta0 / self.bound
        base_cost1 = (yv == 0) / n  # error cost of predicting 1
        base_cost0 = (yv == 1) / n
        preds: list[np.ndarray] = []
        self.predictors_ = []
        self.history_ = []
        for t in range(self.max_iter):
            ex = np.exp(theta - theta.max())
            lam = B * ex / (np.exp(-theta.max()) + ex.sum())
            mu = lam[:K] - lam[K:]
            c1 = base_cost1 + mu @ D
            c0 = base_cost0
            label = (c0 > c1).astype(np.int64)
            weight = np.abs(c0 - c1)
            h = self._best_response(X, label, weight * n)
            p = np.asarray(h.predict(X)).astype(np.float64)
            self.predictors_.append(h)
            preds.append(p)
            gamma = D @ p  # constraint values of h_t
            qbar = np.mean(preds, axis=0)
            viol = np.abs(D @ qbar).max()
            err = float(np.mean(qbar * (yv == 0) + (1 - qbar) * (yv == 1)))
            self.history_.append({"iter": t, "error": err, "max_violation": float(viol)})
            theta += eta * np.r_[gamma - self.eps, -gamma - self.eps]
        self.weights_ = np.full(len(self.predictors_), 1.0 / len(self.predictors_))
        self.solver_ = "average"
        self._solve_lp(X, yv, D, preds)
        return self

    def _solve_lp(self, X: Any, yv: np.ndarray, D: np.ndarray, preds: list[np.ndarray]) -> None:
        try:
            from scipy.optimize import linprog
        except ImportError:  # pragma: no cover - scipy is optional
            return
        hyps = [*self.predictors_, _Const(0), _Const(1)]
        P = np.vstack([*preds, np.zeros(len(yv)), np.ones(len(yv))])  # (T+2, n)
        err = (P * (yv == 0) + (1 - P) * (yv == 1)).mean(1)
        Gam = D @ P.T  # (K, T+2)
        res = linprog(
            err,
            A_ub=np.vstack([Gam, -Gam]),
            b_ub=np.full(2 * len(Gam), self.eps),
            A_eq=np.ones((1, len(err))),
            b_eq=[1.0],
            bounds=(0, None),
            method="highs",
        )
        if res.status == 0:
            w = np.clip(res.x, 0, None)
            keep = w > 1e-12
            self.predictors_ = [h for h, k in zip(hyps, keep, strict=True) if k]
            self.weights_ = w[keep] / w[keep].sum()
            self.solver_ = "lp"

    def _best_response(self, X: Any, label: np.ndarray, weight: np.ndarray) -> Any:
        if label.min() == label.max() or weight.sum() <= 0:
            return _Const(int(label[0]))
        est = copy.deepcopy(self.estimator)
        est.fit(X, label, sample_weight=weight)
        return est

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n,) P(ŷ = 1) under the mixture Q."""
        if self.weights_ is None:
            raise RuntimeError("call fit() first")
        return np.sum(
            [
                w * np.asarray(h.predict(X), dtype=np.float64)
                for w, h in zip(self.weights_, self.predictors_, strict=True)
            ],
            axis=0,
        )

    def predict(self, X: Any, random_state: int | None = 0) -> np.ndarray:
        """(n,) sampled predictions from Q (seeded)."""
        p = self.predict_proba(X)
        return (np.random.default_rng(random_state).random(len(p)) < p).astype(np.int64)
