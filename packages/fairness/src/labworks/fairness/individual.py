"""Individual fairness: generalized entropy index (Theil, ½CV²) and k-NN consistency."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from labworks.fairness._inputs import ArrayLike, as_1d, as_weights, check_lengths, to_numpy

__all__ = ["coefficient_of_variation", "consistency_score", "generalized_entropy_index", "theil_index"]


def generalized_entropy_index(
    b: ArrayLike,
    alpha: float = 2,
    *,
    sample_weight: ArrayLike | None = None,
    convention: Literal["textbook", "aif360"] = "textbook",
) -> float:
    """GE(α) of a non-negative benefit vector b (n,).

    α ∉ {0, 1}: mean((b/μ)^α − 1) / (α(α−1)); α = 1 (Theil): mean((b/μ) ln(b/μ)) with 0·ln 0 = 0;
    α = 0: −mean(ln(b/μ)) (textbook) or −mean(ln(b/μ)/μ) (``convention="aif360"``, as AIF360's code).
    Sample weights turn every mean into a weighted mean.
    """
    arr = to_numpy(as_1d(b, "b")).astype(np.float64)
    n = check_lengths(b=arr)
    if np.isnan(arr).any() or (arr < 0).any():
        raise ValueError("b must be non-negative without NaN")
    w = as_weights(sample_weight, n, arr)
    w = np.full(n, 1.0 / n) if w is None else to_numpy(w) / to_numpy(w).sum()
    mu = float(np.dot(w, arr))
    if mu <= 0:
        raise ValueError("the mean benefit must be positive")
    r = arr / mu
    if alpha == 0:
        with np.errstate(divide="ignore"):
            terms = -np.log(r)
        if convention == "aif360":
            terms = terms / mu
        return float(np.dot(w, terms))
    if alpha == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(r > 0, r * np.log(np.where(r > 0, r, 1.0)), 0.0)
        return float(np.dot(w, terms))
    return float(np.dot(w, r**alpha - 1.0) / (alpha * (alpha - 1)))


def theil_index(b: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float:
    """GE(1)."""
    return generalized_entropy_index(b, 1, sample_weight=sample_weight)


def coefficient_of_variation(b: ArrayLike) -> float:
    """sqrt(2·GE(2))."""
    return float(np.sqrt(2 * generalized_entropy_index(b, 2)))


def consistency_score(X: Any, y: ArrayLike, n_neighbors: int = 5, *, batch_size: int = 4096) -> float:
    """1 − mean_i |ŷ_i − mean_{j ∈ kNN(x_i)} ŷ_j| with Euclidean k-NN including the point itself.

    Args:
        X: (n, d) features; y: (n,) predictions. k-NN by exact torch ``cdist`` in row batches.
    """
    Xt = (
        X.to(torch.float64)
        if isinstance(X, torch.Tensor)
        else torch.tensor(np.asarray(X), dtype=torch.float64)
    )
    if Xt.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {tuple(Xt.shape)}")
    yt = torch.tensor(np.array(to_numpy(as_1d(y, "y")), dtype=np.float64), device=Xt.device)
    check_lengths(X=Xt, y=yt)
    if not 1 <= n_neighbors <= len(Xt):
        raise ValueError(f"n_neighbors must be in [1, n], got {n_neighbors}")
    total = 0.0
    for s in range(0, len(Xt), batch_size):
        d = torch.cdist(Xt[s : s + batch_size], Xt)
        idx = torch.topk(d, n_neighbors, dim=1, largest=False).indices
        total += float((yt[s : s + batch_size] - yt[idx].mean(1)).abs().sum())
    return 1.0 - total / len(Xt)
