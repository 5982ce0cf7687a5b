"""The compiled model on a device: static structure (Python ints/lists, fixed per model) and parameter
tensors. Everything that varies per environment lives in :class:`labworks.rigidsim.state.State`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from labworks.rigidsim.mjcf import ModelSpec, load_mjcf, parse_mjcf

if TYPE_CHECKING:
    from labworks.rigidsim.contact import ContactGroup

__all__ = ["Group", "Model", "load_model"]

_NQ = {0: 7, 1: 4, 2: 1, 3: 1}
_NV = {0: 6, 1: 3, 2: 1, 3: 1}


@dataclass
class SolverOptions:
    """Soft-constraint settings shared by contacts and joint limits (MuJoCo's solref/solimp idea).

    A violated constraint is driven towards the reference acceleration ``-b v - k r`` with
    ``b = 2 / timeconst`` and ``k = 1 / (timeconst * dampratio)^2`` (timeconst is raised to at least two time
    steps for stability); ``impedance`` < 1 makes the constraint softer (MuJoCo's solimp). Each environment
    considers only its ``max_contacts`` deepest contact candidates (None: all).
    """

    timeconst: float = 0.02
    dampratio: float = 1.0
    impedance: float = 0.9
    iterations: int = 20
    relaxation: float = 0.3
    max_contacts: int | None = 8


@dataclass
class Group:
    """Joints of one type at one (tree level, joint slot): gathered and processed as one batch."""

    jtype: int
    rows: Tensor  # positions inside the level's body list, (n,)
    rows_l: list[int]
    joints: list[int]
    qadr: Tensor  # (n,) first qpos index
    dadr: Tensor  # (n,) first dof index
    pos: Tensor  # (n, 3) anchor in body frame
    axis: Tensor  # (n, 3)
    ref: Tensor  # (n,)


@dataclass
class Model:
    """A rigid-body model ready to simulate on ``device`` in ``dtype``."""

    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype
    nbody: int
    nq: int
    nv: int
    nu: int
    timestep: float
    integrator: str
    levels: list[Tensor] = field(default_factory=list)  # body ids per depth (world excluded)
    level_parents: list[Tensor] = field(default_factory=list)
    level_groups: list[list[Group]] = field(default_factory=list)
    level_ids: list[list[int]] = field(default_factory=list)
    level_parent_ids: list[list[int]] = field(default_factory=list)
    dof_parent_ids: list[int] = field(default_factory=list)  # parent dof of each dof, -1 at a root
    # the nonzero columns of each row of the tree masks body_dof, frame_dof and dof_subtree (= body_dof.T)
    tree_rows: dict[str, list[list[int]]] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    contact_groups: list[ContactGroup] = field(default_factory=list)
    ncon: int = 0
    options: SolverOptions = field(default_factory=lambda: SolverOptions())

    def __getattr__(self, name: str) -> Tensor:
        tensors = self.__dict__.get("tensors", {})
        if name in tensors:
            return tensors[name]
        raise AttributeError(name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(
        cls, spec: ModelSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> Model:
        dev = torch.device(device)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        m = cls(spec, dev, dtype, spec.nbody, spec.nq, spec.nv, spec.nu, spec.timestep, spec.integrator)

        def f(x: object) -> Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=dev)

        def i(x: object) -> Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.int64), device=dev)

        nb, nv = spec.nbody, spec.nv
        depth = [0] * nb
        for b in range(1, nb):
            depth[b] = depth[spec.body_parent[b]] + 1
        # qpos / dof addresses
        qadr, dadr, q, d = [], [], 0, 0
        for t in spec.jnt_type:
            qadr.append(q)
            dadr.append(d)
            q += _NQ[t]
            d += _NV[t]
        body_joints: list[list[int]] = [[] for _ in range(nb)]
        for j, b in enumerate(spec.jnt_body):
            body_joints[b].append(j)
        # per-dof tables
        dof_jnt, dof_body, dof_rot, dof_world = [], [], [], []
        dof_arm, dof_damp, dof_stiff = [], [], []
        for j, t in enumerate(spec.jnt_type):
            for k in range(_NV[t]):
                dof_jnt.append(j)
                dof_body.append(spec.jnt_body[j])
                dof_rot.append(t in (1, 3) or (t == 0 and k >= 3))
                dof_world.append(t == 0 and k < 3)
                dof_arm.append(spec.jnt_armature[j])
                dof_damp.append(spec.jnt_damping[j])
                dof_stiff.append(spec.jnt_stiffness[j] if t in (2, 3) else 0.0)
        ancestors: list[set[int]] = [set() for _ in range(nb)]  # ancestor-or-self
        for b in range(1, nb):
            ancestors[b] = {b} | ancestors[spec.body_parent[b]]
        body_dof = np.zeros((nb, nv))  # dof moves body b
        frame_dof = np.zeros((nv, nv))  # dof j moves the frame in which dof k's axis is fixed
        for k in range(nv):
            bk, jk = dof_body[k], dof_jnt[k]
            for j in range(nv):
                bj, jj = dof_body[j], dof_jnt[j]
                if bj in ancestors[bk] and (bj != bk or jj <= jk):
                    frame_dof[k, j] = 1
        for b in range(nb):
            for j in range(nv):
                if dof_body[j] in ancestors[b]:
                    body_dof[b, j] = 1
        dof_anc = body_dof[dof_body].T  # [v, u] = body_dof[dof_body[u], v]
        for name, mask in (("body_dof", body_dof), ("frame_dof", frame_dof), ("dof_subtree", body_dof.T)):
            m.tree_rows[name] = [np.flatnonzero(row).tolist() for row in mask]
        # dof tree: the previous dof on the same body, else the last dof of the nearest moving ancestor
        m.dof_parent_ids = [max((j for j in range(k) if dof_anc[j, k]), default=-1) for k in range(nv)]
        # levels and joint groups
        maxd = max(depth) if nb > 1 else 0
        for lev in range(1, maxd + 1):
            ids = [b for b in range(1, nb) if depth[b] == lev]
            m.levels.append(i(ids))
            m.level_ids.append(ids)
            m.level_parent_ids.append([spec.body_parent[b] for b in ids])
            m.level_parents.append(i([spec.body_parent[b] for b in ids]))
            groups: list[Group] = []
            nslot = max(len(body_joints[b]) for b in ids)
            for slot in range(nslot):
                for t in (0, 1, 2, 3):
                    rows = [
                        r
                        for r, b in enumerate(ids)
                        if len(body_joints[b]) > slot and spec.jnt_type[body_joints[b][slot]] == t
                    ]
                    if not rows:
                        continue
                    js = [body_joints[ids[r]][slot] for r in rows]
                    groups.append(
                        Group(
                            t,
                            i(rows),
                            rows,
                            js,
                            i([qadr[j] for j in js]),
                            i([dadr[j] for j in js]),
                            f([spec.jnt_pos[j] for j in js]),
                            f([spec.jnt_axis[j] for j in js]),
                            f([spec.jnt_ref[j] for j in js]),
                        )
                    )
            m.level_groups.append(groups)
        from labworks.rigidsim.mjcf import quat_to_mat

        limited = [j for j in range(spec.njnt) if spec.jnt_limited[j]]
        m.tensors = {
            "body_parent": i(spec.body_parent),
            "body_pos": f(spec.body_pos),
            "body_rot": f([quat_to_mat(qq) for qq in spec.body_quat]),
            "body_mass": f(spec.body_mass),
            "body_ipos": f(spec.body_ipos),
            "body_inertia": f(spec.body_inertia),
            "body_dof": f(body_dof),
            "frame_dof": f(frame_dof),
            "dof_subtree": f(body_dof.T),  # [v, k] = 1 where body k is in the subtree dof v moves
            # mass-matrix pattern: dof_anc[v, u] = 1 where dof v's body is an ancestor-or-self of dof u's
            "dof_anc": f(dof_anc),
            "dof_anc_lower": f(dof_anc.T * (1 - dof_anc)),
            "dof_body": i(dof_body),
            "dof_rot": f(dof_rot),
            "dof_world": f(dof_world),
            "dof_armature": f(dof_arm),
            "dof_damping": f(dof_damp),
            "dof_stiffness": f(dof_stiff),
            "gravity": f(spec.gravity),
            "jnt_qadr": i(qadr),
            "jnt_dadr": i(dadr),
            # hinge/slide positional dofs (for springs): qpos index, dof index, springref
            "spring_q": i([qadr[j] for j in range(spec.njnt) if spec.jnt_type[j] in (2, 3)]),
            "spring_d": i([dadr[j] for j in range(spec.njnt) if spec.jnt_type[j] in (2, 3)]),
            "spring_ref": f([spec.jnt_springref[j] for j in range(spec.njnt) if spec.jnt_type[j] in (2, 3)]),
            "limit_q": i([qadr[j] for j in limited]),
            "limit_d": i([dadr[j] for j in limited]),
            "limit_lo": f([spec.jnt_range[j][0] for j in limited]),
            "limit_hi": f([spec.jnt_range[j][1] for j in limited]),
            "act_dof": i([dadr[j] for j in spec.act_joint]),
            "act_gear": f(spec.act_gear),
            "act_lo": f(
                [r[0] if lim else -np.inf for r, lim in zip(spec.act_range, spec.act_limited, strict=True)]
            ),
            "act_hi": f(
                [r[1] if lim else np.inf for r, lim in zip(spec.act_range, spec.act_limited, strict=True)]
            ),
            "qpos0": f(spec.qpos0()),
            "geom_body": i(spec.geom_body),
            "geom_type": i(spec.geom_type),
            "geom_pos": f(spec.geom_pos),
            "geom_rot": f([quat_to_mat(qq) for qq in spec.geom_quat]),
            "geom_size": f(spec.geom_size),
        }
        # free/ball joints: quaternion qpos blocks (for integration)
        m.tensors["free_qadr"] = i([qadr[j] for j in range(spec.njnt) if spec.jnt_type[j] == 0])
        m.tensors["free_dadr"] = i([dadr[j] for j in range(spec.njnt) if spec.jnt_type[j] == 0])
        m.tensors["ball_qadr"] = i([qadr[j] for j in range(spec.njnt) if spec.jnt_type[j] == 1])
        m.tensors["ball_dadr"] = i([dadr[j] for j in range(spec.njnt) if spec.jnt_type[j] == 1])
        m.tensors["lin_q"] = i(
            [qadr[j] + k for j in range(spec.njnt) if spec.jnt_type[j] in (2, 3) for k in range(1)]
        )
        m.tensors["lin_d"] = i([dadr[j] for j in range(spec.njnt) if spec.jnt_type[j] in (2, 3)])
        # integration layout: [hinge/slide, free positions, quaternions (free then ball)] -> qpos order
        free = [j for j in range(spec.njnt) if spec.jnt_type[j] == 0]
        ball = [j for j in range(spec.njnt) if spec.jnt_type[j] == 1]
        lin = [j for j in range(spec.njnt) if spec.jnt_type[j] in (2, 3)]
        free_pos_q = [qadr[j] + k for j in free for k in range(3)]
        rot_q = [qadr[j] + (3 if j in free else 0) + k for j in free + ball for k in range(4)]
        rot_d = [dadr[j] + (3 if j in free else 0) + k for j in free + ball for k in range(3)]
        order = [qadr[j] for j in lin] + free_pos_q + rot_q
        perm = np.empty(len(order), dtype=np.int64)
        perm[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        m.tensors["free_pos_q"] = i(free_pos_q)
        m.tensors["free_pos_d"] = i([dadr[j] + k for j in free for k in range(3)])
        m.tensors["rot_q"] = i(rot_q)
        m.tensors["rot_d"] = i(rot_d)
        m.tensors["qpos_perm"] = i(perm)
        from labworks.rigidsim.contact import build_contacts

        build_contacts(m)
        return m

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Model:
        """A copy on another device and/or dtype."""
        return Model.from_spec(self.spec, device or self.device, dtype or self.dtype)


def load_model(
    source: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Model:
    """An MJCF file path (or MJCF text starting with '<') -> :class:`Model`."""
    if isinstance(source, str) and source.lstrip().startswith("<"):
        spec = parse_mjcf(source)
    else:
        spec = load_mjcf(source)
    return Model.from_spec(spec, device, dtype)
