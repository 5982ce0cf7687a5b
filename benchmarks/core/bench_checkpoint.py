"""Checkpoint I/O: labworks safetensors checkpoints (atomic, config + optimizer state in the
header) against the peer a PyTorch user would otherwise reach for, ``torch.save`` /
``torch.load(weights_only=True)``, on the same model and optimizer state.

    python benchmarks/core/bench_checkpoint.py [--params N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from labworks.core import Config, load_checkpoint, save_checkpoint


class BenchConfig(Config):
    width: int = 1024
    depth: int = 4


def _time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _touch(state: dict[str, torch.Tensor]) -> float:
    return sum(float(t.sum()) for t in state.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", type=int, default=20_000_000, help="approximate model size")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    width = 1024
    depth = max(1, args.params // (width * width))
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, width)).sum().backward()
    opt.step()
    cfg = BenchConfig(width=width, depth=depth)
    n = sum(p.numel() for p in model.parameters())

    with tempfile.TemporaryDirectory() as tmp:
        ours_path, peer_path = Path(tmp) / "ours.safetensors", Path(tmp) / "peer.pt"
        ours_save = _time(
            lambda: save_checkpoint(ours_path, model, config=cfg, step=1, optimizer=opt), args.repeats
        )
        peer_save = _time(
            lambda: torch.save(
                {"model": model.state_dict(), "optim": opt.state_dict(), "config": cfg.to_dict()}, peer_path
            ),
            args.repeats,
        )
        # both loads end by reading every model tensor, so lazy (mmap) loading gets no free pass
        ours_load = _time(
            lambda: _touch(load_checkpoint(ours_path, config_cls=BenchConfig).model), args.repeats
        )
        peer_load = _time(lambda: _touch(torch.load(peer_path, weights_only=True)["model"]), args.repeats)
        size_ours, size_peer = ours_path.stat().st_size, peer_path.stat().st_size

    print(
        f"checkpoint of {n / 1e6:.1f}M params + AdamW state ({size_ours / 2**20:.0f} MiB ours, {size_peer / 2**20:.0f} MiB torch.save)"
    )
    print(f"{'':10}{'labworks':>12}{'torch':>12}{'torch/labworks':>16}")
    print(f"{'save':10}{ours_save * 1e3:10.1f}ms{peer_save * 1e3:10.1f}ms{peer_save / ours_save:15.2f}x")
    print(f"{'load':10}{ours_load * 1e3:10.1f}ms{peer_load * 1e3:10.1f}ms{peer_load / ours_load:15.2f}x")
    print("(ratio > 1: labworks is faster; labworks saves also fsync and rename atomically)")


if __name__ == "__main__":
    main()
