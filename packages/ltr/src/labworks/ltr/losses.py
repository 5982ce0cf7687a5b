"""Ranking losses (pointwise, pairwise, listwise) and LambdaLoss weights for padded, masked lists.

Every loss is ``loss(scores, labels, mask=None, *, reduction="mean", weights=None, ...)`` with
``scores, labels: (batch, list_size)`` and bool ``mask`` (True = real document). Padded entries may
hold anything (NaN scores, -1 labels); they never reach the value or the gradient.

Reduction: each list gets one value ℓ_l and a flag c_l saying whether it counts. Listwise and
pairwise losses count lists with at least one label > 0 (others get zero weight); pointwise losses
(``sigmoid_cross_entropy_loss``, ``mse_loss``) and ``pairwise_mse_loss`` count every list with a real
document. ``"mean"`` = Σ_l w_l c_l ℓ_l / Σ_l w_l c_l (0 when nothing counts), ``"sum"`` = Σ_l w_l c_l ℓ_l,
``"none"`` = w_l c_l ℓ_l per list ``(batch,)``.

``weights`` is ``(batch,)`` per list or ``(batch, list_size)`` per document: pointwise losses weight
each document, pairwise losses weight pair (i, j) with y_i > y_j by w_i, the softmax loss uses
w_i·y_i as target, other listwise losses use the per-list weight Σ w_i y_i / Σ y_i.

Within a list, pairwise losses average over their pairs and pointwise losses over documents, so a
single list matches rax/TF-Ranking; for batches of ragged lists the mean is over lists, not pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from labworks.ltr._lists import ranks_from_order, sort_order

__all__ = [
    "LOSSES",
    "LabelDiffLambdaWeight",
    "LambdaWeight",
    "NDCGLambdaWeight",
    "NDCGLambdaWeightV2",
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "get_loss",
    "listmle_loss",
    "mse_loss",
    "neural_ndcg_loss",
    "neural_sort",
    "neural_sort_cross_entropy_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_mse_loss",
    "pairwise_soft_zero_one_loss",
    "sigmoid_cross_entropy_loss",
    "softmax_loss",
]

_REDUCTIONS = ("mean", "sum", "none")
_PAIR_BUDGET = 1 << 24  # elements of one (chunk, n, n) pair tensor


# ----------------------------------------------------------------------------- input handling
def _prep(scores: Tensor, labels: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Shape checks; padded scores → 0 and labels → 0 (no NaN can reach the graph)."""
    if scores.ndim == 1:
        scores, labels = scores.unsqueeze(0), labels.unsqueeze(0)
        mask = mask.unsqueeze(0) if mask is not None else None
    if scores.ndim != 2:
        raise ValueError(f"scores must be (batch, list_size), got shape {tuple(scores.shape)}")
    if labels.shape != scores.shape:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match scores shape {tuple(scores.shape)}"
        )
    if mask is None:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    elif mask.shape != scores.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match scores shape {tuple(scores.shape)}")
    mask = mask.to(torch.bool)
    dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    s = scores.to(dtype).masked_fill(~mask, 0.0)
    y = labels.to(dtype=dtype, device=scores.device).masked_fill(~mask, 0.0)
    return s, y, mask


def _item_weights(weights: Tensor | None, s: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """Split ``weights`` into (per-list ``(batch,)``, per-item ``(batch, list)``) parts."""
    if weights is None:
        return None, None
    w = weights.to(dtype=s.dtype, device=s.device)
    if w.ndim == 1 and w.shape[0] == s.shape[0]:
        return w, None
    if w.shape == s.shape:
        return None, w
    raise ValueError(f"weights must be (batch,) or (batch, list_size), got shape {tuple(w.shape)}")


def _listwise_weight(w_item: Tensor | None, y: Tensor, m: Tensor) -> Tensor | None:
    """Per-list weight Σ w_i y_i / Σ y_i from per-item weights (mean of real w_i if Σ y = 0)."""
    if w_item is None:
        return None
    w = w_item.masked_fill(~m, 0.0)
    tot = y.sum(1)
    by_label = (w * y).sum(1) / torch.where(tot > 0, tot, torch.ones_like(tot))
    plain = w.sum(1) / m.sum(1).clamp_min(1)
    return torch.where(tot > 0, by_label, plain)


def _reduce(loss: Tensor, counts: Tensor, w_list: Tensor | None, reduction: str) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")
    c = counts.to(loss.dtype)
    if w_list is not None:
        c = c * w_list
    per_list = torch.where(c != 0, loss * c, torch.zeros_like(loss))
    if reduction == "none":
        return per_list
    if reduction == "sum":
        return per_list.sum()
    return per_list.sum() / c.sum().clamp_min(torch.finfo(loss.dtype).tiny)


def _ranks(s: Tensor, m: Tensor) -> Tensor:
    """1-based ranks by current scores (no gradient; ties in input order; padding last)."""
    return ranks_from_order(sort_order(s.detach(), m))


def _gain(y: Tensor, gain: str) -> Tensor:
    if gain == "exp":
        return torch.exp2(y) - 1.0
    if gain == "linear":
        return y
    raise ValueError(f"unknown gain {gain!r}; expected 'exp' or 'linear'")


def _discount(ranks: Tensor, topn: int | None) -> Tensor:
    """D(r) = 1 / log2(1 + r), zero beyond ``topn``."""
    d = 1.0 / torch.log2(
        1.0 + ranks.to(torch.get_default_dtype() if not ranks.is_floating_point() else ranks.dtype)
    )
    return d if topn is None else torch.where(ranks <= topn, d, torch.zeros_like(d))


def _ideal_dcg(g: Tensor, topn: int | None) -> Tensor:
    """IDCG@topn ``(batch,)`` from gains ``g (batch, list)`` (padded gains must be 0)."""
    ideal = torch.sort(g, dim=1, descending=True).values
    pos = torch.arange(1, g.shape[1] + 1, device=g.device, dtype=g.dtype)
    return (ideal * _discount(pos, topn)).sum(1)


def _check_topn(topn: int | None) -> None:
    if topn is not None and (isinstance(topn, bool) or not isinstance(topn, int) or topn <= 0):
        raise ValueError(f"topn must be a positive integer or None, got {topn!r}")


def _check_temperature(t: float) -> None:
    if not t > 0:
        raise ValueError(f"temperature must be > 0, got {t!r}")


def _gumbel(
    s: Tensor, y: Tensor, m: Tensor, w_item: Tensor | None, samples: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Repeat the batch ``samples`` times and perturb scores with Gumbel(0, 1) noise (Gumbel trick)."""
    if samples < 0:
        raise ValueError(f"gumbel_samples must be >= 0, got {samples!r}")
    rep = (samples, 1)
    u = torch.rand((samples * s.shape[0], s.shape[1]), generator=generator, dtype=torch.float64)
    u = u.to(device=s.device, dtype=s.dtype).clamp(torch.finfo(s.dtype).tiny, 1.0 - torch.finfo(s.dtype).eps)
    noise = -torch.log(-torch.log(u))
    ss = (s.repeat(rep) + noise).masked_fill(~m.repeat(rep), 0.0)
    return ss, y.repeat(rep), m.repeat(rep), (w_item.repeat(rep) if w_item is not None else None)


def _sample_mean(loss: Tensor, counts: Tensor, samples: int) -> tuple[Tensor, Tensor]:
    if samples == 0:
        return loss, counts
    return loss.view(samples, -1).mean(0), counts.view(samples, -1).any(0)


# ----------------------------------------------------------------------------- lambda weights
class LambdaWeight(Protocol):
    """Weights from labels and current 1-based ranks (computed without gradient)."""

    def pair_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        """λ_ij for every pair: ``(batch, list, list)``."""
        ...

    def individual_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        """Per-document weights for listwise losses: ``(batch, list)``."""
        ...


class LabelDiffLambdaWeight:
    """λ_ij = |y_i − y_j|; individual weight y_i."""

    def pair_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        return (labels[:, :, None] - labels[:, None, :]).abs()

    def individual_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        return labels


class NDCGLambdaWeight:
    """LambdaRank |ΔNDCG|: λ_ij = |G_i − G_j| · |D(r_i) − D(r_j)| / IDCG@topn.

    G = 2^y − 1 (``gain="exp"``) or y, D(r) = 1/log2(1 + r) for r ≤ topn else 0, r = current 1-based
    rank. With ``topn`` pairs where both documents rank below it get λ = 0 (LightGBM's truncation).
    Individual weight (listwise): G_i · D(r_i) / IDCG@topn (TF-Ranking's DCG individual weights).
    """

    def __init__(self, topn: int | None = None, gain: str = "exp", normalized: bool = True) -> None:
        _check_topn(topn)
        _gain(torch.zeros(1), gain)
        self.topn, self.gain, self.normalized = topn, gain, normalized

    def _gains(self, labels: Tensor) -> Tensor:
        g = _gain(labels, self.gain)
        if self.normalized:
            idcg = _ideal_dcg(g, self.topn)
            g = g / torch.where(idcg > 0, idcg, torch.ones_like(idcg))[:, None]
        return g

    def pair_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        g = self._gains(labels)
        d = _discount(ranks.to(labels.dtype), self.topn)
        return (g[:, :, None] - g[:, None, :]).abs() * (d[:, :, None] - d[:, None, :]).abs()

    def individual_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        return self._gains(labels) * _discount(ranks.to(labels.dtype), self.topn)


class NDCGLambdaWeightV2(NDCGLambdaWeight):
    """LambdaLoss NDCG-Loss2 (Wang et al. 2018): λ_ij = |G_i − G_j| · |D(|r_i − r_j|) − D(|r_i − r_j| + 1)| / IDCG.

    D(x) = 1/log2(1 + x); pairs with equal rank get 0. With ``topn`` a pair whose lower-ranked
    document is below topn is scaled by 1 / (1 − D(max(r_i, r_j))) (Jagerman et al. 2022, as rax).
    """

    def pair_weights(self, labels: Tensor, ranks: Tensor, mask: Tensor) -> Tensor:
        g = self._gains(labels)
        r = ranks.to(labels.dtype)
        diff = (r[:, :, None] - r[:, None, :]).abs()
        safe = diff.clamp_min(1.0)
        disc = (1.0 / torch.log2(1.0 + safe) - 1.0 / torch.log2(2.0 + safe)).abs()
        disc = torch.where(diff > 0, disc, torch.zeros_like(disc))
        if self.topn is not None:
            rmax = torch.maximum(r[:, :, None], r[:, None, :])
            scale = 1.0 / (1.0 - 1.0 / torch.log2(1.0 + rmax.clamp_min(2.0)))
            disc = torch.where(rmax > self.topn, disc * scale, disc)
        return (g[:, :, None] - g[:, None, :]).abs() * disc


# ----------------------------------------------------------------------------- pointwise
def _pointwise(
    terms: Tensor, m: Tensor, w_list: Tensor | None, w_item: Tensor | None, reduction: str
) -> Tensor:
    if w_item is not None:
        terms = terms * w_item
    terms = terms.masked_fill(~m, 0.0)
    n = m.sum(1)
    return _reduce(terms.sum(1) / n.clamp_min(1).to(terms.dtype), n > 0, w_list, reduction)


def sigmoid_cross_entropy_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
) -> Tensor:
    """Pointwise −[y log σ(s) + (1 − y) log(1 − σ(s))], mean over a list's documents (y in [0, 1])."""
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    return _pointwise(
        F.binary_cross_entropy_with_logits(s, y, reduction="none"), m, w_list, w_item, reduction
    )


def mse_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
) -> Tensor:
    """Pointwise (s − y)², mean over a list's documents."""
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    return _pointwise((s - y) ** 2, m, w_list, w_item, reduction)


# ----------------------------------------------------------------------------- pairwise
def _pairwise(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    phi: Callable[[Tensor, Tensor], Tensor],
    *,
    reduction: str,
    weights: Tensor | None,
    lambda_weight: LambdaWeight | None,
    topn: int | None,
    all_pairs: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Per list Σ_{pairs} w_i λ_ij φ(s_i − s_j, y_i − y_j) / #pairs, built in batch chunks."""
    _check_topn(topn)
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    n = s.shape[1]
    need_ranks = lambda_weight is not None or topn is not None
    ranks = _ranks(s, m) if need_ranks else None
    step = chunk_size or max(1, _PAIR_BUDGET // max(n * n, 1))
    losses, counts = [], []
    for lo in range(0, max(s.shape[0], 1), step):
        sl, yl, ml = s[lo : lo + step], y[lo : lo + step], m[lo : lo + step]
        valid = ml[:, :, None] & ml[:, None, :]
        if all_pairs:
            valid = valid & ~torch.eye(n, dtype=torch.bool, device=s.device)
        else:
            valid = valid & (yl[:, :, None] > yl[:, None, :])
        if topn is not None:
            rl = ranks[lo : lo + step]  # type: ignore[index]
            valid = valid & (torch.minimum(rl[:, :, None], rl[:, None, :]) <= topn)
        term = phi(sl[:, :, None] - sl[:, None, :], yl[:, :, None] - yl[:, None, :])
        if lambda_weight is not None:
            term = term * lambda_weight.pair_weights(yl, ranks[lo : lo + step], ml)  # type: ignore[index]
        if w_item is not None:
            term = term * w_item[lo : lo + step, :, None]
        n_pairs = valid.sum((1, 2))
        total = torch.where(valid, term, torch.zeros_like(term)).sum((1, 2))
        losses.append(total / n_pairs.clamp_min(1).to(total.dtype))
        counts.append(n_pairs > 0 if all_pairs else (yl > 0).any(1) & (n_pairs > 0))
    return _reduce(torch.cat(losses), torch.cat(counts), w_list, reduction)


def pairwise_logistic_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    lambda_weight: LambdaWeight | None = None,
    topn: int | None = None,
) -> Tensor:
    """RankNet: Σ_{y_i > y_j} λ_ij log(1 + exp(−(s_i − s_j))) averaged over the list's pairs.

    ``topn`` skips pairs whose documents both rank below topn (current scores).
    """
    return _pairwise(
        scores, labels, mask, lambda d, _: F.softplus(-d),
        reduction=reduction, weights=weights, lambda_weight=lambda_weight, topn=topn,
    )  # fmt: skip


def pairwise_hinge_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    lambda_weight: LambdaWeight | None = None,
    topn: int | None = None,
) -> Tensor:
    """Σ_{y_i > y_j} λ_ij max(0, 1 − (s_i − s_j)) averaged over the list's pairs."""
    return _pairwise(
        scores, labels, mask, lambda d, _: F.relu(1.0 - d),
        reduction=reduction, weights=weights, lambda_weight=lambda_weight, topn=topn,
    )  # fmt: skip


def pairwise_soft_zero_one_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    lambda_weight: LambdaWeight | None = None,
    topn: int | None = None,
) -> Tensor:
    """Σ_{y_i > y_j} λ_ij σ(−(s_i − s_j)) averaged over the list's pairs."""
    return _pairwise(
        scores, labels, mask, lambda d, _: torch.sigmoid(-d),
        reduction=reduction, weights=weights, lambda_weight=lambda_weight, topn=topn,
    )  # fmt: skip


def pairwise_mse_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    lambda_weight: LambdaWeight | None = None,
    topn: int | None = None,
) -> Tensor:
    """Σ_{i ≠ j} λ_ij ((s_i − s_j) − (y_i − y_j))² averaged over all ordered pairs of real documents."""
    return _pairwise(
        scores, labels, mask, lambda d, dy: (d - dy) ** 2,
        reduction=reduction, weights=weights, lambda_weight=lambda_weight, topn=topn, all_pairs=True,
    )  # fmt: skip


# ----------------------------------------------------------------------------- listwise
def _softmax_terms(s: Tensor, target: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    tot = target.sum(1)
    p = target / torch.where(tot > 0, tot, torch.ones_like(tot))[:, None]
    logp = torch.log_softmax(s.masked_fill(~m, float("-inf")), dim=1).masked_fill(~m, 0.0)
    return -(p * logp).sum(1), tot > 0


def softmax_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    lambda_weight: LambdaWeight | None = None,
    gumbel_samples: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ListNet / TF-Ranking softmax: −Σ_i p_i log softmax(s)_i with p_i = t_i / Σ_j t_j.

    t = y (× per-item weights), or ``lambda_weight.individual_weights`` (e.g. NDCG@k-weighted softmax:
    G_i D(r_i) / IDCG, zero for documents ranked below ``topn``). Lists with Σ t = 0 get zero weight.
    """
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    if gumbel_samples:
        s, y, m, w_item = _gumbel(s, y, m, w_item, gumbel_samples, generator)
    target = y if w_item is None else y * w_item.masked_fill(~m, 0.0)
    if lambda_weight is not None:
        target = lambda_weight.individual_weights(target, _ranks(s, m), m).masked_fill(~m, 0.0)
    loss, counts = _sample_mean(*_softmax_terms(s, target, m), gumbel_samples)
    return _reduce(loss, counts, w_list, reduction)


def listmle_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    topn: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ListMLE: −Σ_{i<k} [s_π(i) − log Σ_{j≥i} exp s_π(j)], π = labels sorted descending.

    Ties in labels keep input order, or are shuffled with ``generator``. ``topn`` = k (top-k ListMLE,
    Xia et al. 2009); the denominators still run over the whole list.
    """
    _check_topn(topn)
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    order = sort_order(y, m, ties="random" if generator is not None else "stable", generator=generator)
    ss = s.masked_fill(~m, float("-inf")).gather(1, order)
    ms = m.gather(1, order)
    lse = torch.logcumsumexp(ss.flip(1), dim=1).flip(1)
    keep = ms if topn is None else ms & (torch.arange(s.shape[1], device=s.device) < topn)
    terms = torch.where(keep, lse - ss, torch.zeros_like(ss))
    return _reduce(terms.sum(1), (y > 0).any(1), _merge(w_list, _listwise_weight(w_item, y, m)), reduction)


def _merge(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return b if a is None else a


def _approx_ranks(s: Tensor, m: Tensor, temperature: float) -> Tensor:
    """r̂_i = 1 + Σ_{j ≠ i, real} σ((s_j − s_i) / T): ``(batch, list)``."""
    n = s.shape[1]
    step = max(1, _PAIR_BUDGET // max(n * n, 1))
    out = []
    for lo in range(0, max(s.shape[0], 1), step):
        sl, ml = s[lo : lo + step], m[lo : lo + step]
        sig = torch.sigmoid((sl[:, None, :] - sl[:, :, None]) / temperature)
        valid = ml[:, None, :] & ~torch.eye(n, dtype=torch.bool, device=s.device)
        out.append(1.0 + torch.where(valid, sig, torch.zeros_like(sig)).sum(2))
    return torch.cat(out)


def approx_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    temperature: float = 0.1,
    gain: str = "exp",
    gumbel_samples: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ApproxNDCG (Qin et al. 2010): −Σ_i G_i / log2(1 + r̂_i) / IDCG with smooth ranks r̂.

    r̂_i = 1 + Σ_{j≠i} σ((s_j − s_i)/T); TF-Ranking's ``alpha`` = 1/T (default T = 0.1 ↔ alpha 10).
    """
    _check_temperature(temperature)
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    w_list = _merge(w_list, _listwise_weight(w_item, y, m))
    if gumbel_samples:
        s, y, m, _ = _gumbel(s, y, m, None, gumbel_samples, generator)
    g = _gain(y, gain)
    r = _approx_ranks(s, m, temperature)
    dcg = (g / torch.log2(1.0 + r)).masked_fill(~m, 0.0).sum(1)
    idcg = _ideal_dcg(g, None)
    loss = -dcg / torch.where(idcg > 0, idcg, torch.ones_like(idcg))
    return _reduce(*_sample_mean(loss, idcg > 0, gumbel_samples), w_list, reduction)


def approx_mrr_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    temperature: float = 0.1,
    gumbel_samples: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ApproxMRR: −(1/|R|) Σ_{i ∈ R} 1 / r̂_i over the relevant documents R = {y > 0}.

    Smooth ranks as in ``approx_ndcg_loss``; equals TF-Ranking's ApproxMRR on binary labels.
    """
    _check_temperature(temperature)
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    w_list = _merge(w_list, _listwise_weight(w_item, y, m))
    if gumbel_samples:
        s, y, m, _ = _gumbel(s, y, m, None, gumbel_samples, generator)
    rel = (y > 0) & m
    r = _approx_ranks(s, m, temperature)
    n_rel = rel.sum(1).clamp_min(1).to(s.dtype)
    loss = -torch.where(rel, 1.0 / r, torch.zeros_like(r)).sum(1) / n_rel
    return _reduce(*_sample_mean(loss, rel.any(1), gumbel_samples), w_list, reduction)


def neural_sort(scores: Tensor, mask: Tensor | None = None, *, temperature: float = 1.0) -> Tensor:
    """NeuralSort relaxed permutation P̂ ``(batch, list, list)`` (row = rank position, column = doc).

    P̂[i, :] = softmax(((n + 1 − 2i)·s − A_s·1) / τ), A_s[j, k] = |s_j − s_k|, computed over the n real
    documents of each list only; rows i > n and padded columns are 0.
    """
    _check_temperature(temperature)
    s, _, m = _prep(scores, torch.zeros_like(scores), mask)
    return torch.exp(_neural_sort_log(s, m, temperature)) * _rowcol(m, s.dtype)


def _rowcol(m: Tensor, dtype: torch.dtype) -> Tensor:
    """1 where row (rank position) i ≤ n_real and column j is a real document: ``(batch, list, list)``."""
    n_valid = m.sum(1, keepdim=True)
    rows = torch.arange(m.shape[1], device=m.device)[None, :] < n_valid
    return (rows[:, :, None] & m[:, None, :]).to(dtype)


def _neural_sort_log(s: Tensor, m: Tensor, temperature: float) -> Tensor:
    n_valid = m.sum(1, keepdim=True).to(s.dtype)
    a = (s[:, :, None] - s[:, None, :]).abs() * m[:, None, :]
    b = a.sum(2)  # Σ_k |s_j − s_k| over real k: (batch, list)
    i = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=s.dtype)
    coef = n_valid + 1.0 - 2.0 * i[None, :]  # (batch, positions)
    logits = (coef[:, :, None] * s[:, None, :] - b[:, None, :]) / temperature
    logits = logits.masked_fill(~m[:, None, :], torch.finfo(s.dtype).min)
    return torch.log_softmax(logits, dim=2)


def neural_sort_cross_entropy_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    temperature: float = 1.0,
    gumbel_samples: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """−(1/n) Σ_i Σ_j P[i, j] log P̂[i, j]: row-wise cross-entropy of NeuralSort(s) against NeuralSort(y).

    As TF-Ranking, the target P = NeuralSort(labels) at the same temperature (soft; tied labels share
    rows); n = number of real documents. Lists with no positive label get zero weight.
    """
    _check_temperature(temperature)
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    w_list = _merge(w_list, _listwise_weight(w_item, y, m))
    if gumbel_samples:
        s, y, m, _ = _gumbel(s, y, m, None, gumbel_samples, generator)
    rc = _rowcol(m, s.dtype)
    target = torch.exp(_neural_sort_log(y, m, temperature)) * rc
    logp = _neural_sort_log(s, m, temperature).masked_fill(rc == 0, 0.0)
    loss = -(target * logp).sum((1, 2)) / m.sum(1).clamp_min(1).to(s.dtype)
    return _reduce(*_sample_mean(loss, (y > 0).any(1), gumbel_samples), w_list, reduction)


def neural_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "mean",
    weights: Tensor | None = None,
    temperature: float = 1.0,
    k: int | None = None,
    gain: str = "exp",
    gumbel_samples: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """NeuralNDCG (Pobrotyn & Białobrzeski 2021): −Σ_{i≤k} (P̂ G)_i / log2(1 + i) / IDCG@k.

    Plain NeuralSort P̂ (no Sinkhorn scaling); ``k`` truncates both DCG and IDCG.
    """
    _check_temperature(temperature)
    _check_topn(k)
    s, y, m = _prep(scores, labels, mask)
    w_list, w_item = _item_weights(weights, s)
    w_list = _merge(w_list, _listwise_weight(w_item, y, m))
    if gumbel_samples:
        s, y, m, _ = _gumbel(s, y, m, None, gumbel_samples, generator)
    g = _gain(y, gain)
    p = torch.exp(_neural_sort_log(s, m, temperature)) * _rowcol(m, s.dtype)
    pos = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=s.dtype)
    dcg = (torch.einsum("bij,bj->bi", p, g) * _discount(pos, k)).sum(1)
    idcg = _ideal_dcg(g, k)
    loss = -dcg / torch.where(idcg > 0, idcg, torch.ones_like(idcg))
    return _reduce(*_sample_mean(loss, idcg > 0, gumbel_samples), w_list, reduction)


# ----------------------------------------------------------------------------- registry
def _lambda_loss(weight_cls: type, **kwargs: Any) -> Callable[..., Tensor]:
    lw_keys = {"topn", "gain", "normalized"}
    lw = weight_cls(**{key: v for key, v in kwargs.items() if key in lw_keys})
    rest = {key: v for key, v in kwargs.items() if key not in lw_keys}
    return functools.partial(pairwise_logistic_loss, lambda_weight=lw, topn=kwargs.get("topn"), **rest)


LOSSES: dict[str, Callable[..., Tensor]] = {
    "softmax": softmax_loss,
    "listnet": softmax_loss,
    "listmle": listmle_loss,
    "pairwise_logistic": pairwise_logistic_loss,
    "ranknet": pairwise_logistic_loss,
    "pairwise_hinge": pairwise_hinge_loss,
    "pairwise_soft_zero_one": pairwise_soft_zero_one_loss,
    "pairwise_mse": pairwise_mse_loss,
    "sigmoid_cross_entropy": sigmoid_cross_entropy_loss,
    "mse": mse_loss,
    "approx_ndcg": approx_ndcg_loss,
    "approx_mrr": approx_mrr_loss,
    "neural_sort_cross_entropy": neural_sort_cross_entropy_loss,
    "neural_ndcg": neural_ndcg_loss,
}
"""Plain losses by name; ``get_loss`` also knows the composite names in ``_COMPOSITE``."""

_COMPOSITE: dict[str, Callable[..., Callable[..., Tensor]]] = {
    "lambda_ndcg": lambda **kw: _lambda_loss(NDCGLambdaWeight, **kw),
    "lambda_ndcg2": lambda **kw: _lambda_loss(NDCGLambdaWeightV2, **kw),
    "lambda_labeldiff": lambda **kw: functools.partial(
        pairwise_logistic_loss, lambda_weight=LabelDiffLambdaWeight(), **kw
    ),
    "softmax_ndcg": lambda topn=None, gain="exp", **kw: functools.partial(
        softmax_loss, lambda_weight=NDCGLambdaWeight(topn=topn, gain=gain), **kw
    ),
    "gumbel_approx_ndcg": lambda gumbel_samples=8, **kw: functools.partial(
        approx_ndcg_loss, gumbel_samples=gumbel_samples, **kw
    ),
    "gumbel_neural_sort_cross_entropy": lambda gumbel_samples=8, **kw: functools.partial(
        neural_sort_cross_entropy_loss, gumbel_samples=gumbel_samples, **kw
    ),
    "gumbel_neural_ndcg": lambda gumbel_samples=8, **kw: functools.partial(
        neural_ndcg_loss, gumbel_samples=gumbel_samples, **kw
    ),
}


def get_loss(name: str, **kwargs: Any) -> Callable[..., Tensor]:
    """Loss by config name with bound keyword arguments, e.g. ``get_loss("lambda_ndcg", topn=10)``.

    Names: the keys of ``LOSSES`` plus ``lambda_ndcg`` (pairwise logistic × NDCGLambdaWeight),
    ``lambda_ndcg2`` (× NDCGLambdaWeightV2), ``lambda_labeldiff``, ``softmax_ndcg`` (softmax with NDCG
    individual weights) and ``gumbel_approx_ndcg`` / ``gumbel_neural_sort_cross_entropy`` /
    ``gumbel_neural_ndcg`` (8 Gumbel samples by default).
    """
    if name in LOSSES:
        return functools.partial(LOSSES[name], **kwargs) if kwargs else LOSSES[name]
    if name in _COMPOSITE:
        return _COMPOSITE[name](**kwargs)
    raise ValueError(f"unknown loss {name!r}; expected one of {sorted([*LOSSES, *_COMPOSITE])}")
