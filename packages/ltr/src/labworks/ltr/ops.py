"""Custom ops over packed lists (``values: (T,)``, ``offsets: (B + 1,)``), each a
:class:`labworks.core.KernelOp`: a plain-PyTorch reference (CPU path, test oracle) and a Triton
kernel for CUDA tensors.

- ``packed_ndcg(scores, labels, offsets, k)`` → ``(B,)`` NDCG@k per list with exponential gain,
  ties broken by input order (LightGBM's convention), lists without a relevant document → 0.
  The kernel ranks each document by counting the documents that outrank it (one program per
  list, documents in registers), so no segmented sort and no padding to the longest list.
- ``pairwise_lambda_loss(scores, labels, offsets, k)`` → ``(B,)`` per-list LambdaRank loss
  ``Σ_{y_i > y_j} |ΔNDCG_ij| · log(1 + exp(−(s_i − s_j)))`` (ranks from the current scores, no
  gradient through them), with its gradient; the kernel computes pair terms tile by tile and
  never materialises the ``n × n`` pair matrix.
"""

from __future__ import annotations

from typing import Any

import torch

from labworks.core import KernelOp, has_triton

__all__ = ["packed_ndcg", "pairwise_lambda_loss"]


def _pad(values: torch.Tensor, offsets: torch.Tensor, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    sizes = offsets[1:] - offsets[:-1]
    n_max = int(sizes.max()) if sizes.numel() else 0
    seg = torch.repeat_interleave(torch.arange(sizes.numel(), device=values.device), sizes)
    pos = torch.arange(values.numel(), device=values.device) - offsets[:-1][seg]
    out = values.new_full((sizes.numel(), n_max), fill)
    out[seg, pos] = values
    mask = torch.zeros(sizes.numel(), n_max, dtype=torch.bool, device=values.device)
    mask[seg, pos] = True
    return out, mask


def _ranks(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """0-based rank of every slot of ``(B, N)`` padded lists: higher score first, ties by position."""
    s = scores.masked_fill(~mask, float("-inf"))
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order))
    return ranks


def _ideal_dcg(labels: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    gains = torch.sort((2.0**labels - 1) * mask, dim=1, descending=True).values
    disc = 1.0 / torch.log2(torch.arange(labels.shape[1], device=labels.device, dtype=labels.dtype) + 2)
    top = torch.arange(labels.shape[1], device=labels.device) < k
    return (gains * disc * top).sum(1)


def _packed_ndcg_ref(
    scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int
) -> torch.Tensor:
    s, mask = _pad(scores, offsets, 0.0)
    y, _ = _pad(labels, offsets, 0.0)
    ranks = _ranks(s, mask)
    gain = (2.0**y - 1) * mask
    dcg = (gain / torch.log2(ranks.to(s.dtype) + 2) * (ranks < k)).sum(1)
    idcg = _ideal_dcg(y, mask, k)
    return torch.where(idcg > 0, dcg / idcg.clamp_min(1e-30), torch.zeros_like(dcg))


def _fake_per_list(scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int) -> torch.Tensor:
    return scores.new_empty(offsets.shape[0] - 1)


packed_ndcg = KernelOp("labworks_ltr::packed_ndcg", _packed_ndcg_ref, fake=_fake_per_list)


def _lambda_terms(
    scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int
) -> tuple[torch.Tensor, ...]:
    s, mask = _pad(scores, offsets, 0.0)
    y, _ = _pad(labels, offsets, 0.0)
    ranks = _ranks(s.detach(), mask)
    disc = 1.0 / torch.log2(ranks.to(s.dtype) + 2)
    idcg = _ideal_dcg(y, mask, k)
    inv = torch.where(idcg > 0, 1.0 / idcg.clamp_min(1e-30), torch.zeros_like(idcg))
    gain = (2.0**y - 1) * mask
    pair = (y[:, :, None] > y[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    top = ranks < k
    pair &= top[:, :, None] | top[:, None, :]  # truncation: skip pairs ranked both below k
    delta = (
        (gain[:, :, None] - gain[:, None, :]).abs()
        * (disc[:, :, None] - disc[:, None, :]).abs()
        * inv[:, None, None]
    )
    diff = s[:, :, None] - s[:, None, :]
    return s, mask, pair, delta, diff


def _pairwise_lambda_ref(
    scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int
) -> torch.Tensor:
    _, _, pair, delta, diff = _lambda_terms(scores, labels, offsets, k)
    return (torch.nn.functional.softplus(-diff) * delta * pair).sum((1, 2))


def _pairwise_lambda_grad_ref(
    scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int, grad_out: torch.Tensor
) -> torch.Tensor:
    _s, mask, pair, delta, diff = _lambda_terms(scores, labels, offsets, k)
    w = -torch.sigmoid(-diff) * delta * pair * grad_out[:, None, None]  # d loss / d s_i for pair (i, j)
    g = w.sum(2) - w.sum(1)
    return g[mask]


def _fake_grad(
    scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int, grad_out: torch.Tensor
) -> torch.Tensor:
    return torch.empty_like(scores)


pairwise_lambda_grad = KernelOp(
    "labworks_ltr::pairwise_lambda_grad", _pairwise_lambda_grad_ref, fake=_fake_grad
)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    scores, labels, offsets, k = inputs
    ctx.save_for_backward(scores, labels, offsets)
    ctx.k = k


def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
    scores, labels, offsets = ctx.saved_tensors
    return pairwise_lambda_grad(scores, labels, offsets, ctx.k, grad.contiguous()), None, None, None


pairwise_lambda_loss = KernelOp(
    "labworks_ltr::pairwise_lambda_loss",
    _pairwise_lambda_ref,
    fake=_fake_per_list,
    backward=_backward,
    setup_context=_setup,
)


if has_triton():
    import triton
    import triton.language as tl

    @triton.jit
    def _rank_of(s_i, idx_i, s_ptr, start, n, ROWS: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
        """0-based rank of each of the ROWS elements i among the list's n (<= BLOCK) documents:
        #{j : s_j > s_i or (s_j == s_i and j < i)}, counted CHUNK documents at a time."""
        rank = tl.zeros([ROWS], dtype=tl.int32)
        for c in range(0, BLOCK // CHUNK):
            idx_j = c * CHUNK + tl.arange(0, CHUNK)
            s_j = tl.load(s_ptr + start + idx_j, mask=idx_j < n, other=float("-inf")).to(tl.float32)
            before = (s_j[None, :] > s_i[:, None]) | (
                (s_j[None, :] == s_i[:, None]) & (idx_j[None, :] < idx_i[:, None])
            )
            before = before & (idx_j[None, :] < n)
            rank += tl.sum(before.to(tl.int32), axis=1)
        return rank

    @triton.jit
    def _load_list(s_ptr, y_ptr, off_ptr, q, k, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
        """List q's scores, labels, exp gains, 0-based ranks by score, and its ideal DCG@k."""
        start = tl.load(off_ptr + q)
        n = tl.load(off_ptr + q + 1) - start
        idx = tl.arange(0, BLOCK)
        valid = idx < n
        s = tl.load(s_ptr + start + idx, mask=valid, other=float("-inf")).to(tl.float32)
        y = tl.load(y_ptr + start + idx, mask=valid, other=0.0).to(tl.float32)
        gain = tl.where(valid, tl.exp2(y) - 1.0, 0.0)
        rank = _rank_of(s, idx, s_ptr, start, n, BLOCK, BLOCK, CHUNK)
        ideal = _rank_of(y, idx, y_ptr, start, n, BLOCK, BLOCK, CHUNK)  # rank by label = the ideal order
        idcg = tl.sum(tl.where(valid & (ideal < k), gain / tl.log2(ideal.to(tl.float32) + 2.0), 0.0), axis=0)
        return start, n, idx, valid, s, y, gain, rank, idcg

    @triton.jit
    def _ndcg_kernel(s_ptr, y_ptr, off_ptr, out_ptr, k, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
        q = tl.program_id(0)
        _, _, _, valid, _, _, gain, rank, idcg = _load_list(s_ptr, y_ptr, off_ptr, q, k, BLOCK, CHUNK)
        dcg = tl.sum(tl.where(valid & (rank < k), gain / tl.log2(rank.to(tl.float32) + 2.0), 0.0), axis=0)
        tl.store(out_ptr + q, tl.where(idcg > 0, dcg / tl.maximum(idcg, 1e-30), 0.0))

    @triton.jit
    def _lambda_kernel(
        s_ptr,
        y_ptr,
        off_ptr,
        gout_ptr,
        loss_ptr,
        grad_ptr,
        k,
        WITH_GRAD: tl.constexpr,
        BLOCK: tl.constexpr,
        CHUNK: tl.constexpr,
    ):
        q = tl.program_id(0)
        start, n, idx, valid, s, y, gain, rank, idcg = _load_list(s_ptr, y_ptr, off_ptr, q, k, BLOCK, CHUNK)
        disc = 1.0 / tl.log2(rank.to(tl.float32) + 2.0)
        inv = tl.where(idcg > 0, 1.0 / tl.maximum(idcg, 1e-30), 0.0)
        top_i = rank < k
        loss = tl.zeros([BLOCK], dtype=tl.float32)
        grad = tl.zeros([BLOCK], dtype=tl.float32)
        for c in range(0, BLOCK // CHUNK):  # pair tiles (BLOCK x CHUNK), never the whole matrix
            jdx = c * CHUNK + tl.arange(0, CHUNK)
            vj = jdx < n
            s_j = tl.load(s_ptr + start + jdx, mask=vj, other=0.0).to(tl.float32)
            y_j = tl.load(y_ptr + start + jdx, mask=vj, other=0.0).to(tl.float32)
            g_j = tl.where(vj, tl.exp2(y_j) - 1.0, 0.0)
            # rank of j (needed for its discount): recount inside the tile
            r_j = _rank_of(s_j, jdx, s_ptr, start, n, CHUNK, BLOCK, CHUNK)
            d_j = 1.0 / tl.log2(r_j.to(tl.float32) + 2.0)
            valid_pair = valid[:, None] & vj[None, :]
            # i outranks j in label: i is the "better" doc
            better = (y[:, None] > y_j[None, :]) & valid_pair & (top_i[:, None] | (r_j < k)[None, :])
            worse = (y_j[None, :] > y[:, None]) & valid_pair & (top_i[:, None] | (r_j < k)[None, :])
            delta = tl.abs(gain[:, None] - g_j[None, :]) * tl.abs(disc[:, None] - d_j[None, :]) * inv
            diff = s[:, None] - s_j[None, :]
            # softplus(-diff) computed stably
            sp = tl.maximum(-diff, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(diff)))
            loss += tl.sum(tl.where(better, sp * delta, 0.0), axis=1)
            if WITH_GRAD:
                sig_neg = 1.0 / (1.0 + tl.exp(diff))  # sigmoid(-diff)
                # pair (i better than j): d/ds_i = -sigmoid(-(s_i - s_j)) * delta; pair (j better than i): +sigmoid(-(s_j - s_i)) * delta
                sig_pos = 1.0 / (1.0 + tl.exp(-diff))  # sigmoid(diff) = sigmoid(-(s_j - s_i))
                grad += tl.sum(
                    tl.where(better, -sig_neg * delta, 0.0) + tl.where(worse, sig_pos * delta, 0.0), axis=1
                )
        if WITH_GRAD:
            g_out = tl.load(gout_ptr + q)
            tl.store(grad_ptr + start + idx, grad * g_out, mask=valid)
        else:
            tl.store(loss_ptr + q, tl.sum(loss, axis=0))

    def _launch_meta(offsets: torch.Tensor) -> tuple[int, int]:
        n_max = int((offsets[1:] - offsets[:-1]).max()) if offsets.numel() > 1 else 1
        block = max(16, triton.next_power_of_2(n_max))
        return block, min(block, 32)

    @packed_ndcg.triton
    def _packed_ndcg_triton(
        scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int
    ) -> torch.Tensor:
        out = torch.empty(offsets.numel() - 1, device=scores.device, dtype=torch.float32)
        block, chunk = _launch_meta(offsets)
        _ndcg_kernel[(out.numel(),)](
            scores.contiguous(), labels.contiguous(), offsets.contiguous(), out, k, BLOCK=block, CHUNK=chunk
        )
        return out.to(scores.dtype)

    @pairwise_lambda_loss.triton
    def _pairwise_lambda_triton(
        scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int
    ) -> torch.Tensor:
        out = torch.empty(offsets.numel() - 1, device=scores.device, dtype=torch.float32)
        block, chunk = _launch_meta(offsets)
        _lambda_kernel[(out.numel(),)](
            scores.contiguous(),
            labels.contiguous(),
            offsets.contiguous(),
            out,
            out,
            out,
            k,
            WITH_GRAD=False,
            BLOCK=block,
            CHUNK=chunk,
        )
        return out.to(scores.dtype)

    @pairwise_lambda_grad.triton
    def _pairwise_lambda_grad_triton(
        scores: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor, k: int, grad_out: torch.Tensor
    ) -> torch.Tensor:
        grad = torch.empty(scores.numel(), device=scores.device, dtype=torch.float32)
        block, chunk = _launch_meta(offsets)
        _lambda_kernel[(offsets.numel() - 1,)](
            scores.contiguous(),
            labels.contiguous(),
            offsets.contiguous(),
            grad_out.float().contiguous(),
            grad,
            grad,
            k,
            WITH_GRAD=True,
            BLOCK=block,
            CHUNK=chunk,
        )
        return grad.to(scores.dtype)
