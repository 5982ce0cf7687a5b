"""Loss weight maps: U-Net distance weights (per-instance EDTs) vs the Gaussian-of-edges map.

Synthetic 512x512 instance maps with ~100 random rectangular buildings (some touching), a batch of 16.
``unet`` runs :func:`unet_weight_map` per image (numpy/scipy, CPU); ``gaussian`` runs the batched torch
:func:`gaussian_edge_weight_map` once on the whole batch (CPU here; ``--device cuda`` to time a GPU).
The brute-force U-Net map (one full-image EDT per building, the textbook O(N·HW) form) is timed on one image
for scale. Prints both timings and the ratio; best of ``--repeat`` runs.

Usage: ``python benchmarks/openbuildings/bench_weights.py [--size 512] [--buildings 100] [--batch 16]
[--threads 1] [--device cpu]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

from labworks.openbuildings.weights import gaussian_edge_weight_map, unet_weight_map


def synthetic_instances(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """``n`` random axis-aligned rectangles (6-24 px sides), ids 1..n, later ones drawn over earlier ones."""
    inst = np.zeros((size, size), np.int32)
    for i in range(1, n + 1):
        h, w = rng.integers(6, 25, size=2)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        inst[r : r + h, c : c + w] = i
    return inst


def brute_unet(inst: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    ids = [i for i in np.unique(inst) if i > 0]
    d = np.sort(np.stack([ndimage.distance_transform_edt(inst != i) for i in ids]), axis=0)
    return np.where(inst == 0, w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2)), 0.0)


def best_of(fn: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--buildings", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--w0", type=float, default=10.0)
    ap.add_argument("--sigma", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-brute", action="store_true", help="skip the brute-force U-Net timing")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    batch = np.stack([synthetic_instances(rng, args.size, args.buildings) for _ in range(args.batch)])
    n_inst = np.mean([len(np.unique(b)) - 1 for b in batch])
    device = torch.device(args.device)
    inst_t = torch.from_numpy(batch).long().to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    kw = {"w0": args.w0, "sigma": args.sigma}

    def run_unet() -> object:
        return [unet_weight_map(b, **kw) for b in batch]

    def run_gauss() -> object:
        return gaussian_edge_weight_map(inst_t, **kw)

    run_gauss()  # warm-up (kernel selection, CUDA context)
    t_unet = best_of(run_unet, args.repeat)
    t_gauss = best_of(run_gauss, args.repeat, sync)
    print(
        f"batch {args.batch} x {args.size}x{args.size}, {n_inst:.0f} visible buildings per image, "
        f"w0={args.w0} sigma={args.sigma}, torch threads={args.threads}"
    )
    print(
        f"  unet_weight_map (numpy, bbox-limited EDTs, per image) : {t_unet * 1e3:9.1f} ms "
        f"({t_unet / args.batch * 1e3:.1f} ms/image)"
    )
    print(
        f"  gaussian_edge_weight_map (torch {device.type}, batched) : {t_gauss * 1e3:9.1f} ms "
        f"({t_gauss / args.batch * 1e3:.1f} ms/image)"
    )
    print(f"  ratio unet / gaussian: {t_unet / t_gauss:.1f}x")
    if not args.no_brute:
        t_brute = best_of(lambda: brute_unet(batch[0], args.w0, args.sigma), 1)
        print(
            f"  brute-force U-Net map (full-image EDT per building), 1 image: {t_brute * 1e3:.1f} ms "
            f"({t_brute / (t_unet / args.batch):.1f}x the bbox-limited version)"
        )


if __name__ == "__main__":
    main()
