"""One simulation step for a batch of environments: smooth dynamics (semi-implicit Euler with implicit
joint damping, or MuJoCo's RK4), then soft contact and joint-limit constraints solved at the velocity level
with a fixed number of projected Jacobi iterations — the same arithmetic for every environment, no
data-dependent branches, differentiable almost everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor

from labworks.rigidsim.contact import collide
from labworks.rigidsim.jacobi import projected_jacobi
from labworks.rigidsim.kinematics import Dynamics, dynamics
from labworks.rigidsim.linalg import spd_inverse, spd_solve
from labworks.rigidsim.math import bmm, cross, quat_integrate, quat_mul
from labworks.rigidsim.model import Model

__all__ = ["EAGER_CHUNK", "applied_forces", "compile_step", "forward", "integrate_pos", "step"]

EAGER_CHUNK = 4096


def applied_forces(m: Model, q: Tensor, qd: Tensor, ctrl: Tensor | None, damping: bool = True) -> Tensor:
    """Actuator + passive (spring, optionally damper) generalized forces, (B, nv).

    ctrl: (B, nu), clipped to each actuator's ctrlrange; None means no actuation."""
    b = q.shape[0]
    f = torch.zeros(b, m.nv, dtype=m.dtype, device=m.device)
    if m.nu and ctrl is not None:
        if ctrl.shape != (b, m.nu):
            raise ValueError(f"ctrl must have shape ({b}, {m.nu}), got {tuple(ctrl.shape)}")
        u = torch.minimum(torch.maximum(ctrl.to(m.dtype), m.act_lo), m.act_hi)
        f = f.index_add(1, m.act_dof, u * m.act_gear)
    if m.spring_q.numel():
        spring = -m.dof_stiffness[m.spring_d] * (q[:, m.spring_q] - m.spring_ref)
        f = f.index_add(1, m.spring_d, spring)
    if damping:
        f = f - m.dof_damping * qd
    return f


def forward(
    m: Model,
    q: Tensor,
    qd: Tensor,
    ctrl: Tensor | None,
    h: float = 0.0,
    inverse: bool = True,
    tree_inverse: bool = True,
) -> tuple[Dynamics, Tensor, Tensor | None]:
    """Unconstrained acceleration. With h > 0 the damping is implicit: (M + h D) qacc = f.

    Returns (dynamics, qacc, inverse of the matrix used, or None with ``inverse=False``: then qacc comes
    from one Cholesky solve, which is cheaper). ``tree_inverse``: compiled, invert with the sparse LDL^T
    (see :func:`~labworks.rigidsim.linalg.spd_inverse`) rather than LAPACK."""
    dyn = dynamics(m, q, qd)
    force = applied_forces(m, q, qd, ctrl) - dyn.bias
    mass = dyn.mass_matrix
    if h > 0:
        mass = mass + torch.diag_embed(h * m.dof_damping).expand_as(mass)
    if not inverse:
        return dyn, spd_solve(mass, force.unsqueeze(-1), m.dof_parent_ids).squeeze(-1), None
    minv = spd_inverse(mass, m.dof_parent_ids if tree_inverse else None)
    qacc = bmm(minv, force.unsqueeze(-1)).squeeze(-1)
    return dyn, qacc, minv


def integrate_pos(m: Model, q: Tensor, qd: Tensor, h: float) -> Tensor:
    """q advanced by velocity qd over h (quaternions by the exponential map)."""
    pieces = []
    if m.lin_q.numel():
        pieces.append(q[:, m.lin_q] + h * qd[:, m.lin_d])
    if m.free_qadr.numel():
        pieces.append(q[:, m.free_pos_q] + h * qd[:, m.free_pos_d])
    if m.rot_q.numel():
        b = q.shape[0]
        quat = q[:, m.rot_q].view(b, -1, 4)
        omega = qd[:, m.rot_d].view(b, -1, 3)
        pieces.append(quat_integrate(quat, omega, h).reshape(b, -1))
    return torch.cat(pieces, 1)[:, m.qpos_perm]


def _constraint_rows(m: Model, dyn: Dynamics, q: Tensor) -> tuple[Tensor, Tensor, Tensor, int] | None:
    """Jacobian rows (B, R, nv), distances (B, R) and friction (B, C) of the constraints considered.

    Row layout: [contact normals (C), tangent 1 (C), tangent 2 (C), one row per limited joint (L)].
    Only the ``options.max_contacts`` deepest contact candidates of each environment enter (a static
    top-k, so shapes never depend on the data); each limited joint contributes the side it is nearer to."""
    kin = dyn.kin
    rows, dists = [], []
    ncon = 0
    con = collide(m, kin.xpos, kin.xrot)
    friction = torch.zeros(0, dtype=m.dtype, device=m.device)
    if con is not None:
        point, normal, dist = con.point, con.normal, con.dist
        body1 = con.body1.expand(dist.shape[0], -1)
        body2 = con.body2.expand(dist.shape[0], -1)
        friction = con.friction.expand(dist.shape[0], -1)
        kmax = m.options.max_contacts
        if kmax is not None and kmax < dist.shape[1]:
            idx = torch.topk(-dist, kmax, dim=1).indices
            idx3 = idx.unsqueeze(-1).expand(-1, -1, 3)
            point, normal = point.gather(1, idx3), normal.gather(1, idx3)
            dist = dist.gather(1, idx)
            body1, body2, friction = body1.gather(1, idx), body2.gather(1, idx), friction.gather(1, idx)
        ncon = dist.shape[1]
        n = normal
        helper = torch.zeros_like(n)
        helper[..., 0] = 1.0
        alt = torch.zeros_like(n)
        alt[..., 1] = 1.0
        helper = torch.where(n[..., :1].abs() < 0.9, helper, alt)
        t1 = cross(n, helper)
        t1 = t1 / t1.norm(dim=-1, keepdim=True)
        t2 = cross(n, t1)
        # row of direction d at point p: d . (w_v x p + l_v) = w_v . (p x d) + l_v . d for each dof v
        dirs = torch.cat([n, t1, t2], 1)  # (B, 3C, 3)
        pts = point.repeat(1, 3, 1)
        lhs = torch.cat([cross(pts, dirs), dirs], -1)  # (B, 3C, 6)
        twists = torch.cat([kin.dof_ang, kin.dof_lin], -1)  # (B, V, 6)
        mask = m.body_dof[body1] - m.body_dof[body2]  # (B, C, V): relative velocity, body 1 minus body 2
        rows.append(bmm(lhs, twists.transpose(1, 2)) * mask.repeat(1, 3, 1))
        dists.append(dist)
    nl = m.limit_q.numel()
    if nl:
        b = q.shape[0]
        eye = torch.eye(m.nv, dtype=m.dtype, device=m.device)[m.limit_d]  # (L, V)
        qa = q[:, m.limit_q]
        lo, hi = qa - m.limit_lo, m.limit_hi - qa
        lower = lo < hi
        sign = torch.where(lower, 1.0, -1.0).to(m.dtype)
        rows.append(sign.unsqueeze(-1) * eye.expand(b, nl, m.nv))
        dists.append(torch.where(lower, lo, hi))
    if not rows:
        return None
    return torch.cat(rows, 1), torch.cat(dists, 1), friction, ncon


def _solve_constraints(
    m: Model, dyn: Dynamics, q: Tensor, qd: Tensor, v_free: Tensor, minv: Tensor, h: float
) -> Tensor:
    built = _constraint_rows(m, dyn, q)
    if built is None:
        return v_free
    jac, dist, friction, c = built
    opt = m.options
    tc = max(opt.timeconst, 2 * h)
    b_ref, k_ref = 2.0 / tc, 1.0 / (tc * opt.dampratio) ** 2
    # M^-1 J^T goes to BLAS in compiled code too: as a broadcast multiply-sum (math.bmm) it measured 10x
    # slower (1,024 Ant envs); J M^-1 J^T is formed inside projected_jacobi
    w = torch.bmm(minv, jac.transpose(1, 2))  # (B, V, R) = M^-1 J^T
    diag = (jac * w.transpose(1, 2)).sum(-1)  # (B, R)
    reg = diag * (1.0 / opt.impedance - 1.0) + 1e-10
    v0 = (jac * qd.unsqueeze(1)).sum(-1)
    vf = (jac * v_free.unsqueeze(1)).sum(-1)
    # per-row distance and activity: tangents share their contact's
    d_row = torch.cat([dist[:, :c]] * 3 + [dist[:, c:]], 1) if c else dist
    active = (d_row < 0).to(m.dtype)
    is_normal = torch.ones(d_row.shape[1], dtype=m.dtype, device=m.device)
    if c:
        is_normal[c : 3 * c] = 0
    target = v0 - h * (b_ref * v0 + k_ref * d_row * is_normal)
    inv = active / (diag + reg)
    lam = projected_jacobi(jac, w, vf, target, reg, inv, friction, opt.iterations, opt.relaxation)
    return v_free + bmm(w, lam.unsqueeze(-1)).squeeze(-1)


def step(
    m: Model, q: Tensor, qd: Tensor, ctrl: Tensor | None = None, h: float | None = None
) -> tuple[Tensor, Tensor]:
    """Advance (q: (B, nq), qd: (B, nv)) by one time step h (default: the model's) under ctrl: (B, nu).

    In eager mode, batches above ``EAGER_CHUNK`` environments are stepped in chunks of that size, which
    keeps the per-step working set in cache (2x faster at 16,384 Ant environments on CPU)."""
    h = m.timestep if h is None else h
    b = q.shape[0]
    if b > EAGER_CHUNK and not torch.compiler.is_compiling():
        return _in_chunks(partial(step, m, h=h), q, qd, ctrl, EAGER_CHUNK)
    if m.integrator == "rk4":
        return _rk4(m, q, qd, ctrl, h)
    dyn, qacc, minv = forward(m, q, qd, ctrl, h)
    assert minv is not None
    v_free = qd + h * qacc
    qd_new = _solve_constraints(m, dyn, q, qd, v_free, minv, h)
    return integrate_pos(m, q, qd_new, h), qd_new


StepFn = Callable[[Tensor, Tensor, Tensor | None], tuple[Tensor, Tensor]]


_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def compile_step(m: Model, chunk: int = EAGER_CHUNK, mode: str | None = None) -> StepFn:
    """:func:`step` of model ``m`` under ``torch.compile`` (static shapes; compiled on first use, about a
    minute per batch shape on CPU), applied to batches above ``chunk`` environments in equal chunks. As in
    eager mode, chunks keep the working set in cache: 1.15x at 16,384 Ant environments on 2 CPU threads.

    ``mode`` is ``torch.compile``'s. With "reduce-overhead" or "max-autotune" on a GPU the step replays as
    a CUDA graph; its outputs are then copied out of the graph's static buffers, so earlier states stay
    valid after later steps (on CPU these modes compile as the default does). Without a mode, the Euler
    step on CPU compiles with inductor's C++ wrapper (1.02-1.09x)."""
    # inductor's C++ wrapper launches the kernels without Python in between: the Euler step 1.07-1.09x at
    # 1,024 Ant envs on 2 CPU threads, 1.02x at 4,096 (paired). Not for RK4, whose LAPACK Cholesky has no
    # C shim (inductor warns at every compile).
    cpp = mode is None and torch.device(m.device).type == "cpu" and m.integrator == "euler"
    how: dict[str, Any] = {"options": {"cpp_wrapper": True}} if cpp else {"mode": mode}
    compiled = torch.compile(partial(step, m), dynamic=False, **how)

    def graphed(q: Tensor, qd: Tensor, ctrl: Tensor | None) -> tuple[Tensor, Tensor]:
        torch.compiler.cudagraph_mark_step_begin()
        q_new, qd_new = compiled(q, qd, ctrl)
        return q_new.clone(), qd_new.clone()

    fn: StepFn = graphed if mode in _GRAPH_MODES else compiled

    def run(q: Tensor, qd: Tensor, ctrl: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return fn(q, qd, ctrl) if q.shape[0] <= chunk else _in_chunks(fn, q, qd, ctrl, chunk)

    return run


def _in_chunks(fn: StepFn, q: Tensor, qd: Tensor, ctrl: Tensor | None, chunk: int) -> tuple[Tensor, Tensor]:
    """fn applied to equal slices of at most ``chunk`` environments, results concatenated."""
    n = -(-q.shape[0] // chunk)
    ctrls = ctrl.tensor_split(n) if ctrl is not None else [None] * n
    parts = [fn(*a) for a in zip(q.tensor_split(n), qd.tensor_split(n), ctrls, strict=True)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _quat_rate(m: Model, quat: Tensor, qd: Tensor) -> Tensor:
    """Time derivative of the free/ball quaternions (B, n, 4) under their body-frame rates in qd."""
    omega = qd[:, m.rot_d].view(qd.shape[0], -1, 3)
    return 0.5 * quat_mul(quat, torch.cat([torch.zeros_like(omega[..., :1]), omega], -1))


def _with_quats(m: Model, q: Tensor, quat: Tensor) -> Tensor:
    """q with its free/ball quaternion blocks replaced by ``quat`` (normalised)."""
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return q.index_copy(1, m.rot_q, quat.reshape(q.shape[0], -1))


def _rk4(m: Model, q: Tensor, qd: Tensor, ctrl: Tensor | None, h: float) -> tuple[Tensor, Tensor]:
    """4th-order Runge-Kutta on the smooth dynamics (explicit damping), then the constraint impulse of the
    initial state applied as a velocity correction (exact when no constraint is active).

    Hinge/slide/free-position coordinates follow MuJoCo's ``mj_RungeKutta`` exactly. Quaternions (free
    and ball joints) take the classical RK4 combination of their time derivatives, renormalised, which is
    4th order in the rotation; the exponential map of the averaged rate (MuJoCo 3.x) is only 2nd order
    for a body whose rate changes direction."""
    constrained = bool(m.ncon or m.limit_q.numel())
    # LAPACK's inverse here: the tree inverse made the compiled RK4 step slower (0.68x, 4,096 Ant envs on
    # 2 threads, paired) although it makes the Euler step 1.12-1.24x faster
    dyn0, a0, minv0 = forward(m, q, qd, ctrl, inverse=constrained, tree_inverse=False)
    quat0 = q[:, m.rot_q].view(q.shape[0], -1, 4) if m.rot_q.numel() else None
    vels, accs = [qd], [a0]
    quats: list[Tensor] = [] if quat0 is None else [quat0]
    coef = (0.5, 0.5, 1.0)
    for c in coef:
        qi = integrate_pos(m, q, vels[-1], c * h)
        if quat0 is not None:
            quat_i = quat0 + c * h * _quat_rate(m, quats[-1], vels[-1])
            quat_i = quat_i / quat_i.norm(dim=-1, keepdim=True)
            qi = _with_quats(m, qi, quat_i)
            quats.append(quat_i)
        vi = qd + c * h * accs[-1]
        _, ai, _ = forward(m, qi, vi, ctrl, inverse=False)
        vels.append(vi)
        accs.append(ai)
    wts = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
    vsum = torch.stack([wt * v for wt, v in zip(wts, vels, strict=True)]).sum(0)
    asum = torch.stack([wt * a for wt, a in zip(wts, accs, strict=True)]).sum(0)
    qd_new = qd + h * asum
    q_new = integrate_pos(m, q, vsum, h)
    if quat0 is not None:
        rates = [wt * _quat_rate(m, qu, v) for wt, qu, v in zip(wts, quats, vels, strict=True)]
        q_new = _with_quats(m, q_new, quat0 + h * torch.stack(rates).sum(0))
    if minv0 is not None:
        fixed = _solve_constraints(m, dyn0, q, qd, qd_new, minv0, h)
        q_new = integrate_pos(m, q_new, fixed - qd_new, h)
        qd_new = fixed
    return q_new, qd_new
