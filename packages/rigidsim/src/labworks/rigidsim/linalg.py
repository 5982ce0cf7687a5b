"""Small dense SPD solves for a batch of joint-space matrices.

LAPACK factorises batched tiny matrices one by one (slow per matrix on CPU); the unrolled variants below are
plain tensor arithmetic over the batch, which ``torch.compile`` fuses into a few loops. Both are exact
Cholesky; :func:`cholesky` picks the unrolled form while compiling.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["cholesky", "cholesky_solve"]


def _unrolled_cholesky(a: Tensor) -> Tensor:
    n = a.shape[-1]
    cols: list[Tensor] = []  # column j of L: (B, n), zeros above the diagonal
    for j in range(n):
        if j:
            prev = torch.stack(cols, -1)  # (B, n, j)
            s = a[..., :, j] - (prev * prev[..., j : j + 1, :]).sum(-1)
        else:
            s = a[..., :, j]
        d = torch.sqrt(s[..., j : j + 1])
        col = s / d
        mask = torch.arange(n, device=a.device) >= j
        cols.append(torch.where(mask, col, torch.zeros_like(col)))
    return torch.stack(cols, -1)


def _unrolled_solve(b: Tensor, low: Tensor) -> Tensor:
    """Solve L L^T x = b for b: (B, n, k)."""
    n = low.shape[-1]
    ys: list[Tensor] = []
    for i in range(n):
        acc = b[..., i, :]
        if i:
            acc = acc - (low[..., i, :i].unsqueeze(-1) * torch.stack(ys, -2)).sum(-2)
        ys.append(acc / low[..., i, i : i + 1])
    xs: list[Tensor] = [torch.zeros_like(ys[0])] * n
    for i in reversed(range(n)):
        acc = ys[i]
        if i < n - 1:
            acc = acc - (low[..., i + 1 :, i].unsqueeze(-1) * torch.stack(xs[i + 1 :], -2)).sum(-2)
        xs[i] = acc / low[..., i, i : i + 1]
    return torch.stack(xs, -2)


def cholesky(a: Tensor, unrolled: bool | None = None) -> Tensor:
    """Lower Cholesky factor of SPD a: (B, n, n); never raises (a failed row yields NaN downstream)."""
    if unrolled is None:
        unrolled = torch.compiler.is_compiling()
    return _unrolled_cholesky(a) if unrolled else torch.linalg.cholesky_ex(a).L


def cholesky_solve(b: Tensor, low: Tensor, unrolled: bool | None = None) -> Tensor:
    """x with L L^T x = b, b: (B, n, k)."""
    if unrolled is None:
        unrolled = torch.compiler.is_compiling()
    return _unrolled_solve(b, low) if unrolled else torch.cholesky_solve(b, low)
