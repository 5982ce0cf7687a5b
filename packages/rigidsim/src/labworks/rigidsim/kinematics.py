"""Forward kinematics, Jacobians, joint-space inertia and bias forces for a batch of configurations.

Everything is computed level by level over the kinematic tree (bodies of equal depth together) and with
dense, masked Jacobians, so the work is the same for every environment and free of data-dependent branches.

Notation: B environments, K bodies (incl. the world), V degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from labworks.rigidsim.math import axis_angle_mat, cross, mm, mv, quat_to_mat
from labworks.rigidsim.model import Model

__all__ = ["Dynamics", "Kinematics", "dynamics", "kinematics"]


@dataclass
class Kinematics:
    xpos: Tensor  # (B, K, 3) body frame origins
    xrot: Tensor  # (B, K, 3, 3) body orientations
    com: Tensor  # (B, K, 3) body centres of mass
    dof_axis: Tensor  # (B, V, 3) world axis of each dof
    dof_anchor: Tensor  # (B, V, 3) world point each rotational dof turns about
    jv: Tensor  # (B, K, V, 3) COM linear-velocity Jacobian
    jw: Tensor  # (B, K, V, 3) angular-velocity Jacobian


@dataclass
class Dynamics:
    kin: Kinematics
    mass_matrix: Tensor  # (B, V, V) incl. armature
    bias: Tensor  # (B, V) Coriolis, centrifugal and gravity (MuJoCo's qfrc_bias)
    com_vel: Tensor  # (B, K, 3)
    ang_vel: Tensor  # (B, K, 3)


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
    r = com[:, :, None, :] - dof_anchor[:, None, :, :]
    a = dof_axis[:, None]
    mask = m.body_dof[None, :, :, None]
    jv = mask * torch.where(rotm > 0, cross(a, r), a.expand_as(r))
    jw = mask * rotm * a
    return Kinematics(pos, rot, com, dof_axis, dof_anchor, jv, jw)


def dynamics(m: Model, q: Tensor, qd: Tensor) -> Dynamics:
    """Joint-space inertia M(q) and bias forces c(q, qd) with M qacc + c = forces.

    q: (B, nq), qd: (B, nv).
    """
    kin = kinematics(m, q)
    jv, jw = kin.jv, kin.jw
    rotm = m.dof_rot[:, None]  # (V, 1)
    inertia = mm(mm(kin.xrot, m.body_inertia), kin.xrot.transpose(-1, -2))  # (B, K, 3, 3)
    v = torch.einsum("bkvd,bv->bkd", jv, qd)
    w = torch.einsum("bkvd,bv->bkd", jw, qd)
    # time derivative of each dof axis: it turns with the frame it is fixed in
    ra = rotm * kin.dof_axis  # (B, V, 3) angular columns
    w_frame = torch.einsum("kj,bjd,bj->bkd", m.frame_dof, ra, qd)
    adot = (1 - m.dof_world)[:, None] * cross(w_frame, kin.dof_axis)
    # velocity of each dof's anchor point (moving with that frame)
    dp = kin.dof_anchor[:, :, None, :] - kin.dof_anchor[:, None, :, :]  # p_k - p_j
    aj = kin.dof_axis[:, None]
    col = torch.where(rotm[None] > 0, cross(aj, dp), aj.expand_as(dp))
    v_anchor = torch.einsum("kj,bkjd,bj->bkd", m.frame_dof, col, qd)
    # bias accelerations of every body COM (the J-dot qd terms)
    r = kin.com[:, :, None, :] - kin.dof_anchor[:, None, :, :]
    adot_e = adot[:, None]
    rel = v[:, :, None, :] - v_anchor[:, None, :, :]
    term = torch.where(
        rotm > 0,
        cross(adot_e, r) + cross(kin.dof_axis[:, None], rel),
        adot_e.expand_as(r),
    )
    a_lin = torch.einsum("kv,bkvd,bv->bkd", m.body_dof, term, qd)
    a_ang = torch.einsum("kv,bvd,bv->bkd", m.body_dof, rotm * adot, qd)
    f_lin = m.body_mass[:, None] * (a_lin - m.gravity)
    iw = mv(inertia, w)
    torque = mv(inertia, a_ang) + cross(w, iw)
    bias = torch.einsum("bkvd,bkd->bv", jv, f_lin) + torch.einsum("bkvd,bkd->bv", jw, torque)
    mass = torch.einsum("bkvd,k,bkud->bvu", jv, m.body_mass, jv) + torch.einsum(
        "bkvd,bkde,bkue->bvu", jw, inertia, jw
    )
    mass = mass + torch.diag_embed(m.dof_armature).expand_as(mass)
    return Dynamics(kin, mass, bias, v, w)
