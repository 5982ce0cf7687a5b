"""Branch-free contact generation between primitive geoms.

At model build time every geom pair that may touch (MuJoCo's contype/conaffinity rule, no pairs within one
body or between a parent and child body, ``<exclude>`` honoured) becomes a fixed number of *contact
candidates* grouped by pair type; at run time all candidates are evaluated for every environment and those
not touching are masked out. Each candidate yields a world point, a unit normal pointing from geom 2 to
geom 1, and a signed distance (negative = penetration).

Supported pairs: plane with sphere/capsule (2 end points)/box (8 corners); sphere-sphere, sphere-capsule,
capsule-capsule (closest points of the segments), sphere-box and capsule-box (the segment's closest point to
the box centre treated as a sphere). Box-box raises at build time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from labworks.rigidsim.math import mm, mtv, mv, safe_norm

if TYPE_CHECKING:
    from labworks.rigidsim.model import Model

__all__ = ["ContactGroup", "Contacts", "build_contacts", "collide"]

PLANE, SPHERE, CAPSULE, BOX = 0, 2, 3, 6
_SUPPORTED = {
    (SPHERE, PLANE): 1,
    (CAPSULE, PLANE): 2,
    (BOX, PLANE): 8,
    (SPHERE, SPHERE): 1,
    (CAPSULE, SPHERE): 1,
    (CAPSULE, CAPSULE): 1,
    (SPHERE, BOX): 1,
    (CAPSULE, BOX): 1,
}
_NAMES = {0: "plane", 2: "sphere", 3: "capsule", 4: "ellipsoid", 5: "cylinder", 6: "box"}


@dataclass
class ContactGroup:
    kind: tuple[int, int]
    g1: Tensor  # (n,) geom ids (geom 1 = the first type of ``kind``)
    g2: Tensor
    per_pair: int
    friction: Tensor  # (n * per_pair,)
    margin: Tensor


@dataclass
class Contacts:
    point: Tensor  # (B, C, 3)
    normal: Tensor  # (B, C, 3) from geom 2 to geom 1
    dist: Tensor  # (B, C) signed distance minus margin (< 0: in contact)
    body1: Tensor  # (C,)
    body2: Tensor
    friction: Tensor  # (C,)


def build_contacts(m: Model) -> None:
    """Fill ``m.contact_groups`` with the static candidate list."""
    s = m.spec
    ng = len(s.geom_type)
    parent = s.body_parent
    excl = {tuple(sorted(p)) for p in s.exclude}
    by_kind: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i in range(ng):
        for j in range(i + 1, ng):
            bi, bj = s.geom_body[i], s.geom_body[j]
            if bi == bj:
                continue
            if not (
                (s.geom_contype[i] & s.geom_conaffinity[j]) or (s.geom_contype[j] & s.geom_conaffinity[i])
            ):
                continue
            if (bi != 0 and parent[bj] == bi) or (bj != 0 and parent[bi] == bj):
                continue  # MuJoCo's default parent-child filter (the world is exempt)
            if tuple(sorted((bi, bj))) in excl:
                continue
            ti, tj = s.geom_type[i], s.geom_type[j]
            if (ti, tj) in _SUPPORTED:
                by_kind.setdefault((ti, tj), []).append((i, j))
            elif (tj, ti) in _SUPPORTED:
                by_kind.setdefault((tj, ti), []).append((j, i))
            else:
                raise ValueError(
                    f"contact between {_NAMES.get(ti, ti)} {s.geom_name[i]!r} and {_NAMES.get(tj, tj)} "
                    f"{s.geom_name[j]!r} is not supported; set contype/conaffinity to exclude the pair"
                )
    groups = []
    for kind, pairs in sorted(by_kind.items()):
        k = _SUPPORTED[kind]
        g1 = [a for a, _ in pairs]
        g2 = [b for _, b in pairs]
        fr = [max(s.geom_friction[a], s.geom_friction[b]) for a, b in pairs]
        mg = [max(s.geom_margin[a], s.geom_margin[b]) for a, b in pairs]
        groups.append(
            ContactGroup(
                kind,
                torch.tensor(g1, device=m.device),
                torch.tensor(g2, device=m.device),
                k,
                torch.tensor(fr, dtype=m.dtype, device=m.device).repeat_interleave(k),
                torch.tensor(mg, dtype=m.dtype, device=m.device).repeat_interleave(k),
            )
        )
    m.contact_groups = groups
    body = torch.tensor(s.geom_body, device=m.device)
    if groups:
        m.tensors["con_body1"] = torch.cat([body[g.g1].repeat_interleave(g.per_pair) for g in groups])
        m.tensors["con_body2"] = torch.cat([body[g.g2].repeat_interleave(g.per_pair) for g in groups])
        m.tensors["con_friction"] = torch.cat([g.friction for g in groups])
        m.tensors["con_margin"] = torch.cat([g.margin for g in groups])
    m.ncon = sum(g.g1.numel() * g.per_pair for g in groups)


def _seg_point(a0: Tensor, a1: Tensor, p: Tensor) -> Tensor:
    """Closest point to p on segment [a0, a1] (all (..., 3))."""
    d = a1 - a0
    t = ((p - a0) * d).sum(-1, keepdim=True) / (d * d).sum(-1, keepdim=True).clamp_min(1e-12)
    return a0 + t.clamp(0, 1) * d


def _seg_seg(a0: Tensor, a1: Tensor, b0: Tensor, b1: Tensor) -> tuple[Tensor, Tensor]:
    """Closest points between two segments (clamped, branch-free; parallel segments handled)."""
    d1, d2, r = a1 - a0, b1 - b0, a0 - b0
    aa = (d1 * d1).sum(-1)
    ee = (d2 * d2).sum(-1)
    ff = (d2 * r).sum(-1)
    cc = (d1 * r).sum(-1)
    bb = (d1 * d2).sum(-1)
    denom = aa * ee - bb * bb
    s = torch.where(
        denom > 1e-10 * (aa * ee).clamp_min(1e-20), (bb * ff - cc * ee) / denom.clamp_min(1e-20), 0.0
    )
    s = s.clamp(0, 1)
    t = ((bb * s + ff) / ee.clamp_min(1e-12)).clamp(0, 1)
    s = ((bb * t - cc) / aa.clamp_min(1e-12)).clamp(0, 1)
    return a0 + s.unsqueeze(-1) * d1, b0 + t.unsqueeze(-1) * d2


def _sphere_sphere(c1: Tensor, r1: Tensor, c2: Tensor, r2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    d = c1 - c2
    n_len = safe_norm(d)
    fallback = torch.zeros_like(d)
    fallback[..., 2] = 1.0
    n = torch.where(n_len > 1e-9, d / n_len.clamp_min(1e-9), fallback)
    dist = n_len.squeeze(-1) - r1 - r2
    point = c2 + n * (r2 + 0.5 * dist).unsqueeze(-1)
    return point, n, dist


def collide(m: Model, xpos: Tensor, xrot: Tensor) -> Contacts | None:
    """Evaluate every contact candidate. xpos: (B, K, 3), xrot: (B, K, 3, 3)."""
    groups = getattr(m, "contact_groups", [])
    if not groups:
        return None
    gb = m.geom_body
    gpos = xpos[:, gb] + mv(xrot[:, gb], m.geom_pos)  # (B, G, 3)
    grot = mm(xrot[:, gb], m.geom_rot)  # (B, G, 3, 3)
    size = m.geom_size
    points, normals, dists = [], [], []
    for g in groups:
        t1, t2 = g.kind
        c1, r1m, s1 = gpos[:, g.g1], grot[:, g.g1], size[g.g1]
        c2, r2m, s2 = gpos[:, g.g2], grot[:, g.g2], size[g.g2]
        if t2 == PLANE:
            n = r2m[..., 2]  # (B, n, 3) plane normal
            if t1 == SPHERE:
                cand, rad = c1.unsqueeze(2), s1[:, 0].view(1, -1, 1)
            elif t1 == CAPSULE:
                half = r1m[..., 2] * s1[:, 1].view(1, -1, 1)
                cand = torch.stack([c1 + half, c1 - half], 2)
                rad = s1[:, 0].view(1, -1, 1)
            else:  # box corners
                signs = torch.tensor(
                    [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
                    dtype=m.dtype,
                    device=m.device,
                )
                local = signs.view(1, 1, 8, 3) * s1.view(1, -1, 1, 3)
                cand = c1.unsqueeze(2) + mv(r1m.unsqueeze(2), local)
                rad = torch.zeros(1, 1, 1, dtype=m.dtype, device=m.device)
            nn = n.unsqueeze(2).expand_as(cand)
            dist = ((cand - c2.unsqueeze(2)) * nn).sum(-1) - rad
            point = cand - nn * (rad + 0.5 * dist).unsqueeze(-1)
            b = cand.shape[0]
            points.append(point.reshape(b, -1, 3))
            normals.append(nn.reshape(b, -1, 3))
            dists.append(dist.reshape(b, -1))
            continue
        if t1 == SPHERE:
            p1, rad1 = c1, s1[:, 0]
        else:  # capsule: segment
            half = r1m[..., 2] * s1[:, 1].view(1, -1, 1)
            a0, a1 = c1 - half, c1 + half
            rad1 = s1[:, 0]
        if t2 == BOX:
            centre = c2
            p1 = p1 if t1 == SPHERE else _seg_point(a0, a1, centre)
            local = mtv(r2m, p1 - centre)  # in box frame
            clamped = torch.maximum(torch.minimum(local, s2), -s2)
            inside = (local.abs() <= s2).all(-1, keepdim=True)
            # outside: nearest surface point; inside: push out through the nearest face
            depth = s2 - local.abs()
            face = torch.nn.functional.one_hot(depth.argmin(-1), 3).to(m.dtype) * torch.sign(local + 1e-12)
            surf_in = torch.where(face != 0, face * s2, local)
            q_local = torch.where(inside, surf_in, clamped)
            q = centre + mv(r2m, q_local)
            delta = p1 - q
            length = safe_norm(delta)
            n_out = delta / length.clamp_min(1e-9)
            n_in = mv(r2m, face)
            n = torch.where(inside | (length < 1e-9), n_in, n_out)
            signed = torch.where(inside.squeeze(-1), -length.squeeze(-1), length.squeeze(-1))
            dist = signed - rad1
            point = q + n * (0.5 * dist).unsqueeze(-1)
        else:
            if t2 == SPHERE:
                p2, rad2 = c2, s2[:, 0]
                p1 = p1 if t1 == SPHERE else _seg_point(a0, a1, p2)
            else:  # capsule-capsule
                half2 = r2m[..., 2] * s2[:, 1].view(1, -1, 1)
                p1, p2 = _seg_seg(a0, a1, c2 - half2, c2 + half2)
                rad2 = s2[:, 0]
            point, n, dist = _sphere_sphere(p1, rad1, p2, rad2)
        points.append(point)
        normals.append(n)
        dists.append(dist)
    dist = torch.cat(dists, 1) - m.con_margin
    return Contacts(
        torch.cat(points, 1), torch.cat(normals, 1), dist, m.con_body1, m.con_body2, m.con_friction
    )
