"""Batched rotation helpers (quaternions are (w, x, y, z), like MuJoCo)."""

from __future__ import annotations

import torch
from torch import Tensor


def safe_norm(v: Tensor, keepdim: bool = True) -> Tensor:
    """Euclidean norm over the last axis whose gradient is 0 (not NaN) at the zero vector."""
    sq = (v * v).sum(-1, keepdim=keepdim)
    pos = sq > 1e-30
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, 1.0)), 0.0)


def quat_to_mat(q: Tensor) -> Tensor:
    """q: (..., 4) (normalised here) -> rotation matrices (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    row0 = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1)
    row1 = torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1)
    row2 = torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return torch.stack([row0, row1, row2], -2)


def quat_mul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product of (..., 4) quaternions."""
    w1, x1, y1, z1 = a.unbind(-1)
    w2, x2, y2, z2 = b.unbind(-1)
    return torch.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        -1,
    )


def quat_integrate(q: Tensor, omega_local: Tensor, dt: float) -> Tensor:
    """Rotate q by the body-frame angular velocity omega_local: (..., 3) over dt; exact exponential map,
    branch-free at zero rate. Returns a unit quaternion."""
    angle = safe_norm(omega_local) * dt
    half = 0.5 * angle
    # sin(half)/|omega| without dividing by zero: dt * sinc-like series near 0
    big = angle > 1e-6
    scale = torch.where(big, torch.sin(half) / torch.where(big, angle, 1.0), 0.5 - angle * angle / 48) * dt
    dq = torch.cat([torch.cos(half), omega_local * scale], -1)
    out = quat_mul(q, dq)
    return out / out.norm(dim=-1, keepdim=True)


def mat_to_quat(m: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) with w >= 0 (branch-free)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    w = 0.5 * torch.sqrt((1 + m00 + m11 + m22).clamp_min(0))
    x = 0.5 * torch.sqrt((1 + m00 - m11 - m22).clamp_min(0))
    y = 0.5 * torch.sqrt((1 - m00 + m11 - m22).clamp_min(0))
    z = 0.5 * torch.sqrt((1 - m00 - m11 + m22).clamp_min(0))
    x = torch.copysign(x, m[..., 2, 1] - m[..., 1, 2])
    y = torch.copysign(y, m[..., 0, 2] - m[..., 2, 0])
    z = torch.copysign(z, m[..., 1, 0] - m[..., 0, 1])
    q = torch.stack([w, x, y, z], -1)
    return q / q.norm(dim=-1, keepdim=True)


def cross(a: Tensor, b: Tensor) -> Tensor:
    """Cross product over the last axis with broadcasting (faster than linalg.cross on CPU)."""
    a0, a1, a2 = a.unbind(-1)
    b0, b1, b2 = b.unbind(-1)
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def mv(r: Tensor, v: Tensor) -> Tensor:
    """(..., 3, 3) @ (..., 3) by broadcasting (tiny matrices: no batched GEMM)."""
    return (r * v.unsqueeze(-2)).sum(-1)


def mtv(r: Tensor, v: Tensor) -> Tensor:
    """r^T v for (..., 3, 3) and (..., 3)."""
    return (r * v.unsqueeze(-1)).sum(-2)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """(..., 3, 3) @ (..., 3, 3) by broadcasting."""
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched product of small matrices (..., n, k) @ (..., k, m). Under ``torch.compile`` a broadcast
    multiply-sum that the compiler fuses and parallelises (faster than many tiny BLAS calls for 3x3 blocks
    and mat-vecs; for products of tens of rows and columns BLAS wins, see physics); eager: BLAS."""
    if torch.compiler.is_compiling():
        return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)
    return a @ b


# ---------------------------------------------------------------- component-first (batch-last) variants
# Vectors are (3, ..., B) and matrices (3, 3, ..., B): every elementwise formula then runs over the
# environments in the innermost, contiguous axis, which the compiler vectorises (SIMD over environments).


def cross0(a: Tensor, b: Tensor) -> Tensor:
    """Cross product over the first axis, (3, ...) x (3, ...) with broadcasting."""
    return torch.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def mv0(r: Tensor, v: Tensor) -> Tensor:
    """(3, 3, ...) @ (3, ...) -> (3, ...)."""
    return (r * v.unsqueeze(0)).sum(1)


def mm0(a: Tensor, b: Tensor) -> Tensor:
    """(3, 3, ...) @ (3, 3, ...) -> (3, 3, ...)."""
    return (a.unsqueeze(2) * b.unsqueeze(0)).sum(1)


def quat_to_mat0(q: Tensor) -> Tensor:
    """q: (4, ...) (normalised here) -> rotation matrices (3, 3, ...)."""
    q = q / q.norm(dim=0, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(0)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
            torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]),
        ]
    )


def axis_angle_mat0(axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues: unit axis (3, n), angle (n, B) -> (3, 3, n, B)."""
    x, y, z = (a.unsqueeze(-1) for a in axis.unbind(0))
    s, c = torch.sin(angle), 1 - torch.cos(angle)
    return torch.stack(
        [
            torch.stack([1 - c * (y * y + z * z), c * x * y - s * z, c * x * z + s * y]),
            torch.stack([c * x * y + s * z, 1 - c * (x * x + z * z), c * y * z - s * x]),
            torch.stack([c * x * z - s * y, c * y * z + s * x, 1 - c * (x * x + y * y)]),
        ]
    )
