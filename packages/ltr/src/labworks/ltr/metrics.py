"""Ranking metrics with explicit gain, tie and empty-query conventions (vectorised, no per-query loop).

Every metric takes ``scores, labels: (batch, list_size)`` and an optional bool ``mask`` (True = real
document), or sequences of per-query 1-D arrays (ragged; padded internally). It returns the mean over
queries (0-d float64 tensor) or, with ``reduction="none"``, per-query values ``(batch,)`` where
queries dropped by ``empty="skip"`` are NaN. Computation is in float64.

Conventions (resolved as: explicit keyword > ``preset`` > default):

- ``gain``: ``"exp"`` g(r) = 2^r − 1 (default) or ``"linear"`` g(r) = r.
- ``ties`` (equal scores): ``"stable"`` input order (default, LightGBM), ``"trec_eval"`` larger doc id
  first (trec_eval sorts ties by docno *descending*; pass ``doc_ids`` — Python sequences of ids are
  compared as strings like trec_eval, numeric tensors numerically — or, without ``doc_ids``, the input
  order is taken as ascending docno and ties are broken in *reverse input order*), ``"average"``
  (sklearn: each position of a tied group gets the group's mean gain), ``"pessimistic"`` /
  ``"optimistic"`` (lowest / highest label first), ``"random"`` (seeded by ``generator``, default
  seed 0).
- ``empty``: value of a query with no relevant document (no label > ``relevance_threshold``, or no
  real document at all): ``"one"`` (LightGBM), ``"zero"`` (default; trec_eval, sklearn, TF-Ranking,
  ranx), ``"skip"`` (excluded from the mean; the DASALC paper).
- ``k``: cutoff (``None`` = whole list). Ideal DCG uses the top-k of *all* labels of the query.

Discount everywhere: 1 / log2(i + 1) for the 1-based rank i.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from labworks.ltr._lists import TIES, as_padded, doc_id_codes, sort_order, tie_groups

__all__ = [
    "METRICS",
    "PRESETS",
    "alpha_dcg",
    "alpha_ndcg",
    "arp",
    "dcg",
    "map",
    "mean_average_precision",
    "mrr",
    "ndcg",
    "opa",
    "precision",
    "recall",
]

PRESETS: dict[str, dict[str, str]] = {
    "lightgbm": {"gain": "exp", "ties": "stable", "empty": "one"},
    "trec_eval": {"gain": "linear", "ties": "trec_eval", "empty": "zero"},
    "ir_measures": {"gain": "linear", "ties": "trec_eval", "empty": "zero"},
    "sklearn": {"gain": "linear", "ties": "average", "empty": "zero"},
    "tfr": {"gain": "exp", "ties": "stable", "empty": "zero"},
    "ranx": {"gain": "linear", "ties": "stable", "empty": "zero"},
    "ranx_burges": {"gain": "exp", "ties": "stable", "empty": "zero"},
    "paper": {"gain": "exp", "ties": "stable", "empty": "skip"},
}
"""Named conventions. ``tfr``: TF-Ranking shuffles ties at random by default; the preset keeps input
order so results are deterministic. ``ranx``: ranx's tie order is that of an unstable numba argsort,
so parity holds only without ties."""

_DEFAULTS = {"gain": "exp", "ties": "stable", "empty": "zero"}
_GAINS = ("exp", "linear")
_EMPTY = ("one", "zero", "skip")
_REDUCTIONS = ("mean", "none")


def _resolve(preset: str | None, **given: str | None) -> dict[str, str]:
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    base = dict(_DEFAULTS, **(PRESETS[preset] if preset else {}))
    out = {key: (val if val is not None else base[key]) for key, val in given.items()}
    for key, allowed in (("gain", _GAINS), ("ties", TIES), ("empty", _EMPTY)):
        if key in out and out[key] not in allowed:
            raise ValueError(f"unknown {key} {out[key]!r}; expected one of {allowed}")
    return out


def _check_k(k: int | None) -> None:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k <= 0):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")


def _prepare(
    scores: Any, labels: Any, mask: Any, *, labels_extra_dims: int = 0
) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Padded float64 ``(scores, labels, mask)`` + whether a real score is -inf; validates values.

    Fast path: one masked sum each; the exact (slower) checks run only when a sum is not finite.
    """
    s, y, m = as_padded(scores, labels, mask, labels_extra_dims=labels_extra_dims)
    has_neginf = False
    if not bool(torch.isfinite(s.masked_fill(~m, 0.0).sum())):
        if bool((torch.isnan(s) & m).any()):
            raise ValueError("scores contain NaN at unmasked positions")
        has_neginf = bool((torch.isneginf(s) & m).any())
    if y.numel() and not bool(y.min() >= 0):  # NaN fails the comparison too
        if bool(torch.isnan(y).any()):
            raise ValueError("labels contain NaN at unmasked positions")
        raise ValueError(f"labels must be >= 0 at unmasked positions, found min {y.min().item()!r}")
    return s, y, m, has_neginf


def _gain(y: Tensor, gain: str) -> Tensor:
    return torch.exp2(y) - 1.0 if gain == "exp" else y


def _discount(n: int, device: torch.device) -> Tensor:
    return 1.0 / torch.log2(torch.arange(2, n + 2, dtype=torch.float64, device=device))


def _finish(values: Tensor, empty_q: Tensor, empty: str, reduction: str) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")
    fill = {"one": 1.0, "zero": 0.0, "skip": float("nan")}[empty]
    values = torch.where(empty_q, torch.full_like(values, fill), values)
    if reduction == "none":
        return values
    keep = ~torch.isnan(values)
    if not bool(keep.any()):
        return torch.tensor(float("nan"), dtype=values.dtype, device=values.device)
    return values[keep].mean()


class _Sorted:
    """The top ``k`` (all when None) positions of each query's ranking; tie groups for ``average``."""

    def __init__(
        self,
        s: Tensor,
        y: Tensor,
        m: Tensor,
        ties: str,
        doc_ids: Any = None,
        generator: torch.Generator | None = None,
        *,
        k: int | None = None,
        has_neginf: bool | None = None,
    ) -> None:
        codes = doc_id_codes(doc_ids, s.shape, s.device) if doc_ids is not None else None
        if ties == "random" and generator is None:
            generator = torch.Generator().manual_seed(0)
        self.k = s.shape[1] if k is None else min(k, s.shape[1])
        self.order = sort_order(
            s, m, ties=ties, labels=y, doc_codes=codes, generator=generator,
            k=None if ties == "average" else k, has_neginf=has_neginf,
        )  # fmt: skip
        self.groups: Tensor | None = None
        self.valid: Tensor | None = None
        if ties == "average":
            self.valid = m.gather(1, self.order)
            self.groups = tie_groups(s.masked_fill(~m, float("-inf")).gather(1, self.order))

    def values(self, per_doc: Tensor) -> Tensor:
        """``per_doc`` values (zero at padding) in ranked order ``(batch, k)``; ties averaged for ``average``."""
        v = per_doc.gather(1, self.order)
        if self.groups is None or self.valid is None:
            return v
        w = self.valid.to(v.dtype)
        sums = torch.zeros_like(v).scatter_add_(1, self.groups, v * w)
        counts = torch.zeros_like(v).scatter_add_(1, self.groups, w)
        return ((sums / counts.clamp_min(1.0)).gather(1, self.groups) * w)[:, : self.k]


def _no_average(ties: str, name: str) -> None:
    if ties == "average":
        raise ValueError(f"ties='average' is not defined for {name} (not linear in per-position gains)")


def _dcg_parts(
    scores: Any,
    labels: Any,
    mask: Any,
    k: int | None,
    preset: str | None,
    gain: str | None,
    ties: str | None,
    empty: str | None,
    doc_ids: Any,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor, str]:
    _check_k(k)
    c = _resolve(preset, gain=gain, ties=ties, empty=empty)
    s, y, m, neginf = _prepare(scores, labels, mask)
    n = s.shape[1]
    g = _gain(y, c["gain"])
    srt = _Sorted(s, y, m, c["ties"], doc_ids, generator, k=k, has_neginf=neginf)
    kk = srt.k
    disc = _discount(kk, s.device)
    dcg_v = (srt.values(g) * disc).sum(1)
    ideal = torch.topk(g, kk, dim=1).values if kk < n else torch.sort(g, dim=1, descending=True).values
    idcg = (ideal * disc).sum(1)
    return dcg_v, idcg, ~(y > 0).any(1), c["empty"]


def dcg(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    k: int | None = None,
    preset: str | None = None,
    gain: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DCG@k = Σ_{i≤k} g(y_(i)) / log2(i + 1) over the score-ranked list (1-based i)."""
    v, _, e, emp = _dcg_parts(scores, labels, mask, k, preset, gain, ties, empty, doc_ids, generator)
    return _finish(v, e, emp, reduction)


def ndcg(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    k: int | None = None,
    preset: str | None = None,
    gain: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """NDCG@k = DCG@k / IDCG@k, IDCG over the top-k of all labels of the query; IDCG = 0 → ``empty``."""
    v, idcg, e, emp = _dcg_parts(scores, labels, mask, k, preset, gain, ties, empty, doc_ids, generator)
    return _finish(v / torch.where(idcg > 0, idcg, torch.ones_like(idcg)), e, emp, reduction)


def _binary(
    scores: Any,
    labels: Any,
    mask: Any,
    k: int | None,
    preset: str | None,
    ties: str | None,
    empty: str | None,
    threshold: float,
    doc_ids: Any,
    generator: torch.Generator | None,
    name: str,
    allow_average: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """Ranked relevance ``rel (batch, list)`` (zeroed beyond k), #relevant, #valid, empty flags."""
    _check_k(k)
    c = _resolve(preset, ties=ties, empty=empty)
    if not allow_average:
        _no_average(c["ties"], name)
    s, y, m, neginf = _prepare(scores, labels, mask)
    relevant = ((y > threshold) & m).to(torch.float64)
    srt = _Sorted(s, y, m, c["ties"], doc_ids, generator, k=k, has_neginf=neginf)
    rel = srt.values(relevant)
    n_rel = relevant.sum(1)
    return rel, n_rel, m.sum(1).to(torch.float64), n_rel == 0, c["empty"]


def mrr(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    k: int | None = None,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    relevance_threshold: float = 0.0,
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Reciprocal rank 1 / rank of the first relevant document within the top k (0 if none there)."""
    rel, _, _, e, emp = _binary(
        scores, labels, mask, k, preset, ties, empty, relevance_threshold, doc_ids, generator, "mrr"
    )
    hit = rel > 0
    first = hit.to(torch.int8).argmax(1).to(torch.float64)
    return _finish(torch.where(hit.any(1), 1.0 / (first + 1.0), 0.0), e, emp, reduction)


def map(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    k: int | None = None,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    relevance_threshold: float = 0.0,
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Average precision AP@k = Σ_{i≤k} rel_i · P@i / R with R = #relevant in the query (trec_eval, ranx)."""
    rel, n_rel, _, e, emp = _binary(
        scores, labels, mask, k, preset, ties, empty, relevance_threshold, doc_ids, generator, "map"
    )
    pos = torch.arange(1, rel.shape[1] + 1, dtype=torch.float64, device=rel.device)
    ap = (rel * rel.cumsum(1) / pos).sum(1) / n_rel.clamp_min(1.0)
    return _finish(ap, e, emp, reduction)


mean_average_precision = map


def precision(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    k: int | None = None,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    relevance_threshold: float = 0.0,
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """P@k = #relevant in the top k / k (k = number of real documents when None; trec_eval, ranx)."""
    rel, _, n_valid, e, emp = _binary(
        scores,
        labels,
        mask,
        k,
        preset,
        ties,
        empty,
        relevance_threshold,
        doc_ids,
        generator,
        "precision",
        True,
    )
    denom = n_valid.clamp_min(1.0) if k is None else torch.full_like(n_valid, float(k))
    return _finish(rel.sum(1) / denom, e, emp, reduction)


def recall(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    k: int | None = None,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    relevance_threshold: float = 0.0,
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """R@k = #relevant in the top k / #relevant in the query."""
    rel, n_rel, _, e, emp = _binary(
        scores, labels, mask, k, preset, ties, empty, relevance_threshold, doc_ids, generator, "recall", True
    )
    return _finish(rel.sum(1) / n_rel.clamp_min(1.0), e, emp, reduction)


def arp(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Average relevance position ARP = Σ_i rank_i · y_i / Σ_i y_i (TF-Ranking; lower is better)."""
    c = _resolve(preset, ties=ties, empty=empty)
    s, y, m, neginf = _prepare(scores, labels, mask)
    srt = _Sorted(s, y, m, c["ties"], doc_ids, generator, has_neginf=neginf)
    pos = torch.arange(1, s.shape[1] + 1, dtype=torch.float64, device=s.device)
    total = y.sum(1)
    value = (srt.values(y) * pos).sum(1) / torch.where(total > 0, total, torch.ones_like(total))
    return _finish(value, total <= 0, c["empty"], reduction)


def opa(
    scores: Any,
    labels: Any,
    mask: Any = None,
    *,
    empty: str | None = None,
    preset: str | None = None,
    reduction: str = "mean",
    chunk_size: int = 1024,
) -> Tensor:
    """Ordered pair accuracy: over pairs with y_i > y_j, the fraction with s_i > s_j (ties count wrong).

    Averaged per query (macro); queries without such a pair are ``empty``.
    """
    c = _resolve(preset, empty=empty)
    s, y, m, _ = _prepare(scores, labels, mask)
    correct, pairs = [], []
    correct.append(torch.zeros(0, dtype=torch.int64, device=s.device))
    pairs.append(torch.zeros(0, dtype=torch.int64, device=s.device))
    for lo in range(0, s.shape[0], chunk_size):
        sl, yl, ml = s[lo : lo + chunk_size], y[lo : lo + chunk_size], m[lo : lo + chunk_size]
        valid = (yl[:, :, None] > yl[:, None, :]) & ml[:, :, None] & ml[:, None, :]
        pairs.append(valid.sum((1, 2)))
        correct.append((valid & (sl[:, :, None] > sl[:, None, :])).sum((1, 2)))
    n_pairs = torch.cat(pairs).to(torch.float64)
    value = torch.cat(correct).to(torch.float64) / n_pairs.clamp_min(1.0)
    return _finish(value, n_pairs == 0, c["empty"], reduction)


def _alpha_gains(sub_sorted: Tensor, alpha: float) -> Tensor:
    """Per-position alpha gains Σ_t J(d_i, t)(1 − α)^{#earlier docs covering t}: ``(batch, list)``."""
    seen = sub_sorted.cumsum(1) - sub_sorted
    return (sub_sorted * (1.0 - alpha) ** seen).sum(2)


def _alpha_parts(
    scores: Any,
    subtopics: Any,
    mask: Any,
    k: int | None,
    alpha: float,
    preset: str | None,
    ties: str | None,
    empty: str | None,
    doc_ids: Any,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor, str]:
    _check_k(k)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    c = _resolve(preset, ties=ties, empty=empty)
    _no_average(c["ties"], "alpha_ndcg")
    s, sub, m, neginf = _prepare(scores, subtopics, mask, labels_extra_dims=1)
    b, n, t = sub.shape
    srt = _Sorted(s, sub.sum(2), m, c["ties"], doc_ids, generator, has_neginf=neginf)
    sub_sorted = sub.gather(1, srt.order[:, :, None].expand(b, n, t))
    kk = n if k is None else min(k, n)
    disc = _discount(n, s.device)
    value = (_alpha_gains(sub_sorted, alpha)[:, :kk] * disc[:kk]).sum(1)
    # greedy ideal ranking (Clarke et al. 2008): pick the doc with the largest marginal alpha gain
    taken = ~m.clone()
    seen = torch.zeros((b, t), dtype=sub.dtype, device=s.device)
    ideal = torch.zeros(b, dtype=sub.dtype, device=s.device)
    rows = torch.arange(b, device=s.device)
    for i in range(kk):
        marg = (sub * (1.0 - alpha) ** seen[:, None, :]).sum(2).masked_fill(taken, -1.0)
        best = marg.argmax(1)
        ideal += marg[rows, best].clamp_min(0.0) * disc[i]
        seen = seen + sub[rows, best] * (~taken[rows, best])[:, None]
        taken[rows, best] = True
    return value, ideal, ~(sub > 0).any(2).any(1), c["empty"]


def alpha_dcg(
    scores: Any,
    subtopics: Any,
    mask: Any = None,
    *,
    alpha: float = 0.5,
    k: int | None = None,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """alpha-DCG@k = Σ_{i≤k} Σ_t J(d_i,t)(1−α)^{r_{t,i}} / log2(i+1), r_{t,i} = #docs above i covering t.

    ``subtopics: (batch, list, n_subtopics)`` holds judgements J ≥ 0 (usually 0/1).
    """
    v, _, e, emp = _alpha_parts(scores, subtopics, mask, k, alpha, preset, ties, empty, doc_ids, generator)
    return _finish(v, e, emp, reduction)


def alpha_ndcg(
    scores: Any,
    subtopics: Any,
    mask: Any = None,
    *,
    alpha: float = 0.5,
    k: int | None = None,
    preset: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    reduction: str = "mean",
    doc_ids: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """alpha-NDCG@k = alpha-DCG@k / alpha-DCG@k of the greedy ideal ranking (Clarke et al. 2008)."""
    v, ideal, e, emp = _alpha_parts(
        scores, subtopics, mask, k, alpha, preset, ties, empty, doc_ids, generator
    )
    return _finish(v / torch.where(ideal > 0, ideal, torch.ones_like(ideal)), e, emp, reduction)


METRICS: dict[str, Callable[..., Tensor]] = {
    "ndcg": ndcg,
    "dcg": dcg,
    "mrr": mrr,
    "map": map,
    "precision": precision,
    "recall": recall,
    "arp": arp,
    "opa": opa,
    "alpha_ndcg": alpha_ndcg,
    "alpha_dcg": alpha_dcg,
}
