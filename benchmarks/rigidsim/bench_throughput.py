"""Ant physics throughput against batch size: rigidsim (eager and torch.compile) vs MuJoCo's C engine
(``mujoco.rollout``, one model per thread) on gymnasium's ant.xml at the same time step (0.01 s), and
Brax's generalized pipeline and MJX on JAX CPU when ``brax`` and ``jax`` are installed (up to
256 envs). Prints steps/s and ratios; writes a scaling plot.

    python benchmarks/rigidsim/bench_throughput.py                       # 1..4096 envs, eager, 2 threads
    python benchmarks/rigidsim/bench_throughput.py --full --compile      # up to 16,384 envs + compiled
    python benchmarks/rigidsim/bench_throughput.py --full --compile --rk4  # + the compiled RK4 step
    python benchmarks/rigidsim/bench_throughput.py --device cuda --full --compile --cuda-graphs
        # on a GPU: eager vs compiled vs compiled + CUDA graphs; ratios to MuJoCo only if it is installed
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch._inductor.config as inductor_config

from labworks.core import atomic_write_text, retain_freed_memory
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
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="also time compile mode 'reduce-overhead' (GPU)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench-output/rigidsim"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as the command line does: no page faults on the step's fresh tensors
    # Inductor's on-disk graph cache does not key on the thread count: a graph compiled earlier for one
    # thread would be reused here and not run in parallel
    inductor_config.fx_graph_cache = False
    path = gymnasium_asset(args.model)
    batches = [1, 16, 64, 256, 1024, 4096] + ([16384] if args.full else [])
    results: dict[str, object] = {"model": args.model, "threads": args.threads, "device": args.device}
    mj: dict[str, float] = {}
    try:
        for integ in ("euler", "rk4"):
            mj[integ] = mujoco_steps_per_second(
                path, nthread=args.threads, integrator=integ, nbatch=256, nstep=200
            )
            print(
                f"mujoco {integ:5s} ({args.threads} threads, rollout 256x200): {mj[integ]:10.0f} steps/s",
                flush=True,
            )
    except ImportError:
        print("mujoco not installed: no ratios (`uv pip install 'labworks-rigidsim[mujoco]'`)")
    results["mujoco"] = mj
    series: dict[str, tuple[list[int], list[float]]] = {}
    modes: list[tuple[bool, str, str | None]] = [(False, "euler", None)]
    modes += [(True, "euler", None)] * args.compile + [(True, "rk4", None)] * args.rk4
    modes += [(True, "euler", "reduce-overhead")] * args.cuda_graphs
    for comp, integ, mode in modes:
        t0 = time.perf_counter()
        label = ("rigidsim compiled" if comp else "rigidsim eager") + (" RK4" if integ == "rk4" else "")
        label += " + graphs" if mode else ""
        # compiled: one compilation per batch size (about a minute each on CPU), so only the large ones
        sizes = [b for b in batches if b >= 1024] if comp else batches
        sps = rigidsim_steps_per_second(
            path, sizes, device=args.device, compile=comp, integrator=integ, mode=mode
        )
        ref = "MuJoCo RK4" if integ == "rk4" else "MuJoCo Euler"
        for b, v in sps.items():
            ratio = f"   x{v / mj[integ]:.2f} vs {ref}" if integ in mj else ""
            print(f"{label:31s} batch {b:6d}: {v:10.0f} steps/s{ratio}", flush=True)
        print(f"  ({label}: {time.perf_counter() - t0:.0f} s incl. compilation)")
        series[label] = (list(sps), list(sps.values()))
        results[label] = sps
    for label, fn in (("Brax generalized (JAX CPU)", _brax_sps), ("MJX (JAX CPU)", _mjx_sps)):
        try:
            sps = fn(path, [b for b in batches if b <= 256])  # slow beyond: see docs
        except ImportError as err:
            print(f"{label}: not installed ({err.name}); `uv pip install brax 'jax[cpu]'` to compare")
            continue
        for b, v in sps.items():
            ratio = f"   x{v / mj['euler']:.3f} vs MuJoCo Euler" if mj else ""
            print(f"{label:26s} batch {b:6d}: {v:10.0f} steps/s{ratio}")
        series[label] = (list(sps), list(sps.values()))
        results[label] = sps
    plot_scaling(
        series,
        args.out / "throughput.png",
        title=f"{args.model}: physics steps/s, "
        + (f"{args.threads} CPU threads" if args.device == "cpu" else args.device),
        hlines={
            f"MuJoCo {name} ({args.threads} thr)": v
            for name, v in (("Euler", mj.get("euler")), ("RK4", mj.get("rk4")))
            if v
        },
    )
    atomic_write_text(args.out / "throughput.json", json.dumps(results, indent=1))
    print(f"plot: {args.out / 'throughput.png'}")


def _euler_xml(path: Path) -> str:
    """The MJCF with Euler integration (Brax supports nothing else; rigidsim's series above is Euler)."""
    return path.read_text().replace('integrator="RK4"', 'integrator="Euler"')


def _time_jax(step, state, batch: int, min_seconds: float = 1.0) -> float:
    import jax

    for _ in range(3):  # the second call may trace again (the state's dtypes settle after one step)
        state = step(state)
    jax.block_until_ready(state)
    n, t0 = 0, time.perf_counter()
    while n < 5 or time.perf_counter() - t0 < min_seconds:
        state = step(state)
        n += 1
    jax.block_until_ready(state)
    return batch * n / (time.perf_counter() - t0)


def _brax_sps(path: Path, sizes: list[int]) -> dict[int, float]:
    """Brax's generalized pipeline (its generalized-coordinate engine) under jit(vmap), same MJCF and dt."""
    import jax
    from brax.generalized import pipeline
    from brax.io import mjcf

    sys_ = mjcf.loads(_euler_xml(path), asset_path=str(path.parent))
    out = {}
    for b in sizes:
        act = jax.random.uniform(jax.random.PRNGKey(0), (b, sys_.act_size()), minval=-0.5, maxval=0.5)
        q = jax.numpy.tile(sys_.init_q, (b, 1))
        state = jax.jit(jax.vmap(lambda q, qd: pipeline.init(sys_, q, qd)))(
            q, jax.numpy.zeros((b, sys_.qd_size()))
        )
        stepper = jax.jit(jax.vmap(lambda s, a: pipeline.step(sys_, s, a)))
        out[b] = _time_jax(lambda s, stepper=stepper, act=act: stepper(s, act), state, b)
    return out


def _mjx_sps(path: Path, sizes: list[int]) -> dict[int, float]:
    """MuJoCo XLA (MJX, Brax's successor engine) under jit(vmap), Euler, same MJCF and dt."""
    import jax
    import mujoco
    from mujoco import mjx

    model = mujoco.MjModel.from_xml_string(_euler_xml(path))
    mx = mjx.put_model(model)
    out = {}
    for b in sizes:
        ctrl = jax.random.uniform(jax.random.PRNGKey(0), (b, model.nu), minval=-0.5, maxval=0.5)
        data0 = mjx.make_data(mx)
        data = jax.vmap(lambda c, data0=data0: data0.replace(ctrl=c))(ctrl)
        out[b] = _time_jax(jax.jit(jax.vmap(lambda d: mjx.step(mx, d))), data, b)
    return out


if __name__ == "__main__":
    main()
