"""Joint, batched, reproducible augmentation for segmentation, and mixup adapted to soft masks.

:func:`random_augment` draws per-sample parameters from a ``torch.Generator`` only (never the global RNG), so
the same generator state gives the same output. Geometric ops (flips, rot90, zoom) hit the image, the instance
labels and every ``extra`` map identically; photometric ops (brightness, contrast, saturation, hue, blur,
noise) hit the image only. Weight maps should be computed *after* augmentation from the returned instances.

:func:`mixup`: ``lam ~ Beta(alpha, alpha)`` per sample, partner = a random permutation of the batch; images,
soft targets and loss weights are mixed with the same ``lam`` (targets are never thresholded); valid masks
are intersected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from scipy import special
from torch import Tensor

from labworks.core import Config
from labworks.openbuildings.weights import _gaussian_blur

__all__ = ["AugmentConfig", "mixup", "random_augment", "sample_beta"]


class AugmentConfig(Config):
    """Random augmentation settings (photometric amplitudes in normalised-image units).

    Attributes:
        flip: random horizontal and vertical flips (each with p = 0.5).
        rot90: random rotation by k * 90° (k uniform in 0..3; only 0 or 180° when H != W).
        brightness: add ``b ~ U(-brightness, brightness)`` to every channel.
        contrast: scale deviations from the per-image mean by ``c ~ U(1 - contrast, 1 + contrast)``.
        saturation: scale deviations of the first 3 channels from their per-pixel mean (grey) by
            ``s ~ U(1 - saturation, 1 + saturation)`` (images with >= 3 channels).
        hue: rotate the first 3 channels about the grey axis by ``2π h``, ``h ~ U(-hue, hue)`` (turns).
        noise_std: additive Gaussian noise standard deviation.
        scale: random zoom factor range (log-uniform) with a random shift keeping the image covering the
            output (zoom in) or inside it (zoom out); ``None`` disables. Zoomed-out borders are zero in every
            tensor: pass a valid mask of ones in ``extra`` to exclude them from the loss.
        blur_p: probability of a Gaussian blur with ``sigma ~ U(*blur_sigma)`` pixels.
        blur_sigma: blur sigma range in pixels.
        interpolation: image resampling in the zoom (labels always nearest; float extras bilinear).
    """

    flip: bool = True
    rot90: bool = True
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0, lt=1)
    saturation: float = Field(0.2, ge=0, le=1)
    hue: float = Field(0.02, ge=0, le=0.5)
    noise_std: float = Field(0.03, ge=0)
    scale: tuple[float, float] | None = (0.8, 1.25)
    blur_p: float = Field(0.0, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    interpolation: Literal["bilinear", "nearest"] = "bilinear"

    @model_validator(mode="after")
    def _check_ranges(self) -> AugmentConfig:
        if self.scale is not None:
            lo, hi = self.scale
            if not 0 < lo <= hi:
                raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi, got {self.scale}")
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            raise ValueError(f"blur_sigma must be (lo, hi) with 0 < lo <= hi, got {self.blur_sigma}")
        return self


def _rand(n: int, gen: torch.Generator, device: torch.device) -> Tensor:
    """``n`` uniforms in [0, 1) (float64) from ``gen``, moved to ``device``."""
    return torch.rand(n, generator=gen, device=gen.device, dtype=torch.float64).to(device)


def _uniform(lo: float, hi: float, n: int, gen: torch.Generator, device: torch.device) -> Tensor:
    return lo + (hi - lo) * _rand(n, gen, device)


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    """Per-sample values ``(B,)`` viewed to broadcast against ``like`` ``(B, ...)`` in its dtype."""
    return v.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def _geometric(
    tensors: list[Tensor], modes: list[str], cfg: AugmentConfig, gen: torch.Generator, device: torch.device
) -> list[Tensor]:
    """Apply the same random flips / rot90 / zoom to every ``(B, K, H, W)`` tensor (float; labels as float)."""
    b, _, h, w = tensors[0].shape
    if cfg.flip:
        fh = _rand(b, gen, device) < 0.5
        fv = _rand(b, gen, device) < 0.5
        tensors = [torch.where(fh.view(-1, 1, 1, 1), t.flip(-1), t) for t in tensors]
        tensors = [torch.where(fv.view(-1, 1, 1, 1), t.flip(-2), t) for t in tensors]
    if cfg.rot90:
        if h == w:
            k = torch.randint(0, 4, (b,), generator=gen, device=gen.device).to(device)
        else:
            k = 2 * torch.randint(0, 2, (b,), generator=gen, device=gen.device).to(device)
        for kk in (1, 2, 3):
            m = (k == kk).view(-1, 1, 1, 1)
            if h != w and kk != 2:
                continue
            tensors = [torch.where(m, t.rot90(kk, dims=(-2, -1)), t) for t in tensors]
    if cfg.scale is not None and cfg.scale != (1.0, 1.0):
        lo, hi = cfg.scale
        s = torch.exp(_uniform(math.log(lo), math.log(hi), b, gen, device))
        span = (1.0 - 1.0 / s).abs()
        tx = (2.0 * _rand(b, gen, device) - 1.0) * span
        ty = (2.0 * _rand(b, gen, device) - 1.0) * span
        theta = torch.zeros(b, 2, 3, dtype=torch.float64, device=device)
        theta[:, 0, 0] = 1.0 / s
        theta[:, 1, 1] = 1.0 / s
        theta[:, 0, 2] = tx
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
        out = []
        for t, mode in zip(tensors, modes, strict=True):
            # sample in >= float32: bf16/fp16 grid coordinates cannot address pixels of a large tile
            work = t if t.dtype in (torch.float32, torch.float64) else t.float()
            res = F.grid_sample(
                work, grid.to(work.dtype), mode=mode, padding_mode="zeros", align_corners=False
            )
            out.append(res.to(t.dtype))
        tensors = out
    return tensors


def _hue_rotation(theta: Tensor) -> Tensor:
    """Rotation matrices ``(B, 3, 3)`` about the grey axis ``(1, 1, 1) / sqrt(3)`` by angles ``theta`` (B,)."""
    a = 1.0 / math.sqrt(3.0)
    u = torch.full((3,), a, dtype=theta.dtype, device=theta.device)
    ux = torch.tensor([[0.0, -a, a], [a, 0.0, -a], [-a, a, 0.0]], dtype=theta.dtype, device=theta.device)
    eye = torch.eye(3, dtype=theta.dtype, device=theta.device)
    c, s = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    return c * eye + s * ux + (1 - c) * torch.outer(u, u)


def _photometric(x: Tensor, cfg: AugmentConfig, gen: torch.Generator) -> Tensor:
    b, c = x.shape[:2]
    dev = x.device
    if cfg.brightness > 0:
        x = x + _bcast(_uniform(-cfg.brightness, cfg.brightness, b, gen, dev), x)
    if cfg.contrast > 0:
        f = _bcast(_uniform(1 - cfg.contrast, 1 + cfg.contrast, b, gen, dev), x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * f + mean
    if c >= 3 and cfg.saturation > 0:
        f = _bcast(_uniform(1 - cfg.saturation, 1 + cfg.saturation, b, gen, dev), x)
        rgb = x[:, :3]
        grey = rgb.mean(dim=1, keepdim=True)
        x = torch.cat([grey + (rgb - grey) * f, x[:, 3:]], dim=1)
    if c >= 3 and cfg.hue > 0:
        theta = 2 * math.pi * _uniform(-cfg.hue, cfg.hue, b, gen, dev)
        rot = _hue_rotation(theta).to(x.dtype)
        rgb = torch.einsum("bij,bjhw->bihw", rot, x[:, :3])
        x = torch.cat([rgb, x[:, 3:]], dim=1)
    if cfg.blur_p > 0:
        do = _rand(b, gen, dev) < cfg.blur_p
        sig = _uniform(cfg.blur_sigma[0], cfg.blur_sigma[1], b, gen, dev)
        rows = []
        for i in range(b):
            rows.append(_gaussian_blur(x[i], float(sig[i])).to(x.dtype) if bool(do[i]) else x[i])
        x = torch.stack(rows)
    if cfg.noise_std > 0:
        noise = torch.randn(x.shape, generator=gen, device=gen.device, dtype=torch.float32)
        x = x + cfg.noise_std * noise.to(device=dev, dtype=x.dtype)
    return x


def random_augment(
    image: Tensor,
    instances: Tensor,
    *,
    cfg: AugmentConfig,
    generator: torch.Generator,
    extra: Sequence[Tensor] = (),
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Jointly augment a batch with per-sample random parameters drawn from ``generator``.

    Args:
        image: float ``(B, C, H, W)`` (normalised).
        instances: integer ``(B, H, W)`` building ids; resampled with nearest neighbour (ids kept exactly).
        cfg: what to apply (:class:`AugmentConfig`).
        generator: the only randomness source (a generator on the image's device avoids host transfers).
        extra: maps ``(B, H, W)`` or ``(B, K, H, W)`` following the same geometry: floating ones (teacher
            probabilities, float valid masks) bilinear, bool/integer ones nearest; dtypes kept.

    Returns:
        ``(image, instances, extras)``; shapes change only by rot90 (never for H != W, which uses 0/180°).
    """
    if image.dim() != 4 or not image.dtype.is_floating_point:
        raise ValueError(f"image must be a float (B, C, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
    b, _, h, w = image.shape
    if instances.shape != (b, h, w):
        raise ValueError(f"instances shape {tuple(instances.shape)} must be (B, H, W) = {(b, h, w)}")
    if instances.dtype.is_floating_point or instances.dtype == torch.bool:
        raise TypeError(f"instances must be an integer tensor of building ids, got {instances.dtype}")
    for i, e in enumerate(extra):
        if e.dim() not in (3, 4) or e.shape[0] != b or tuple(e.shape[-2:]) != (h, w):
            raise ValueError(
                f"extra[{i}] shape {tuple(e.shape)} must be (B, H, W) or (B, K, H, W) with B, H, W = {(b, h, w)}"
            )
    dev = image.device
    big_ids = instances.numel() > 0 and int(instances.max()) >= 2**24
    lab = instances.to(device=dev, dtype=torch.float64 if big_ids else torch.float32)[:, None]
    tensors = [image, lab]
    modes: list[str] = [cfg.interpolation, "nearest"]
    for e in extra:
        e4 = e.to(dev)[:, None] if e.dim() == 3 else e.to(dev)
        if e.dtype.is_floating_point:
            tensors.append(e4)
            modes.append("bilinear")
        else:
            tensors.append(e4.to(torch.float64 if e.dtype == torch.int64 else torch.float32))
            modes.append("nearest")
    tensors = _geometric(tensors, modes, cfg, generator, dev)
    out_image = _photometric(tensors[0], cfg, generator)
    out_inst = tensors[1][:, 0].round().to(instances.dtype)
    outs = []
    for e, t in zip(extra, tensors[2:], strict=True):
        t = t[:, 0] if e.dim() == 3 else t
        if e.dtype == torch.bool:
            t = t > 0.5
        elif not e.dtype.is_floating_point:
            t = t.round()
        outs.append(t.to(e.dtype))
    return out_image, out_inst, outs


def sample_beta(alpha: float, n: int, generator: torch.Generator) -> Tensor:
    """``n`` draws of ``Beta(alpha, alpha)`` (float64, on the generator's device), reproducible from ``generator``.

    Inverse-CDF sampling: ``u ~ U[0, 1)`` from ``generator``, ``lam = I^{-1}_u(alpha, alpha)`` with
    ``scipy.special.betaincinv`` (exact to float64; no rejection loop, so one uniform per draw).
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    lam = special.betaincinv(alpha, alpha, u.cpu().numpy())
    return torch.from_numpy(np.asarray(lam, dtype=np.float64)).to(generator.device)


def mixup(
    image: Tensor,
    target: Tensor,
    weight: Tensor | None,
    *,
    alpha: float = 0.2,
    generator: torch.Generator,
    valid: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor]:
    """Mixup for segmentation: ``x = lam x_a + (1 - lam) x_b`` per sample, partner ``b = perm(a)``.

    Args:
        image: ``(B, C, H, W)``.
        target: soft targets ``(B, H, W)`` (or ``(B, 1, H, W)``), mixed with the same ``lam``, never thresholded.
        weight: loss weights like ``target``, mixed linearly with the same ``lam`` (the loss is then the
            ``lam``-weighted blend of the two samples' weights; ``max(w_a, w_b)`` is an unverified alternative);
            ``None`` passes through.
        alpha: Beta concentration; ``alpha = 0`` disables mixing (``lam = 1``, identity permutation).
        generator: draws ``lam`` (see :func:`sample_beta`) and then the permutation.
        valid: bool masks like ``target``; the result is ``valid_a & valid_b``; ``None`` passes through.

    Returns:
        ``(image, target, weight, valid, lam)`` with ``lam`` ``(B,)`` float32 on the image's device.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    b = image.shape[0]
    for name, t in (("target", target), ("weight", weight), ("valid", valid)):
        if t is not None and (t.shape[0] != b or tuple(t.shape[-2:]) != tuple(image.shape[-2:])):
            raise ValueError(f"{name} shape {tuple(t.shape)} does not match image shape {tuple(image.shape)}")
    dev = image.device
    if alpha == 0:
        lam = torch.ones(b, dtype=torch.float64, device=dev)
        perm = torch.arange(b, device=dev)
    else:
        lam = sample_beta(alpha, b, generator).to(dev)
        perm = torch.randperm(b, generator=generator, device=generator.device).to(dev)

    def mix(t: Tensor) -> Tensor:
        lt = _bcast(lam, t) if t.dtype.is_floating_point else _bcast(lam, t.float())
        t = t if t.dtype.is_floating_point else t.float()
        return lt * t + (1 - lt) * t[perm]

    out_valid = None
    if valid is not None:
        vb = valid if valid.dtype == torch.bool else valid > 0.5
        out_valid = vb & vb[perm]
    return (
        mix(image),
        mix(target),
        mix(weight) if weight is not None else None,
        out_valid,
        lam.to(torch.float32),
    )
