"""Differentiable torch surrogates of DP / EO / EOpp / PP built on the evaluation definitions.

Soft predictions σ(s/τ) replace the hard ŷ in the very same (group × TP/FP/TN/FN) cells and the very same
rate registry (:data:`labworks.fairness.confusion.RATES`) and comparators as the metrics, so the penalty a
model trains against is the metric it is evaluated on, relaxed. As τ → 0 the soft rates equal the hard ones.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from labworks.fairness.confusion import RATES, canonical_rate

__all__ = [
    "FairnessPenalty",
    "LagrangianFairness",
    "soft_cells",
    "soft_disparity",
    "soft_rate",
]

CRITERIA: dict[str, tuple[str, ...]] = {
    "demographic_parity": ("selection_rate",),
    "equal_opportunity": ("true_positive_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
    "predictive_parity": ("positive_predictive_value",),
    "error_rate_parity": ("error_rate",),
}


def soft_cells(
    logits: torch.Tensor,
    y_true: torch.Tensor,
    groups: torch.Tensor,
    n_groups: int,
    temperature: float = 1.0,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """(G, 4) soft TP, FP, TN, FN per group with ŷ = σ(logit / τ); differentiable in ``logits``.

    Args:
        logits: (n,) real scores (decision boundary at 0). y_true: (n,) {0, 1}. groups: (n,) int64 codes in [0, G).
    """
    if logits.ndim != 1 or logits.shape != y_true.shape or logits.shape != groups.shape:
        raise ValueError(
            f"logits, y_true and groups must be 1-D of equal length, got {tuple(logits.shape)}, {tuple(y_true.shape)}, {tuple(groups.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    p = torch.sigmoid(logits / temperature)
    y = y_true.to(p.dtype)
    w = torch.ones_like(p) if sample_weight is None else sample_weight.to(p.dtype)
    parts = torch.stack([w * p * y, w * p * (1 - y), w * (1 - p) * (1 - y), w * (1 - p) * y], dim=1)  # (n, 4)
    out = torch.zeros(n_groups, 4, dtype=p.dtype, device=p.device)
    return out.index_add(0, groups.to(torch.int64), parts)


def soft_rate(cells: torch.Tensor, metric: str) -> torch.Tensor:
    """Rate from (..., 4) cells by the shared registry; NaN where the denominator is 0."""
    num_idx, den_idx = RATES[canonical_rate(metric)]
    num = cells[..., list(num_idx)].sum(-1)
    den = cells[..., list(den_idx)].sum(-1)
    return torch.where(
        den > 0, num / den.clamp_min(torch.finfo(cells.dtype).tiny), torch.full_like(den, float("nan"))
    )


def soft_disparity(
    cells: torch.Tensor,
    metric: str,
    method: str = "between_groups",
    reference: int | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differentiable group comparison of ``metric`` (same conventions as the metrics; vs_reference is |rest − ref|)."""
    v = soft_rate(cells, metric)
    ok = ~torch.isnan(v) if valid is None else valid & ~torch.isnan(v)
    if int(ok.sum()) < 1:
        return cells.sum() * 0.0
    if method == "between_groups":
        vv = v[ok]
        return vv.max() - vv.min()
    if method == "to_overall":
        o = soft_rate(cells.sum(0), metric)
        return (v[ok] - o).abs().max()
    if method == "vs_reference":
        if reference is None:
            raise ValueError("method='vs_reference' needs reference=<group code>")
        ref = soft_rate(cells[reference], metric)
        rest = soft_rate(cells.sum(0) - cells[reference], metric)
        return (rest - ref).abs()
    raise ValueError(f"unknown comparison method {method!r}")


class FairnessPenalty(nn.Module):
    """A differentiable fairness gap to add to any loss: ``loss = task_loss + weight * penalty(logits, y, groups)``.

    Args:
        criterion: demographic_parity | equal_opportunity | equalized_odds | predictive_parity | error_rate_parity.
        n_groups: number of groups (codes from :func:`labworks.fairness.encode_groups` on the full data).
        agg: for equalized odds, "worst_case" (max of the TPR and FPR gaps) or "mean".
        min_count: groups with fewer rows in the batch are left out (noisy estimates).
        momentum: if > 0, the cells are an exponential moving average over batches (the current batch enters with
            weight 1 − momentum and carries the gradient): rare groups absent from a batch still count.
    """

    running_cells: torch.Tensor
    running_counts: torch.Tensor

    def __init__(
        self,
        criterion: str,
        n_groups: int,
        temperature: float = 1.0,
        method: str = "between_groups",
        agg: Literal["worst_case", "mean"] = "worst_case",
        reference: int | None = None,
        min_count: int = 1,
        momentum: float = 0.0,
    ) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.criterion, self.n_groups, self.temperature = criterion, n_groups, temperature
        self.method, self.agg, self.reference, self.min_count = method, agg, reference, min_count
        self.momentum = momentum
        self.register_buffer("running_cells", torch.zeros(n_groups, 4, dtype=torch.float64))
        self.register_buffer("running_counts", torch.zeros(n_groups, 2, dtype=torch.float64))
        self._initialised = False

    def forward(
        self,
        logits: torch.Tensor,
        y_true: torch.Tensor,
        groups: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cells = soft_cells(logits, y_true, groups, self.n_groups, self.temperature, sample_weight)
        yv = y_true.to(torch.int64)
        counts = torch.zeros(self.n_groups, 2, dtype=torch.float64, device=logits.device)
        counts.index_put_(
            (groups.to(torch.int64), yv), torch.ones_like(yv, dtype=torch.float64), accumulate=True
        )
        if self.momentum > 0:
            rc = self.running_cells.to(device=cells.device, dtype=cells.dtype)
            rn = self.running_counts.to(counts.device)
            if self._initialised:
                cells = self.momentum * rc + (1 - self.momentum) * cells
                counts = self.momentum * rn + (1 - self.momentum) * counts
            with torch.no_grad():
                self.running_cells.copy_(cells.detach().to(self.running_cells.dtype))
                self.running_counts.copy_(counts.to(self.running_counts.dtype))
            self._initialised = True
            # an EMA count of c rows stands for about c / (1 − momentum) rows over the window
            counts = counts / (1 - self.momentum)
        gaps = []
        for m in CRITERIA[self.criterion]:
            if m == "true_positive_rate":
                valid = counts[:, 1] >= self.min_count
            elif m == "false_positive_rate":
                valid = counts[:, 0] >= self.min_count
            else:
                valid = counts.sum(1) >= self.min_count
            gaps.append(soft_disparity(cells, m, self.method, self.reference, valid))
        g = torch.stack(gaps)
        return g.max() if self.agg == "worst_case" else g.mean()


class LagrangianFairness(nn.Module):
    """Constraint gap ≤ ε as a Lagrangian term λ·(gap − ε) with its own ascent step on λ ≥ 0.

    Call ``term = lag(logits, y, groups)`` inside the loss, then ``lag.ascend()`` after the optimiser step.
    """

    multiplier: torch.Tensor

    def __init__(
        self, penalty: FairnessPenalty, epsilon: float = 0.02, lr: float = 0.5, max_multiplier: float = 100.0
    ) -> None:
        super().__init__()
        self.penalty, self.epsilon, self.lr, self.max_multiplier = penalty, epsilon, lr, max_multiplier
        self.register_buffer("multiplier", torch.zeros(()))
        self._last_gap: float | None = None

    def forward(
        self,
        logits: torch.Tensor,
        y_true: torch.Tensor,
        groups: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        gap = self.penalty(logits, y_true, groups, sample_weight)
        self._last_gap = float(gap.detach())
        return self.multiplier * (gap - self.epsilon)

    @torch.no_grad()
    def ascend(self) -> float:
        if self._last_gap is not None:
            self.multiplier.add_(self.lr * (self._last_gap - self.epsilon)).clamp_(0.0, self.max_multiplier)
        return float(self.multiplier)
