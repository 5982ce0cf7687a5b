"""Fidelity report against MuJoCo on the same MJCF.

1. Trajectories of a contact-free system (gymnasium's Reacher under fixed controls, float64): the largest
   joint-position difference over the horizon, for MuJoCo's RK4 and for Euler.
2. Conservation (after Erez, Tassa & Todorov 2015): a free-floating articulated body (gymnasium's Humanoid
   without gravity, contacts, limits, springs, damping or armature) with random initial velocities; drift of
   linear momentum, angular momentum and energy after a fixed simulated time, against the time step, for
   rigidsim and MuJoCo side by side.

Needs the ``mujoco`` package (``pip install 'labworks-rigidsim[mujoco]'``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from labworks.core import atomic_write_text
from labworks.rigidsim.envs.base import gymnasium_asset
from labworks.rigidsim.kinematics import dynamics
from labworks.rigidsim.mjcf import load_mjcf
from labworks.rigidsim.model import Model
from labworks.rigidsim.physics import step

__all__ = ["conservation", "fidelity_report", "reacher_trajectories"]


def _mujoco():  # type: ignore[no-untyped-def]
    try:
        import mujoco
    except ImportError as e:  # pragma: no cover
        raise ImportError("the fidelity report needs MuJoCo: pip install 'labworks-rigidsim[mujoco]'") from e
    return mujoco


def reacher_trajectories(
    horizon: int = 200, ctrl: tuple[float, float] = (0.02, 0.0), seed: int = 0
) -> dict[str, float]:
    """Max |qpos difference| (rad) between rigidsim and MuJoCo over ``horizon`` steps of 0.01 s
    (controls small enough that no joint limit engages)."""
    mujoco = _mujoco()
    path = gymnasium_asset("reacher.xml")
    spec = load_mjcf(path)
    rng = np.random.default_rng(seed)
    qpos0 = spec.qpos0() + 0.1 * rng.standard_normal(spec.nq)
    qvel0 = 0.05 * rng.standard_normal(spec.nv)
    qvel0[2:] = 0.0  # the target stays where it is
    out: dict[str, float] = {}
    for integ in ("rk4", "euler"):
        ref = mujoco.MjModel.from_xml_path(str(path))
        ref.opt.integrator = (
            mujoco.mjtIntegrator.mjINT_RK4 if integ == "rk4" else mujoco.mjtIntegrator.mjINT_EULER
        )
        data = mujoco.MjData(ref)
        data.qpos[:], data.qvel[:], data.ctrl[:] = qpos0, qvel0, ctrl
        spec.integrator = integ
        model = Model.from_spec(spec, dtype=torch.float64)
        q, qd = torch.tensor(qpos0)[None], torch.tensor(qvel0)[None]
        u = torch.tensor(ctrl, dtype=torch.float64)[None]
        err = 0.0
        for _ in range(horizon):
            mujoco.mj_step(ref, data)
            q, qd = step(model, q, qd, u)
            err = max(err, float(np.abs(q[0].numpy() - data.qpos).max()))
        out[integ] = err
    return out


def _free_body_spec():  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(load_mjcf(gymnasium_asset("humanoid.xml")))
    spec.gravity = np.zeros(3)
    n = spec.njnt
    spec.jnt_limited = [False] * n
    spec.jnt_damping = [0.0] * n
    spec.jnt_stiffness = [0.0] * n
    spec.jnt_armature = [0.0] * n
    spec.geom_contype = [0] * len(spec.geom_contype)
    spec.geom_conaffinity = [0] * len(spec.geom_conaffinity)
    return spec


def _our_invariants(model: Model, q: torch.Tensor, qd: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    dyn = dynamics(model, q, qd)
    mass = model.body_mass
    p = (mass[:, None] * dyn.com_vel[0]).sum(0)
    rot = dyn.kin.xrot[0]
    inertia = rot @ model.body_inertia @ rot.transpose(-1, -2)
    spin = (inertia @ dyn.ang_vel[0].unsqueeze(-1)).squeeze(-1)
    orbital = torch.linalg.cross(dyn.kin.com[0], mass[:, None] * dyn.com_vel[0])
    energy = 0.5 * float(qd[0] @ dyn.mass_matrix[0] @ qd[0])
    return p.numpy(), (spin + orbital).sum(0).numpy(), energy


Invariants = tuple[np.ndarray, np.ndarray, float]


def _append_drift(row: dict[str, list[float]], h: float, before: Invariants, after: Invariants) -> None:
    """Append dt and the drift of linear/angular momentum (norm) and energy (relative) to a result row."""
    (p0, l0, e0), (p1, l1, e1) = before, after
    row["dt"].append(h)
    row["linear"].append(float(np.linalg.norm(p1 - p0)))
    row["angular"].append(float(np.linalg.norm(l1 - l0)))
    row["energy"].append(abs(e1 - e0) / abs(e0))


def _mj_invariants(mujoco, ref, data) -> tuple[np.ndarray, np.ndarray, float]:  # type: ignore[no-untyped-def]
    mujoco.mj_forward(ref, data)
    mujoco.mj_subtreeVel(ref, data)
    mass = ref.body_subtreemass[1]
    com = data.subtree_com[1]
    p = mass * data.subtree_linvel[1]
    # angular momentum about the world origin = about the COM + orbital part
    ang = data.subtree_angmom[1] + np.cross(com, p)
    return p, ang, float(data.energy[1])


def conservation(
    timesteps: tuple[float, ...] = (0.001, 0.002, 0.004, 0.008, 0.016), duration: float = 2.0, seed: int = 0
) -> dict[str, dict[str, list[float]]]:
    """Drift (|final - initial|, energy relative) per engine/integrator and time step."""
    mujoco = _mujoco()
    spec = _free_body_spec()
    rng = np.random.default_rng(seed)
    qvel0 = rng.standard_normal(spec.nv)
    qvel0[:3] *= 0.2
    qpos0 = spec.qpos0()
    results: dict[str, dict[str, list[float]]] = {}
    for integ in ("euler", "rk4"):
        spec.integrator = integ
        model = Model.from_spec(spec, dtype=torch.float64)
        key = f"rigidsim {integ}"
        results[key] = {"dt": [], "linear": [], "angular": [], "energy": []}
        for h in timesteps:
            q, qd = torch.tensor(qpos0)[None], torch.tensor(qvel0)[None]
            p0, l0, e0 = _our_invariants(model, q, qd)
            for _ in range(round(duration / h)):
                q, qd = step(model, q, qd, None, h)
            _append_drift(results[key], h, (p0, l0, e0), _our_invariants(model, q, qd))
    path = str(gymnasium_asset("humanoid.xml"))
    for integ, flag in (("euler", mujoco.mjtIntegrator.mjINT_EULER), ("rk4", mujoco.mjtIntegrator.mjINT_RK4)):
        key = f"mujoco {integ}"
        results[key] = {"dt": [], "linear": [], "angular": [], "energy": []}
        for h in timesteps:
            ref = mujoco.MjModel.from_xml_path(path)
            ref.opt.gravity[:] = 0
            ref.opt.integrator = flag
            ref.opt.timestep = h
            ref.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
            ref.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT | mujoco.mjtDisableBit.mjDSBL_LIMIT
            ref.dof_damping[:] = 0
            ref.dof_armature[:] = 0
            ref.jnt_stiffness[:] = 0
            data = mujoco.MjData(ref)
            data.qpos[:], data.qvel[:] = qpos0, qvel0
            p0, l0, e0 = _mj_invariants(mujoco, ref, data)
            for _ in range(round(duration / h)):
                mujoco.mj_step(ref, data)
            _append_drift(results[key], h, (p0, l0, e0), _mj_invariants(mujoco, ref, data))
    return results


def fidelity_report(out_dir: str | Path) -> dict[str, object]:
    """Run both checks; write ``fidelity.json``, ``fidelity.md`` and ``conservation.png``."""
    from labworks.rigidsim.plots import plot_conservation

    out = Path(out_dir)
    traj = reacher_trajectories()
    cons = conservation()
    plot_conservation(cons, out / "conservation.png")
    lines = [
        "# rigidsim fidelity against MuJoCo",
        "",
        "## Reacher (contact-free), 200 steps of 0.01 s, fixed controls, float64",
        "",
        "| integrator | max |qpos difference| (rad) |",
        "|---|---|",
        *[f"| {k} | {v:.3g} |" for k, v in traj.items()],
        "",
        "## Conservation: free-floating Humanoid (no gravity/contacts/limits/damping), 2 s",
        "",
        "| engine | dt | linear momentum drift | angular momentum drift | relative energy drift |",
        "|---|---|---|---|---|",
    ]
    for key, r in cons.items():
        for i, h in enumerate(r["dt"]):
            lines.append(
                f"| {key} | {h:g} | {r['linear'][i]:.3g} | {r['angular'][i]:.3g} | {r['energy'][i]:.3g} |"
            )
    atomic_write_text(out / "fidelity.md", "\n".join(lines) + "\n")
    report = {"reacher_max_qpos_error": traj, "conservation": cons}
    atomic_write_text(out / "fidelity.json", json.dumps(report, indent=1))
    return report
