"""Shared helpers for padded ranking lists: input coercion, masked sorting and ranks.

Layout everywhere: ``scores, labels: (batch, list_size)``, ``mask: (batch, list_size)`` bool with
True marking a real document. Padded entries may hold anything (NaN, -1) and are never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "TIES",
    "as_padded",
    "doc_id_codes",
    "pad_sequences",
    "ranks_from_order",
    "sort_order",
    "tie_groups",
]

TIES = ("stable", "pessimistic", "optimistic", "average", "trec_eval", "random")

ArrayLike = Any  # Tensor | np.ndarray | Sequence of 1-D arrays


def _is_ragged(x: ArrayLike) -> bool:
    return isinstance(x, list | tuple) and (len(x) == 0 or not np.isscalar(x[0]))


def _scatter_rows(flat: Tensor, lengths: Tensor, fill: float) -> tuple[Tensor, Tensor]:
    """Place concatenated rows ``flat (total, *tail)`` into ``(batch, max_len, *tail)`` + mask, no loop."""
    b = lengths.shape[0]
    n = int(lengths.max()) if b else 0
    out = torch.full((b, n, *flat.shape[1:]), fill, dtype=flat.dtype)
    mask = torch.zeros((b, n), dtype=torch.bool)
    rows = torch.repeat_interleave(torch.arange(b), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    cols = torch.arange(flat.shape[0]) - torch.repeat_interleave(starts, lengths)
    out[rows, cols] = flat
    mask[rows, cols] = True
    return out, mask


def _as_tensor(x: ArrayLike) -> Tensor:
    return x.detach().cpu() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))


def pad_sequences(
    seqs: Sequence[ArrayLike], *, dtype: torch.dtype, fill: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Pad per-query arrays ``(len_q, *tail)`` into ``(batch, max_len, *tail)`` plus a bool mask ``(batch, max_len)``."""
    parts = [_as_tensor(x) for x in seqs]
    parts = [p.reshape(-1) if p.ndim <= 1 else p for p in parts]
    lengths = torch.tensor([p.shape[0] for p in parts], dtype=torch.int64)
    if not parts:
        return torch.zeros((0, 0), dtype=dtype), torch.zeros((0, 0), dtype=torch.bool)
    flat = torch.cat([p.to(dtype) for p in parts])
    return _scatter_rows(flat, lengths, fill)


def _to_2d(x: ArrayLike, name: str, dtype: torch.dtype | None) -> tuple[Tensor, Tensor | None]:
    if _is_ragged(x):
        t, m = pad_sequences(x, dtype=dtype or torch.float64)
        return t, m
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be (batch, list_size) or a sequence of 1-D arrays, got shape {tuple(t.shape)}"
        )
    return (t.to(dtype) if dtype is not None else t), None


def as_padded(
    scores: ArrayLike,
    labels: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    dtype: torch.dtype | None = torch.float64,
    labels_extra_dims: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Coerce padded or ragged input to ``(scores, labels, mask)`` tensors on the scores' device.

    ``labels_extra_dims`` allows trailing label dimensions (alpha-NDCG subtopics: ``(batch, list, T)``).
    Padded label entries are zeroed and padded scores are left untouched.
    """
    ragged = _is_ragged(scores)
    s, m_s = _to_2d(scores, "scores", dtype)
    if labels_extra_dims:
        if _is_ragged(labels):
            y, _ = pad_sequences(labels, dtype=dtype or torch.float64)
        else:
            y = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
            if y.ndim == 1 + labels_extra_dims:
                y = y.unsqueeze(0)
            y = y.to(dtype) if dtype is not None else y
    else:
        y, _ = _to_2d(labels, "labels", dtype)
    y = y.to(s.device)
    if y.shape[:2] != s.shape:
        raise ValueError(f"labels shape {tuple(y.shape)} does not match scores shape {tuple(s.shape)}")
    if mask is None:
        m = m_s if m_s is not None else torch.ones(s.shape, dtype=torch.bool, device=s.device)
    else:
        if ragged:
            raise ValueError("mask must be None for ragged (sequence) input; it is built from the lengths")
        m = mask if isinstance(mask, Tensor) else torch.as_tensor(np.asarray(mask))
        if m.ndim == 1:
            m = m.unsqueeze(0)
        if m.shape != s.shape:
            raise ValueError(f"mask shape {tuple(m.shape)} does not match scores shape {tuple(s.shape)}")
        m = m.to(device=s.device, dtype=torch.bool)
    m_lab = m.reshape(*m.shape, *([1] * labels_extra_dims))
    y = torch.where(m_lab, y, torch.zeros((), dtype=y.dtype, device=y.device))
    return s, y, m


def doc_id_codes(doc_ids: ArrayLike, shape: torch.Size, device: torch.device) -> Tensor:
    """Integer codes ``(batch, list_size)`` whose numeric order is the doc-id order.

    Tensors/arrays of numbers compare numerically; Python sequences of ids are compared as strings
    (``str(id)``, code-point order = ``strcmp`` order of UTF-8), which is what trec_eval does.
    """
    numeric = isinstance(doc_ids, Tensor) or (isinstance(doc_ids, np.ndarray) and doc_ids.dtype.kind in "iuf")
    if numeric:
        t = torch.as_tensor(doc_ids, device=device)
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.shape != shape:
            raise ValueError(f"doc_ids shape {tuple(t.shape)} does not match scores shape {tuple(shape)}")
        return t
    rows = [[str(d) for d in row] for row in doc_ids]
    if len(rows) != shape[0] or any(len(r) > shape[1] for r in rows):
        raise ValueError("doc_ids must hold one sequence of ids per query, no longer than the list")
    flat = np.array([d for r in rows for d in r], dtype=str)
    _, inverse = np.unique(flat, return_inverse=True)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
    codes, _ = _scatter_rows(torch.from_numpy(inverse.astype(np.int64).reshape(-1)), lengths, 0)
    if codes.shape[1] < shape[1]:
        codes = torch.nn.functional.pad(codes, (0, shape[1] - codes.shape[1]))
    return codes.to(device)


def sort_order(
    scores: Tensor,
    mask: Tensor,
    *,
    ties: str = "stable",
    labels: Tensor | None = None,
    doc_codes: Tensor | None = None,
    generator: torch.Generator | None = None,
    k: int | None = None,
    has_neginf: bool | None = None,
) -> Tensor:
    """Permutation ``(batch, min(k, list_size))`` ranking real documents by descending score, padding last.

    Tie policies: ``stable``/``average`` keep input order, ``trec_eval`` puts the larger doc id first
    (reverse input order without ``doc_codes``), ``pessimistic``/``optimistic`` put the lowest/highest
    label first, ``random`` draws a permutation from ``generator``. With ``k`` < list_size only the top
    k are returned, found with ``topk``; rows with a tie inside the top k + 1 fall back to a full
    stable sort, so the result equals the first k columns of the full sort. ``has_neginf`` (any real
    score = -inf) is computed when not given.
    """
    b, n = scores.shape
    kk = n if k is None else min(k, n)
    pre: Tensor | None = None
    flip = False
    if ties == "trec_eval":
        if doc_codes is None:
            flip = True
        else:
            pre = torch.sort(doc_codes, dim=1, descending=True, stable=True).indices
    elif ties in ("pessimistic", "optimistic"):
        if labels is None:
            raise ValueError(f"ties={ties!r} needs labels")
        pre = torch.sort(labels, dim=1, descending=ties == "optimistic", stable=True).indices
    elif ties == "random":
        rnd = torch.rand((b, n), generator=generator, dtype=torch.float64).to(scores.device)
        pre = torch.argsort(rnd, dim=1)
    elif ties not in ("stable", "average"):
        raise ValueError(f"unknown ties {ties!r}; expected one of {TIES}")
    key = scores.masked_fill(~mask, float("-inf"))
    if flip:
        key = key.flip(1)
    elif pre is not None:
        key = key.gather(1, pre)
    if has_neginf is None:
        has_neginf = bool((torch.isneginf(scores) & mask).any())
    if kk < n and not has_neginf:
        vals, idx = torch.topk(key, kk + 1, dim=1)
        # ties among -inf are padding only (no real -inf here): their order is irrelevant
        tied = ((vals[:, 1:] == vals[:, :-1]) & ~torch.isneginf(vals[:, 1:])).any(1)
        order = idx[:, :kk]
        if bool(tied.any()):
            rows = tied.nonzero().squeeze(1)
            order[rows] = torch.sort(key[rows], dim=1, descending=True, stable=True).indices[:, :kk]
    else:
        order = torch.sort(key, dim=1, descending=True, stable=True).indices
        if has_neginf:
            # real -inf scores tie with padding: push padding behind them, keeping the order otherwise
            valid = mask.flip(1) if flip else (mask.gather(1, pre) if pre is not None else mask)
            pad_last = torch.sort((~valid.gather(1, order)).to(torch.int8), dim=1, stable=True).indices
            order = order.gather(1, pad_last)
        order = order[:, :kk]
    if flip:
        return (n - 1) - order
    return pre.gather(1, order) if pre is not None else order


def tie_groups(sorted_scores: Tensor) -> Tensor:
    """Group index ``(batch, list_size)`` of equal consecutive values in each sorted row (0-based)."""
    new = torch.ones_like(sorted_scores, dtype=torch.int64)
    new[:, 1:] = (sorted_scores[:, 1:] != sorted_scores[:, :-1]).to(torch.int64)
    return new.cumsum(1) - 1


def ranks_from_order(order: Tensor) -> Tensor:
    """1-based rank ``(batch, list_size)`` of every item given a sort permutation."""
    pos = torch.arange(1, order.shape[1] + 1, device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, pos)
