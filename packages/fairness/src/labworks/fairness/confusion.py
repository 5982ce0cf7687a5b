"""Per-group confusion cells (TP, FP, TN, FN) by segment sums, and every rate derived from them.

All rates are ratios of sums of cells, so one definition serves point estimates (cells of shape
(G, 4)), the overall value ((4,)), the pooled "rest" of a reference group and bootstrap replicates
((B, G, 4)) alike.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

__all__ = ["CELLS", "RATES", "canonical_rate", "confusion_cells", "rate_from_cells"]

TP, FP, TN, FN = 0, 1, 2, 3
CELLS: Final = ("tp", "fp", "tn", "fn")

# name -> (numerator cells, denominator cells)
RATES: Final[dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "selection_rate": ((TP, FP), (TP, FP, TN, FN)),
    "base_rate": ((TP, FN), (TP, FP, TN, FN)),
    "true_positive_rate": ((TP,), (TP, FN)),
    "false_negative_rate": ((FN,), (TP, FN)),
    "false_positive_rate": ((FP,), (FP, TN)),
    "true_negative_rate": ((TN,), (FP, TN)),
    "positive_predictive_value": ((TP,), (TP, FP)),
    "false_discovery_rate": ((FP,), (TP, FP)),
    "negative_predictive_value": ((TN,), (TN, FN)),
    "false_omission_rate": ((FN,), (TN, FN)),
    "accuracy": ((TP, TN), (TP, FP, TN, FN)),
    "error_rate": ((FP, FN), (TP, FP, TN, FN)),
}

ALIASES: Final = {
    "sr": "selection_rate",
    "selection": "selection_rate",
    "prevalence": "base_rate",
    "tpr": "true_positive_rate",
    "recall": "true_positive_rate",
    "sensitivity": "true_positive_rate",
    "fnr": "false_negative_rate",
    "fpr": "false_positive_rate",
    "tnr": "true_negative_rate",
    "specificity": "true_negative_rate",
    "ppv": "positive_predictive_value",
    "precision": "positive_predictive_value",
    "fdr": "false_discovery_rate",
    "npv": "negative_predictive_value",
    "for": "false_omission_rate",
    "acc": "accuracy",
    "error": "error_rate",
}


def canonical_rate(name: str) -> str:
    """Canonical rate name for a name or alias; ValueError listing the known names."""
    key = name.lower().strip()
    key = ALIASES.get(key, key)
    if key not in RATES:
        raise ValueError(
            f"unknown metric {name!r}; known: {', '.join(RATES)} (aliases: {', '.join(ALIASES)})"
        )
    return key


def confusion_cells(
    codes: np.ndarray | torch.Tensor,
    y_true: np.ndarray | torch.Tensor,
    y_pred: np.ndarray | torch.Tensor,
    n_groups: int,
    sample_weight: np.ndarray | torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted and unweighted confusion cells per group.

    Args:
        codes: (n,) int64 group codes in [0, n_groups).
        y_true, y_pred: (n,) {0, 1} labels.
        sample_weight: (n,) non-negative weights or None.

    Returns:
        (weighted (G, 4) float64, counts (G, 4) int64), cells ordered TP, FP, TN, FN.
    """
    if isinstance(codes, torch.Tensor):
        dev = codes.device
        yt = torch.as_tensor(y_true, device=dev).to(torch.int64)
        yp = torch.as_tensor(y_pred, device=dev).to(torch.int64)
        idx = codes * 4 + (1 - yp) * 2 + (yp ^ yt)
        cnt = torch.bincount(idx, minlength=4 * n_groups)
        if sample_weight is None:
            w = cnt.to(torch.float64)
        else:
            w = torch.bincount(
                idx,
                weights=torch.as_tensor(sample_weight, device=dev).to(torch.float64),
                minlength=4 * n_groups,
            )
        return w.cpu().numpy().reshape(n_groups, 4), cnt.cpu().numpy().reshape(n_groups, 4)
    yt_np = np.asarray(y_true, dtype=np.int64)
    yp_np = np.asarray(y_pred, dtype=np.int64)
    idx_np = np.asarray(codes) * 4 + (1 - yp_np) * 2 + (yp_np ^ yt_np)
    cnt_np = np.bincount(idx_np, minlength=4 * n_groups)
    w_np: np.ndarray
    if sample_weight is None:
        w_np = cnt_np.astype(np.float64)
    else:
        w_np = np.bincount(
            idx_np, weights=np.asarray(sample_weight, dtype=np.float64), minlength=4 * n_groups
        )
    return w_np.reshape(n_groups, 4), cnt_np.reshape(n_groups, 4)


def rate_from_cells(cells: np.ndarray, name: str) -> np.ndarray:
    """Rate ``name`` from cells of shape (..., 4); NaN where the denominator is zero."""
    num_idx, den_idx = RATES[canonical_rate(name)]
    num = cells[..., list(num_idx)].sum(-1)
    den = cells[..., list(den_idx)].sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def parts_from_cells(cells: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) of rate ``name`` from cells (..., 4)."""
    num_idx, den_idx = RATES[canonical_rate(name)]
    return cells[..., list(num_idx)].sum(-1), cells[..., list(den_idx)].sum(-1)
