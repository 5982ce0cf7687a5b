"""Throughput measurement: rigidsim physics steps per second against batch size, and MuJoCo's C engine
(``mujoco.rollout`` over threads, one model per thread) on the same MJCF and time step."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from labworks.rigidsim.model import load_model
from labworks.rigidsim.physics import compile_step, step

__all__ = ["mujoco_steps_per_second", "rigidsim_steps_per_second"]


def rigidsim_steps_per_second(
    path: str | Path,
    batch_sizes: Sequence[int],
    steps: int = 20,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    integrator: str = "euler",
    compile: bool = False,
    min_seconds: float = 0.5,
    repeats: int = 3,
    mode: str | None = None,
) -> dict[int, float]:
    """Physics steps/s (environment-steps at the model's time step) for each batch size, random controls;
    the best of ``repeats`` timed runs of at least ``min_seconds`` each (compiled, with torch.compile's
    ``mode``: see :func:`compile_step`)."""
    model = load_model(path, device, dtype)
    model.integrator = integrator
    out: dict[int, float] = {}

    def physics(q: torch.Tensor, qd: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return step(model, q, qd, u)

    fn = compile_step(model, mode=mode) if compile else physics
    gen = torch.Generator(device=device).manual_seed(0)
    for b in batch_sizes:
        q = model.qpos0.expand(b, -1).clone()
        qd = torch.zeros(b, model.nv, dtype=dtype, device=device)
        u = (torch.rand(b, model.nu, generator=gen, device=device, dtype=dtype) * 2 - 1) * 0.5
        with torch.no_grad():
            for _ in range(3):
                q, qd = fn(q, qd, u)
            best = 0.0
            for _ in range(repeats):
                if device != "cpu":
                    torch.cuda.synchronize()
                n, t0 = 0, time.perf_counter()
                while n < steps or time.perf_counter() - t0 < min_seconds:
                    q, qd = fn(q, qd, u)
                    n += 1
                if device != "cpu":
                    torch.cuda.synchronize()
                best = max(best, b * n / (time.perf_counter() - t0))
            out[b] = best
    return out


def mujoco_steps_per_second(
    path: str | Path,
    nthread: int = 2,
    nbatch: int = 256,
    nstep: int = 200,
    integrator: str | None = None,
    repeats: int = 3,
) -> float:
    """MuJoCo steps/s with ``mujoco.rollout`` over ``nthread`` threads (nbatch rollouts of nstep steps),
    the best of ``repeats`` runs."""
    import mujoco
    from mujoco import rollout

    model = mujoco.MjModel.from_xml_path(str(path))
    if integrator == "euler":
        model.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    data = [mujoco.MjData(model) for _ in range(nthread)]
    d0 = mujoco.MjData(model)
    state = np.zeros(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS))
    mujoco.mj_getState(model, d0, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    init = np.tile(state, (nbatch, 1))
    rng = np.random.default_rng(0)
    ctrl = rng.uniform(-0.5, 0.5, (nbatch, nstep, model.nu))
    rollout.rollout(model, data, init, ctrl[:, :10])  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rollout.rollout(model, data, init, ctrl)
        best = max(best, nbatch * nstep / (time.perf_counter() - t0))
    return best
