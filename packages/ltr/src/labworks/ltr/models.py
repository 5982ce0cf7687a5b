"""Scorers: every model maps ``features: (B, N, F)``, ``mask: (B, N)`` and optional
``context: (B, C)`` to ``scores: (B, N)``; padded positions get score 0 and never influence real ones.

- :class:`DNNScorer` — univariate feed-forward scorer (each document scored alone); also scores a
  packed ``(T, F)`` batch directly with :meth:`DNNScorer.score_docs`.
- :class:`DASALC` — Qin et al., ICLR 2021: log1p-with-sign transform and clip, input batch norm,
  train-time Gaussian noise, a DNN tower, listwise multi-head self-attention over the documents
  of a list, and a latent cross (elementwise product) of the two.
- :class:`RankingGAM` — neural ranking GAM (Zhuang et al., WSDM 2021): one small network per
  feature; context features produce the weights of the sub-models; shape functions exportable.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["DASALC", "DNNScorer", "MaskedBatchNorm", "RankingGAM", "log1p_with_sign"]


def log1p_with_sign(x: torch.Tensor, clip: float | None = 30.0) -> torch.Tensor:
    """``sign(x) · log1p(|x|)``, then clipped to ``±clip`` (DASALC's input transform)."""
    y = torch.sign(x) * torch.log1p(torch.abs(x))
    return y.clamp(-clip, clip) if clip is not None else y


def list_standardize(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Standardise ``x: (B, N, F)`` within each list over its real documents (LETOR's query-level
    normalisation); padded positions come back as 0."""
    m = mask.unsqueeze(-1).to(x.dtype)
    n = m.sum(1, keepdim=True).clamp_min(1)
    mean = (x * m).sum(1, keepdim=True) / n
    var = ((x - mean) ** 2 * m).sum(1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + eps) * m


class MaskedBatchNorm(nn.Module):
    """Batch norm over the real documents only: padding never enters the statistics.

    ``momentum`` follows PyTorch (0.1 here = Keras/TF-Ranking's 0.9).
    """

    def __init__(self, n: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(n, momentum=momentum)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        real = x[mask]
        if self.training and real.shape[0] < 2:  # BN cannot estimate a variance from one document
            mean, var = self.bn.running_mean, self.bn.running_var
            assert mean is not None and var is not None
            out[mask] = (real - mean) / torch.sqrt(var + self.bn.eps) * self.bn.weight + self.bn.bias
            return out
        out[mask] = self.bn(real)
        return out


def _mlp(sizes: Sequence[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class DNNScorer(nn.Module):
    """Univariate feed-forward scorer: log1p-with-sign inputs, batch norm, ReLU MLP, linear head."""

    listwise = False

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (256, 128),
        *,
        dropout: float = 0.1,
        transform: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.transform = transform
        self.norm = nn.BatchNorm1d(n_features) if batch_norm else nn.Identity()
        self.mlp = _mlp([n_features, *hidden], dropout)
        self.head = nn.Linear(hidden[-1] if hidden else n_features, 1)

    def score_docs(self, features: torch.Tensor) -> torch.Tensor:
        """``features: (T, F)`` → ``scores: (T,)`` (the packed layout: no padding at all)."""
        x = log1p_with_sign(features) if self.transform else features
        return self.head(self.mlp(self.norm(x))).squeeze(-1)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        scores = features.new_zeros(mask.shape)
        scores[mask] = self.score_docs(features[mask])
        return scores


class DASALC(nn.Module):
    """DASALC: Neural Rankers are Still Outperformed by GBDTs? (Qin et al., ICLR 2021).

    ``list_norm=True`` also feeds every transformed feature standardised within its list (LETOR's
    query-level normalisation), which removes query-dependent feature scales.

    Defaults follow TF-Ranking's research/dasalc.py for Web30K: hidden 512, 3 DNN layers,
    4 attention layers with 2 heads of size 100, dropout 0.4, noise stddev 1.5 (4.5 for Yahoo,
    0.2 for Istella), batch-norm momentum 0.9 (Keras) = 0.1 (PyTorch).
    """

    listwise = True

    def __init__(
        self,
        n_features: int,
        *,
        hidden: int = 512,
        n_dnn_layers: int = 3,
        n_attention_layers: int = 4,
        n_heads: int = 2,
        head_size: int = 100,
        noise_std: float = 1.5,
        dropout: float = 0.4,
        bn_momentum: float = 0.1,
        clip: float = 30.0,
        list_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.clip, self.noise_std, self.list_norm = clip, noise_std, list_norm
        if list_norm:  # each transformed feature also enters standardised within its list
            n_features *= 2
        self.input_bn = MaskedBatchNorm(n_features, bn_momentum)
        self.dnn = nn.ModuleList()
        self.dnn_bn = nn.ModuleList()
        width = n_features
        for _ in range(n_dnn_layers):
            self.dnn.append(nn.Linear(width, hidden))
            self.dnn_bn.append(MaskedBatchNorm(hidden, bn_momentum))
            width = hidden
        self.dropout = nn.Dropout(dropout)
        d_model = n_heads * head_size
        self.attn_in = nn.Linear(n_features, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.attention = nn.TransformerEncoder(layer, n_attention_layers, enable_nested_tensor=False)
        self.attn_out = nn.Linear(d_model, width)
        self.head = nn.Linear(width, 1)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = log1p_with_sign(features, self.clip)
        if self.list_norm:
            x = torch.cat([x, list_standardize(x, mask)], dim=-1)
        x = self.input_bn(x, mask)
        if self.training and self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        h = x
        for lin, bn in zip(self.dnn, self.dnn_bn, strict=True):
            h = self.dropout(torch.relu(bn(lin(h), mask)))
        # padding is masked as keys (no document attends to it) and as queries (outputs zeroed)
        a = self.attention(self.attn_in(x), src_key_padding_mask=~mask)
        a = self.attn_out(a) * mask.unsqueeze(-1)
        scores = self.head(h * a).squeeze(-1)  # latent cross
        return scores * mask


class RankingGAM(nn.Module):
    """Neural ranking GAM: ``score = Σ_f w_f(context) · g_f(x_f)``.

    Each ``g_f`` is a small MLP on one (log1p-with-sign transformed) feature; the per-feature
    networks run together as batched matrix products. With context features, a network maps the
    context to softmax weights over features (scaled by ``F``, so uniform weights are 1);
    without, every weight is 1.
    """

    listwise = False

    def __init__(
        self, n_features: int, n_context: int = 0, hidden: Sequence[int] = (16, 8), *, transform: bool = True
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.n_features, self.n_context, self.transform = n_features, n_context, transform
        sizes = [1, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in itertools.pairwise(sizes):
            w = torch.empty(n_features, a, b)
            for f in range(n_features):
                nn.init.kaiming_uniform_(w[f].T, a=5**0.5)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_features, b)))
        self.context_net = (
            nn.Sequential(nn.Linear(n_context, 32), nn.ReLU(), nn.Linear(32, n_features))
            if n_context > 0
            else None
        )

    def feature_outputs(self, features: torch.Tensor) -> torch.Tensor:
        """``features: (..., F)`` → per-feature contributions ``g_f(x_f)``: ``(..., F)``."""
        x = log1p_with_sign(features) if self.transform else features
        lead = x.shape[:-1]
        h = x.reshape(-1, self.n_features).T.unsqueeze(-1)  # (F, M, 1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w)  # (F, M, out)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1).T.reshape(*lead, self.n_features)

    def feature_weights(self, context: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``(B, F)`` weights of the sub-models."""
        if self.context_net is None:
            return torch.ones(batch, self.n_features, device=self.biases[0].device)
        if context is None:
            raise ValueError("this GAM was built with context features but none were given")
        return torch.softmax(self.context_net(context), dim=-1) * self.n_features

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        g = self.feature_outputs(features)
        w = self.feature_weights(context, features.shape[0])
        return (g * w.unsqueeze(1)).sum(-1) * mask

    @torch.no_grad()
    def shape_functions(self, grid: np.ndarray | torch.Tensor) -> np.ndarray:
        """Evaluate every ``g_f`` on ``grid: (G, F)`` raw feature values → ``(G, F)``."""
        g = torch.as_tensor(np.asarray(grid), dtype=torch.float32, device=self.biases[0].device)
        if g.ndim != 2 or g.shape[1] != self.n_features:
            raise ValueError(f"grid must be (G, {self.n_features}), got {tuple(g.shape)}")
        was = self.training
        self.eval()
        out = self.feature_outputs(g).cpu().numpy()
        self.train(was)
        return out

    def export_shape_functions(
        self,
        features: np.ndarray,
        out_dir: str | os.PathLike[str],
        *,
        points: int = 50,
        names: Sequence[str] | None = None,
        plot_top: int = 12,
    ) -> Path:
        """Write ``shape_functions.csv`` (feature, x, contribution) on a grid of quantiles of
        ``features: (n_docs, F)``, and ``shape_functions.png`` for the ``plot_top`` features with
        the largest contribution range. Returns the folder."""
        from labworks.core import atomic_path, atomic_write

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        names = list(names) if names is not None else [f"f{j}" for j in range(self.n_features)]
        grid = np.quantile(features, np.linspace(0, 1, points), axis=0)
        values = self.shape_functions(grid)
        with atomic_write(out / "shape_functions.csv", "w") as f:
            w = csv.writer(f)
            w.writerow(["feature", "x", "contribution"])
            for j, name in enumerate(names):
                for x, y in zip(grid[:, j], values[:, j], strict=True):
                    w.writerow([name, f"{x:.6g}", f"{y:.6g}"])
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        order = np.argsort(-(values.max(0) - values.min(0)))[:plot_top]
        cols = 4
        rows = int(np.ceil(len(order) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, j in zip(axes.flat, order, strict=False):
            ax.plot(grid[:, j], values[:, j])
            ax.set_title(names[j], fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(order) :]:
            ax.axis("off")
        fig.suptitle("GAM shape functions (largest ranges)")
        fig.tight_layout()
        with atomic_path(out / "shape_functions.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
        return out
