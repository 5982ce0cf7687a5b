"""Connected-component labelling as a :class:`labworks.core.KernelOp`, plus per-instance statistics.

- ``connected_components(mask, connectivity=4)``: ``mask`` bool ``(H, W)`` or ``(B, H, W)`` →
  int32 labels of the same shape, 0 = background, components numbered ``1..n`` per image in the
  raster-scan order of their first pixel, exactly like ``scipy.ndimage.label`` (connectivity 4 =
  scipy's default cross structure, 8 = the full 3 x 3 structure).

  * Reference (plain PyTorch, the CPU path and test oracle): run-based union-find. Horizontal runs
    of foreground pixels become the nodes (a ``cumsum`` over run starts numbers them in raster
    order); vertical (and, for 8-connectivity, diagonal) contacts between runs of adjacent rows are
    the edges; then rounds of "hook the larger root under the smaller one" (``scatter_reduce
    amin``) + pointer jumping until no edge joins two roots. Every step is a vectorised tensor op;
    the number of rounds is small (logarithmic-ish in practice; a 1-pixel spiral needs more).
  * Triton (CUDA): pixel-level label equivalence (Playne-Equihua / Komura style). ``L[i] = i``;
    then repeat { hook: for every foreground pixel and each backward neighbour (left, up, plus the
    two upper diagonals for 8-connectivity) with a different label, ``atomic_min(L[hi], lo)`` and
    raise a device-side flag; compress: ``L[i] = find(i)`` with path halving } until a hook pass
    changes nothing (the host reads the flag once per pass). The root of every component is then its minimum linear index, which gives scipy's numbering
    after a per-image ``cumsum`` over roots (torch ops).

  Both paths end with the same relabelling, so they agree bit for bit with each other and with
  scipy. On CPU ``scipy.ndimage.label`` is faster than the reference (see
  ``benchmarks/openbuildings/bench_postprocess.py``); :mod:`labworks.openbuildings.instances` uses
  scipy for CPU arrays and this op for CUDA tensors.

- ``instance_stats(labels, prob, n)``: area, probability sum/mean, bounding box and centroid of
  instances ``1..n`` with ``bincount`` / ``scatter_reduce`` (plain torch).
"""

from __future__ import annotations

import torch

from labworks.core import KernelOp, has_triton

__all__ = ["connected_components", "instance_stats"]

_INT32_LIMIT = 2**31 - 2**16  # int32 pixel offsets, with room for the last block's lanes


def _check_mask(mask: torch.Tensor, connectivity: int) -> tuple[int, int, int]:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"connected_components: mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() not in (2, 3):
        raise ValueError(
            f"connected_components: mask must be (H, W) or (B, H, W), got shape {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"connected_components: mask must be a bool tensor, got {mask.dtype}")
    if connectivity not in (4, 8):
        raise ValueError(f"connected_components: connectivity must be 4 or 8, got {connectivity}")
    b = mask.shape[0] if mask.dim() == 3 else 1
    h, w = mask.shape[-2], mask.shape[-1]
    return b, h, w


def _cc_reference(mask: torch.Tensor, connectivity: int = 4) -> torch.Tensor:
    """Run-based union-find in vectorised PyTorch; see the module docstring."""
    b, h, w = _check_mask(mask, connectivity)
    fg = mask.reshape(b, h, w)
    if fg.numel() == 0:
        return torch.zeros(mask.shape, dtype=torch.int32, device=mask.device)
    # 1. horizontal runs: a run starts at a foreground pixel whose left neighbour is background
    start = fg.clone()
    start[:, :, 1:] &= ~fg[:, :, :-1]
    run_id = torch.cumsum(start.reshape(-1), 0).reshape(b, h, w)  # 1..R in raster order
    n_runs = int(run_id.reshape(-1)[-1])
    if n_runs == 0:
        return torch.zeros(mask.shape, dtype=torch.int32, device=mask.device)
    run_id = run_id * fg
    # 2. edges between runs of adjacent rows (one per contiguous vertical overlap)
    up = fg[:, :-1, :] & fg[:, 1:, :]
    first = up.clone()
    first[:, :, 1:] &= ~up[:, :, :-1]
    src = [run_id[:, :-1, :][first]]
    dst = [run_id[:, 1:, :][first]]
    if connectivity == 8:
        diag = fg[:, :-1, :-1] & fg[:, 1:, 1:]  # (r, c) - (r+1, c+1)
        anti = fg[:, :-1, 1:] & fg[:, 1:, :-1]  # (r, c+1) - (r+1, c)
        src += [run_id[:, :-1, :-1][diag], run_id[:, :-1, 1:][anti]]
        dst += [run_id[:, 1:, 1:][diag], run_id[:, 1:, :-1][anti]]
    a, c = torch.cat(src), torch.cat(dst)
    # 3. union-find over runs: parent[i] <= i always, so each root is its component's first run
    parent = torch.arange(n_runs + 1, device=mask.device)
    while a.numel():
        ra, rc = parent[a], parent[c]
        differ = ra != rc
        if not bool(differ.any()):
            break
        a, c, ra, rc = a[differ], c[differ], ra[differ], rc[differ]  # joined edges stay joined
        parent.scatter_reduce_(0, torch.maximum(ra, rc), torch.minimum(ra, rc), reduce="amin")
        while True:  # pointer jumping to full compression
            nxt = parent[parent]
            if torch.equal(nxt, parent):
                break
            parent = nxt
    # 4. roots -> consecutive ids per image, in order of their first run (= first pixel)
    is_root = parent == torch.arange(n_runs + 1, device=mask.device)
    is_root[0] = False
    ids = torch.cumsum(is_root, 0)
    last_run = torch.cumsum(start.reshape(b, -1).sum(1), 0)  # last run id of each image
    before = torch.cat([ids.new_zeros(1), ids[last_run[:-1]]])  # roots in earlier images
    comp = ids[parent]
    out = (comp[run_id] - before[:, None, None]) * fg
    return out.to(torch.int32).reshape(mask.shape)


def _cc_fake(mask: torch.Tensor, connectivity: int = 4) -> torch.Tensor:
    _check_mask(mask, connectivity)
    return torch.empty(mask.shape, dtype=torch.int32, device=mask.device)


connected_components = KernelOp("labworks_openbuildings::connected_components", _cc_reference, fake=_cc_fake)


def _relabel_roots(fg: torch.Tensor, roots: torch.Tensor) -> torch.Tensor:
    """``fg`` (B, H, W) bool, ``roots`` (B*H*W,) int32 global index of each pixel's root (the
    component's minimum linear index) → int32 (B, H, W) labels numbered per image like scipy."""
    b = fg.shape[0]
    flat_fg = fg.reshape(-1)
    idx = torch.arange(flat_fg.numel(), device=fg.device)
    is_root = flat_fg & (roots.to(torch.int64) == idx)
    ids = torch.cumsum(is_root.reshape(b, -1).to(torch.int32), 1, dtype=torch.int32).reshape(-1)
    out = torch.where(flat_fg, ids[roots.to(torch.int64)], 0)
    return out.to(torch.int32).reshape(fg.shape)


if has_triton():
    import triton
    import triton.language as tl

    @triton.jit
    def _cc_hook_pair(fg_ptr, lab_ptr, flag_ptr, la, nb, m):
        """Hook the labels of pixel ``a`` (label ``la``) and its neighbour ``nb`` where they differ."""
        fb = tl.load(fg_ptr + nb, mask=m, other=0) != 0
        m = m & fb
        lb = tl.load(lab_ptr + nb, mask=m, other=0)
        d = m & (la != lb)
        lo = tl.minimum(la, lb)
        hi = tl.maximum(la, lb)
        tl.atomic_min(lab_ptr + hi, lo, mask=d)
        changed = tl.max(d.to(tl.int32), axis=0)
        tl.atomic_max(flag_ptr, changed, mask=changed > 0)

    @triton.jit
    def _cc_hook_kernel(fg_ptr, lab_ptr, flag_ptr, n, H, W, CONN8: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inb = offs < n
        f = tl.load(fg_ptr + offs, mask=inb, other=0) != 0
        m = inb & f
        col = offs % W
        row = (offs // W) % H
        la = tl.load(lab_ptr + offs, mask=m, other=0)
        _cc_hook_pair(fg_ptr, lab_ptr, flag_ptr, la, offs - 1, m & (col > 0))
        _cc_hook_pair(fg_ptr, lab_ptr, flag_ptr, la, offs - W, m & (row > 0))
        if CONN8:
            _cc_hook_pair(fg_ptr, lab_ptr, flag_ptr, la, offs - W - 1, m & (row > 0) & (col > 0))
            _cc_hook_pair(fg_ptr, lab_ptr, flag_ptr, la, offs - W + 1, m & (row > 0) & (col < W - 1))

    @triton.jit
    def _cc_compress_kernel(fg_ptr, lab_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inb = offs < n
        m = inb & (tl.load(fg_ptr + offs, mask=inb, other=0) != 0)
        x = offs
        p = tl.load(lab_ptr + x, mask=m, other=0)
        # find with path halving: L[x] <- L[L[x]], x <- L[x]. Every value written is an ancestor
        # of x in a forest that no hook changes during this kernel, so concurrent walks only
        # shorten each other's paths (long chains, e.g. a 1-pixel snake, collapse together).
        walk = m & (p != x)
        while tl.max(walk.to(tl.int32), axis=0) > 0:
            gp = tl.load(lab_ptr + p, mask=walk, other=0)
            tl.store(lab_ptr + x, gp, mask=walk)
            x = tl.where(walk, gp, x)
            p = tl.load(lab_ptr + x, mask=walk, other=0)
            walk = walk & (p != x)
        tl.store(lab_ptr + offs, x, mask=m)

    _BLOCK = 1024

    @connected_components.triton
    def _cc_triton(mask: torch.Tensor, connectivity: int = 4) -> torch.Tensor:
        b, h, w = _check_mask(mask, connectivity)
        n = b * h * w
        if n == 0:
            return torch.zeros(mask.shape, dtype=torch.int32, device=mask.device)
        if n > _INT32_LIMIT:
            raise ValueError(
                f"connected_components (Triton): {n} pixels exceed the int32 index range; split the batch"
            )
        fg = mask.reshape(b, h, w).contiguous()
        fg8 = fg.view(torch.uint8).reshape(-1)
        labels = torch.arange(n, dtype=torch.int32, device=mask.device)
        flag = torch.zeros(1, dtype=torch.int32, device=mask.device)
        grid = (triton.cdiv(n, _BLOCK),)
        while True:
            flag.zero_()
            _cc_hook_kernel[grid](fg8, labels, flag, n, h, w, CONN8=connectivity == 8, BLOCK=_BLOCK)
            _cc_compress_kernel[grid](fg8, labels, n, BLOCK=_BLOCK)
            if int(flag.item()) == 0:
                break
        return _relabel_roots(fg, labels).reshape(mask.shape)


def instance_stats(labels: torch.Tensor, prob: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """Per-instance statistics of ``labels`` (H, W) int (0 = background, ids ``1..n``) over ``prob``
    (H, W) float. Returns tensors of length ``n`` (row ``k`` = instance ``k + 1``):

    - ``area`` int64: pixel count;
    - ``prob_sum`` / ``confidence`` float64: sum and mean of ``prob`` inside (the MS confidence);
    - ``bbox`` int64 (n, 4): ``rmin, cmin, rmax, cmax`` (inclusive pixel indices);
    - ``row_sum`` / ``col_sum`` int64: sums of the pixel row / column indices (exact integers, for
      seam-safe centroid tests);
    - ``centroid`` float64 (n, 2): mean ``(row, col)`` index of the pixels, i.e. pixel-centre
      coordinates where pixel ``(r, c)`` has its centre at ``(r, c)`` (``(r + 0.5, c + 0.5)`` in
      rasterio's corner convention). Instances without pixels get NaN confidence/centroid.
    """
    if labels.dim() != 2 or prob.shape != labels.shape:
        raise ValueError(
            f"instance_stats: labels and prob must be (H, W) of the same shape, got "
            f"{tuple(labels.shape)} and {tuple(prob.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"instance_stats: labels must be an integer tensor, got {labels.dtype}")
    if n < 0:
        raise ValueError(f"instance_stats: n must be >= 0, got {n}")
    lab = labels.reshape(-1)
    if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) > n):
        raise ValueError(
            f"instance_stats: labels must lie in [0, {n}], got [{int(lab.min())}, {int(lab.max())}]"
        )
    w = labels.shape[1]
    dev = labels.device
    pix = torch.nonzero(lab, as_tuple=True)[0]  # foreground only: buildings cover a small fraction
    k = lab[pix].to(torch.int64)
    rows = torch.div(pix, w, rounding_mode="floor")
    cols = pix - rows * w
    area = torch.bincount(k, minlength=n + 1)[1:]
    psum = torch.bincount(k, weights=prob.reshape(-1)[pix].to(torch.float64), minlength=n + 1)[1:]
    row_sum = torch.zeros(n + 1, dtype=torch.int64, device=dev).index_add_(0, k, rows)[1:]
    col_sum = torch.zeros(n + 1, dtype=torch.int64, device=dev).index_add_(0, k, cols)[1:]
    big = max(labels.shape) + 1
    bbox = torch.stack(
        [
            torch.full((n + 1,), big, device=dev).scatter_reduce(0, k, rows, "amin")[1:],
            torch.full((n + 1,), big, device=dev).scatter_reduce(0, k, cols, "amin")[1:],
            torch.full((n + 1,), -1, device=dev).scatter_reduce(0, k, rows, "amax")[1:],
            torch.full((n + 1,), -1, device=dev).scatter_reduce(0, k, cols, "amax")[1:],
        ],
        1,
    )
    a = area.to(torch.float64)
    with torch.no_grad():
        conf = psum / a
        centroid = torch.stack([row_sum / a, col_sum / a], 1)
    return {
        "area": area,
        "prob_sum": psum,
        "confidence": conf,
        "bbox": bbox,
        "row_sum": row_sum,
        "col_sum": col_sum,
        "centroid": centroid,
    }
