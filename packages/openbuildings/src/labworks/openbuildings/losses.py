"""Pixel losses for the building segmenter: weighted BCE with soft targets, soft KL to a teacher, Dice.

Shapes: logits ``(B, 1, H, W)`` or ``(B, H, W)``; targets, weights and valid masks ``(B, H, W)`` or
``(B, 1, H, W)`` (a singleton channel is dropped everywhere, so the model's ``(B, 1, H, W)`` output pairs with
``(B, H, W)`` targets). Losses are computed in float32 whatever the logits' dtype (autocast-safe).

.. math::

    L_{BCE} = \\frac{1}{|\\Omega|} \\sum_{x \\in \\Omega} w(x)\\,[-y \\log \\sigma(z) - (1-y) \\log(1-\\sigma(z))]

with :math:`\\Omega` the valid pixels (all pixels without a mask; an empty :math:`\\Omega` gives 0, still
differentiable). The mean divides by the number of valid pixels, not by the sum of weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LossShapeError", "dice_loss", "soft_kl", "weighted_bce"]


class LossShapeError(ValueError):
    """Loss inputs whose shapes do not match."""


def _squeeze_channel(x: Tensor) -> Tensor:
    return x[:, 0] if x.dim() == 4 and x.shape[1] == 1 else x


def _prepare(
    logits: Tensor, target: Tensor, weight: Tensor | None, valid: Tensor | None, names: tuple[str, str]
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    z = _squeeze_channel(logits).float()
    y = _squeeze_channel(target).to(device=z.device, dtype=torch.float32)
    if y.shape != z.shape:
        raise LossShapeError(
            f"{names[1]} shape {tuple(target.shape)} does not match {names[0]} shape {tuple(logits.shape)}"
        )
    w = None
    if weight is not None:
        w = _squeeze_channel(weight).to(device=z.device, dtype=torch.float32)
        if w.shape != z.shape:
            raise LossShapeError(
                f"weight shape {tuple(weight.shape)} does not match {names[0]} shape {tuple(logits.shape)}"
            )
    m = None
    if valid is not None:
        m = _squeeze_channel(valid).to(z.device)
        if m.shape != z.shape:
            raise LossShapeError(
                f"valid shape {tuple(valid.shape)} does not match {names[0]} shape {tuple(logits.shape)}"
            )
        if m.dtype != torch.bool:  # a float mask (e.g. bilinearly resampled) counts where > 0.5
            m = m > 0.5 if m.dtype.is_floating_point else m != 0
    return z, y, w, m


def _reduce(per_pixel: Tensor, weight: Tensor | None, valid: Tensor | None) -> Tensor:
    if weight is not None:
        per_pixel = per_pixel * weight
    if valid is None:
        return per_pixel.mean()
    # where(), not multiplication: inf/nan outside the valid region must not leak in
    total = torch.where(valid, per_pixel, torch.zeros((), device=per_pixel.device)).sum()
    return total / valid.sum().clamp_min(1)


def weighted_bce(
    logits: Tensor, target: Tensor, weight: Tensor | None = None, valid: Tensor | None = None
) -> Tensor:
    """Mean over valid pixels of ``weight * BCE(sigmoid(logits), target)`` (scalar, float32).

    Stable at any logit (``binary_cross_entropy_with_logits``); ``target`` may be soft in [0, 1] (mixup,
    distillation) and is not checked per call (no device sync). ``valid``: bool mask (a float mask counts
    where > 0.5, an integer one where != 0).
    """
    z, y, w, m = _prepare(logits, target, weight, valid, ("logits", "target"))
    bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    return _reduce(bce, w, m)


def soft_kl(
    student_logits: Tensor, teacher_prob: Tensor, weight: Tensor | None = None, valid: Tensor | None = None
) -> Tensor:
    """Mean over valid pixels of the Bernoulli ``KL(p_t || p_s)`` (scalar, float32), ``p_s = sigmoid(logits)``.

    ``KL = p_t log(p_t / p_s) + (1 - p_t) log((1 - p_t) / (1 - p_s)) = BCE(p_s; p_t) - H(p_t)``: >= 0, zero
    iff ``p_s == p_t``; ``H(p_t)`` does not depend on the student, so the gradient is that of soft-target BCE.
    Computed with ``logsigmoid`` and ``xlogy`` (``0 log 0 = 0``), stable at any logit.
    """
    z, p, w, m = _prepare(student_logits, teacher_prob, weight, valid, ("student_logits", "teacher_prob"))
    neg_entropy = torch.special.xlogy(p, p) + torch.special.xlogy(1.0 - p, 1.0 - p)
    cross = -(p * F.logsigmoid(z) + (1.0 - p) * F.logsigmoid(-z))
    return _reduce(cross + neg_entropy, w, m)


def dice_loss(logits: Tensor, target: Tensor, valid: Tensor | None = None, eps: float = 1.0) -> Tensor:
    """Soft Dice loss ``1 - (2 sum(p y) + eps) / (sum(p) + sum(y) + eps)`` per image, averaged over the batch.

    ``p = sigmoid(logits)``; sums run over the valid pixels of each image; ``eps`` smooths empty images
    (an image with no building and ``p -> 0`` scores 0 loss).
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    z, y, _, m = _prepare(logits, target, None, valid, ("logits", "target"))
    p = torch.sigmoid(z)
    if m is not None:
        p = torch.where(m, p, torch.zeros((), device=p.device))
        y = torch.where(m, y, torch.zeros((), device=y.device))
    dims = tuple(range(1, p.dim()))
    inter = (p * y).sum(dims)
    denom = p.sum(dims) + y.sum(dims)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()
