"""Forward kinematics, Jacobians, joint-space inertia and bias forces for a batch of configurations.

Everything is computed level by level over the kinematic tree (bodies of equal depth together) and with
small dense tree masks, so the work is the same for every environment and free of data-dependent branches.

Notation: B environments, K bodies (incl. the world), V degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from labworks.rigidsim.math import axis_angle_mat, bmm, cross, mm, mv, quat_to_mat
from labworks.rigidsim.model import Model

__all__ = ["Dynamics", "Kinematics", "com_jacobians", "dynamics", "kinematics"]


@dataclass
class Kinematics:
    xpos: Tensor  # (B, K, 3) body frame origins
    xrot: Tensor  # (B, K, 3, 3) body orientations
    com: Tensor  # (B, K, 3) body centres of mass
    dof_axis: Tensor  # (B, V, 3) world axis of each dof
    dof_anchor: Tensor  # (B, V, 3) world point each rotational dof turns about
    dof_ang: Tensor  # (B, V, 3) angular part of each dof's unit motion (axis, or 0 for translations)
    dof_lin: Tensor  # (B, V, 3) linear part: velocity of the point at the world origin


@dataclass
class Dynamics:
    kin: Kinematics
    mass_matrix: Tensor  # (B, V, V) incl. armature
    bias: Tensor  # (B, V) Coriolis, centrifugal and gravity (MuJoCo's qfrc_bias)
    com_vel: Tensor  # (B, K, 3)
    ang_vel: Tensor  # (B, K, 3)


def _tree_sum(mask: Tensor, x: Tensor) -> Tensor:
    """mask: (P, V), x: (B, V, d) -> (B, P, d): sums over the dofs (or bodies) each row selects."""
    return torch.einsum("pv,bvd->bpd", mask, x)


def com_jacobians(m: Model, kin: Kinematics) -> tuple[Tensor, Tensor]:
    """Dense Jacobians of every body's COM linear velocity and angular velocity: (B, K, V, 3) each."""
    mask = m.body_dof[None, :, :, None]
    jv = mask * (cross(kin.dof_ang[:, None], kin.com[:, :, None]) + kin.dof_lin[:, None])
    jw = mask * kin.dof_ang[:, None]
    return jv, jw


def kinematics(m: Model, q: Tensor) -> Kinematics:
    """q: (B, nq) -> :class:`Kinematics`."""
    b = q.shape[0]
    dt, dev = m.dtype, m.device
    eye = torch.eye(3, dtype=dt, device=dev)
    world_r = eye.expand(b, 3, 3)
    world_t = torch.zeros(b, 3, dtype=dt, device=dev)
    rots: list[Tensor] = [world_r] * m.nbody  # per body, (B, 3, 3); built level by level
    poss: list[Tensor] = [world_t] * m.nbody
    dof_ids: list[Tensor] = []
    axes: list[Tensor] = []
    anchors: list[Tensor] = []
    for ids, groups, ids_l, par_l in zip(
        m.levels, m.level_groups, m.level_ids, m.level_parent_ids, strict=True
    ):
        rp = torch.stack([rots[p] for p in par_l], 1)
        tp = torch.stack([poss[p] for p in par_l], 1)
        rl = mm(rp, m.body_rot[ids])
        tl = tp + mv(rp, m.body_pos[ids])
        r_rows = list(rl.unbind(1))
        t_rows = list(tl.unbind(1))
        for g in groups:
            rg = torch.stack([r_rows[r] for r in g.rows_l], 1)
            tg = torch.stack([t_rows[r] for r in g.rows_l], 1)
            n = len(g.rows_l)
            if g.jtype == 3:  # hinge
                theta = q[:, g.qadr] - g.ref
                anchor = tg + mv(rg, g.pos)
                axis = mv(rg, g.axis)
                rn = mm(rg, axis_angle_mat(g.axis, theta))
                tn = anchor - mv(rn, g.pos)
                dof_ids.append(g.dadr)
                axes.append(axis)
                anchors.append(anchor)
            elif g.jtype == 2:  # slide
                axis = mv(rg, g.axis)
                tn = tg + axis * (q[:, g.qadr] - g.ref).unsqueeze(-1)
                rn = rg
                dof_ids.append(g.dadr)
                axes.append(axis)
                anchors.append(tn + mv(rn, g.pos))
            elif g.jtype == 1:  # ball: qvel is the angular velocity in the child frame
                quat = q[:, g.qadr[:, None] + torch.arange(4, device=dev)]
                anchor = tg + mv(rg, g.pos)
                rn = mm(rg, quat_to_mat(quat))
                tn = anchor - mv(rn, g.pos)
                dof_ids.append((g.dadr[:, None] + torch.arange(3, device=dev)).reshape(-1))
                axes.append(rn.transpose(-1, -2).reshape(b, n * 3, 3))
                anchors.append(anchor.repeat_interleave(3, dim=1))
            else:  # free: world linear velocity of the origin, angular velocity in the body frame
                tn = q[:, g.qadr[:, None] + torch.arange(3, device=dev)]
                rn = quat_to_mat(q[:, g.qadr[:, None] + 3 + torch.arange(4, device=dev)])
                dof_ids.append((g.dadr[:, None] + torch.arange(6, device=dev)).reshape(-1))
                lin = eye.expand(b, n, 3, 3)
                axes.append(torch.cat([lin, rn.transpose(-1, -2)], 2).reshape(b, n * 6, 3))
                anchors.append(tn.repeat_interleave(6, dim=1))
            for k, row in enumerate(g.rows_l):
                r_rows[row] = rn[:, k]
                t_rows[row] = tn[:, k]
        for k, body in enumerate(ids_l):
            rots[body] = r_rows[k]
            poss[body] = t_rows[k]
    rot = torch.stack(rots, 1)
    pos = torch.stack(poss, 1)
    com = pos + mv(rot, m.body_ipos)
    if dof_ids:
        order = torch.cat(dof_ids)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel(), device=dev)
        dof_axis = torch.cat(axes, 1)[:, inv]
        dof_anchor = torch.cat(anchors, 1)[:, inv]
    else:
        dof_axis = dof_anchor = torch.zeros(b, 0, 3, dtype=dt, device=dev)
    rotm = m.dof_rot[:, None]
    ang = rotm * dof_axis
    lin = torch.where(rotm > 0, cross(dof_anchor, dof_axis), dof_axis)
    return Kinematics(pos, rot, com, dof_axis, dof_anchor, ang, lin)


def dynamics(m: Model, q: Tensor, qd: Tensor) -> Dynamics:
    """Joint-space inertia M(q) and bias forces c(q, qd) with M qacc + c = forces.

    q: (B, nq), qd: (B, nv). Each dof is a unit twist (angular, linear-at-origin); body velocities, the
    bias accelerations and the projection of body forces back onto the dofs are sums over the kinematic
    tree done as small dense products with the tree masks (recursive Newton-Euler in matrix form); the
    mass matrix comes from composite (subtree) inertias, MuJoCo's CRB algorithm in the same form.
    """
    kin = kinematics(m, q)
    ang, lin, com = kin.dof_ang, kin.dof_lin, kin.com
    rotm = m.dof_rot[:, None]
    qdv = qd.unsqueeze(-1)
    twist = torch.cat([ang * qdv, lin * qdv], -1)  # (B, V, 6) each dof's motion at its rate
    body_t = _tree_sum(m.body_dof, twist)  # (B, K, 6) body twists
    frame_t = _tree_sum(m.frame_dof, twist)  # (B, V, 6) twist of the frame each dof axis is fixed in
    w, w_lin = body_t[..., :3], body_t[..., 3:]
    v = cross(w, com) + w_lin  # COM velocities
    wf, vf = frame_t[..., :3], frame_t[..., 3:]
    # time derivatives of the dof twists (their axes and anchors move with their frames)
    adot = (1 - m.dof_world)[:, None] * cross(wf, kin.dof_axis)
    odot = cross(wf, kin.dof_anchor) + vf
    lin_dot = torch.where(rotm > 0, cross(odot, kin.dof_axis) + cross(kin.dof_anchor, adot), adot)
    acc_t = _tree_sum(m.body_dof, torch.cat([rotm * adot * qdv, lin_dot * qdv], -1))
    a_ang, a_lin0 = acc_t[..., :3], acc_t[..., 3:]
    a_lin = cross(a_ang, com) + cross(w, v) + a_lin0  # COM bias accelerations
    inertia = mm(mm(kin.xrot, m.body_inertia), kin.xrot.transpose(-1, -2))  # (B, K, 3, 3) world
    mass_k = m.body_mass[:, None]
    f_lin = mass_k * (a_lin - m.gravity)
    torque = mv(inertia, a_ang) + cross(w, mv(inertia, w))
    # backward pass: subtree force and moment about the origin, projected on each dof twist
    wrench = _tree_sum(m.body_dof.T, torch.cat([cross(com, f_lin) + torque, f_lin], -1))  # (B, V, 6)
    bias = (ang * wrench[..., :3]).sum(-1) + (lin * wrench[..., 3:]).sum(-1)
    # composite inertia (about the origin) of each dof's subtree: mass, first moment, rotational
    first = mass_k * com
    eye = torch.eye(3, dtype=m.dtype, device=m.device)
    rot_o = inertia + mass_k[..., None] * (
        (com * com).sum(-1)[..., None, None] * eye - com.unsqueeze(-1) * com.unsqueeze(-2)
    )
    b = q.shape[0]
    comp = _tree_sum(m.body_dof.T, torch.cat([first, rot_o.reshape(b, -1, 9)], -1))  # (B, V, 12)
    mc = m.body_mass @ m.body_dof  # (V,)
    hc, jc = comp[..., :3], comp[..., 3:].reshape(b, -1, 3, 3)
    p_mom = mc[:, None] * lin + cross(ang, hc)  # momentum of each dof's subtree under its unit twist
    l_mom = cross(hc, lin) + mv(jc, ang)
    x = bmm(torch.cat([ang, lin], -1), torch.cat([l_mom, p_mom], -1).transpose(1, 2))  # (B, V, V)
    mass = m.dof_anc * x + m.dof_anc_lower * x.transpose(1, 2)
    mass = mass + torch.diag_embed(m.dof_armature).expand_as(mass)
    return Dynamics(kin, mass, bias, v, w)
