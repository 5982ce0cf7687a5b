"""Joint augmentation keeps image/labels/extras aligned and is reproducible; mixup mixes, never thresholds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from labworks.core import ConfigError
from labworks.openbuildings.augment import AugmentConfig, mixup, random_augment, sample_beta

GEOM_ONLY = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0, "noise_std": 0.0}


def instance_batch(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    inst = torch.zeros(b, h, w, dtype=torch.long)
    for i in range(b):
        for k in range(1, 9):
            r = int(torch.randint(0, h - 4, (1,), generator=g))
            c = int(torch.randint(0, w - 4, (1,), generator=g))
            inst[i, r : r + 2 + k % 5, c : c + 3 + k % 4] = 100 * i + k
    return inst


def aligned_image(inst: torch.Tensor) -> torch.Tensor:
    """Channel 0 = instance ids, channels 1-2 = row / column coordinates (so flips cannot hide)."""
    b, h, w = inst.shape
    rows = torch.arange(h, dtype=torch.float32).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, w).expand(b, h, w)
    return torch.stack([inst.float(), rows, cols], dim=1)


def dihedral(a: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of an (..., H, W) array, by numpy."""
    out = []
    for k in range(4):
        r = np.rot90(a, k, axes=(-2, -1))
        out += [r, np.flip(r, -1)]
    return out


@pytest.mark.parametrize(
    "geom",
    [
        {"flip": True, "rot90": False, "scale": None},
        {"flip": False, "rot90": True, "scale": None},
        {"flip": False, "rot90": False, "scale": (0.7, 1.4)},
        {"flip": True, "rot90": True, "scale": (0.8, 1.25)},
    ],
)
def test_geometric_ops_keep_image_labels_and_extras_aligned(geom: dict) -> None:
    inst = instance_batch(6, 32, 32)
    image = aligned_image(inst)
    valid = torch.ones(6, 32, 32, dtype=torch.bool)
    prob = inst.float() / 1000.0
    cfg = AugmentConfig(**GEOM_ONLY, **geom, interpolation="nearest")
    img, out, (v, p) = random_augment(
        image, inst, cfg=cfg, generator=torch.Generator().manual_seed(1), extra=[valid, prob]
    )
    assert out.dtype == torch.long and v.dtype == torch.bool and p.dtype == torch.float32
    assert torch.equal(img[:, 0], out.float())  # image and labels moved together
    # labels keep their ids: no new values appear
    for i in range(6):
        assert set(out[i].unique().tolist()) <= set(inst[i].unique().tolist()) | {0}
    assert not torch.equal(img[:, 1:], image[:, 1:])  # something did move
    if geom["scale"] is None:
        assert v.all()
        for i in range(6):  # each sample is one of the 8 dihedral transforms (numpy reference)
            assert any(np.array_equal(out[i].numpy(), d) for d in dihedral(inst[i].numpy()))
            assert any(np.array_equal(img[i].numpy(), d) for d in dihedral(image[i].numpy()))
    # the validity mask is False exactly where the zoom padded (coordinates fell outside the image)
    padded = (img[:, 0] == 0) & (img[:, 1] == 0) & (img[:, 2] == 0)
    assert torch.equal(~v, padded & ~v) and not (v & padded & (out != 0)).any()
    # float extras use bilinear sampling of the same geometry: equal where the label field is locally flat
    flat = (p - out.float() / 1000.0).abs() < 1e-6
    assert flat.float().mean() > 0.8


def test_zoom_out_pads_and_masks_zoom_in_does_not() -> None:
    inst = instance_batch(4, 32, 32)
    valid = torch.ones(4, 32, 32, dtype=torch.bool)
    base = {**GEOM_ONLY, "flip": False, "rot90": False}
    gen = torch.Generator().manual_seed(0)
    _, _, (v_in,) = random_augment(
        aligned_image(inst), inst, cfg=AugmentConfig(**base, scale=(1.25, 1.25)), generator=gen, extra=[valid]
    )
    assert v_in.all()
    _, out, (v_out,) = random_augment(
        aligned_image(inst), inst, cfg=AugmentConfig(**base, scale=(0.5, 0.5)), generator=gen, extra=[valid]
    )
    assert (~v_out).sum() > 0 and (out[~v_out] == 0).all()
    # half-size zoom out: about 1/4 of the output stays inside the image
    assert float(v_out.float().mean()) == pytest.approx(0.25, abs=0.03)


def test_non_square_tiles_keep_their_shape() -> None:
    inst = instance_batch(8, 32, 48)
    cfg = AugmentConfig(**GEOM_ONLY, interpolation="nearest")
    img, out, _ = random_augment(
        aligned_image(inst), inst, cfg=cfg, generator=torch.Generator().manual_seed(3)
    )
    assert img.shape == (8, 3, 32, 48) and out.shape == (8, 32, 48)
    assert torch.equal(img[:, 0], out.float())


def test_same_seed_same_output_and_global_rng_untouched() -> None:
    inst = instance_batch(4, 32, 32)
    image = torch.randn(4, 3, 32, 32)
    prob = torch.rand(4, 32, 32)
    cfg = AugmentConfig(blur_p=0.5)
    state = torch.get_rng_state()
    a = random_augment(image, inst, cfg=cfg, generator=torch.Generator().manual_seed(7), extra=[prob])
    b = random_augment(image, inst, cfg=cfg, generator=torch.Generator().manual_seed(7), extra=[prob])
    c = random_augment(image, inst, cfg=cfg, generator=torch.Generator().manual_seed(8), extra=[prob])
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2][0], b[2][0])
    assert not torch.equal(a[0], c[0])


def test_photometric_only_touches_the_image() -> None:
    inst = instance_batch(3, 16, 16)
    image = torch.randn(3, 4, 16, 16)
    cfg = AugmentConfig(flip=False, rot90=False, scale=None, noise_std=0.0, blur_p=1.0)
    img, out, (p,) = random_augment(
        image, inst, cfg=cfg, generator=torch.Generator().manual_seed(0), extra=[inst.float()]
    )
    assert torch.equal(out, inst) and torch.equal(p, inst.float())
    assert not torch.allclose(img, image)
    # brightness alone is a per-sample constant shift in [-b, b]
    cfg_b = AugmentConfig(**{**GEOM_ONLY, "brightness": 0.3}, flip=False, rot90=False, scale=None)
    img_b, _, _ = random_augment(image, inst, cfg=cfg_b, generator=torch.Generator().manual_seed(0))
    d = img_b - image
    shift = d[:, 0, 0, 0].view(-1, 1, 1, 1)
    torch.testing.assert_close(d, shift.expand_as(d), rtol=0, atol=1e-6)
    assert (shift.abs() <= 0.3).all() and shift.abs().max() > 0


def test_hue_rotation_keeps_grey_and_norm() -> None:
    inst = torch.zeros(4, 8, 8, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    grey = torch.randn(4, 1, 8, 8, generator=g).expand(4, 3, 8, 8).contiguous()
    colour = torch.randn(4, 3, 8, 8, generator=g)
    cfg = AugmentConfig(**{**GEOM_ONLY, "hue": 0.5}, flip=False, rot90=False, scale=None)
    out_grey, _, _ = random_augment(grey, inst, cfg=cfg, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out_grey, grey, rtol=0, atol=1e-5)  # rotation about the grey axis
    out_col, _, _ = random_augment(colour, inst, cfg=cfg, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out_col.norm(dim=1), colour.norm(dim=1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out_col, colour)


def test_input_and_config_errors() -> None:
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig.from_dict({"scale": [1.2, 0.8]})
    with pytest.raises(ConfigError, match="interpolation"):
        AugmentConfig.from_dict({"interpolation": "cubic"})
    cfg = AugmentConfig()
    gen = torch.Generator()
    with pytest.raises(ValueError, match="instances shape"):
        random_augment(
            torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 9, dtype=torch.long), cfg=cfg, generator=gen
        )
    with pytest.raises(TypeError, match="integer"):
        random_augment(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8), cfg=cfg, generator=gen)
    with pytest.raises(ValueError, match=r"extra\[0\]"):
        random_augment(
            torch.zeros(2, 3, 8, 8),
            torch.zeros(2, 8, 8, dtype=torch.long),
            cfg=cfg,
            generator=gen,
            extra=[torch.zeros(2, 7, 8)],
        )


def _mix_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    b = 8
    image = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 3, 4, 4).contiguous()
    target = torch.zeros(b, 4, 4)
    target[::2] = 1.0  # binary targets, alternating
    weight = 1.0 + torch.arange(b, dtype=torch.float32).view(b, 1, 1).expand(b, 4, 4)
    valid = torch.ones(b, 4, 4, dtype=torch.bool)
    valid[3, 0, 0] = False
    return image, target, weight, valid


def test_mixup_is_a_convex_pairing_and_never_thresholds() -> None:
    image, target, weight, valid = _mix_batch()
    xi, yt, wt, vt, lam = mixup(
        image, target, weight, alpha=0.4, generator=torch.Generator().manual_seed(0), valid=valid
    )
    assert lam.shape == (8,) and ((lam >= 0) & (lam <= 1)).all()
    for i in range(8):
        li = float(lam[i])
        # sample i of the image is constant = lam * i + (1 - lam) * j: recover the partner j
        j = round((float(xi[i, 0, 0, 0]) - li * i) / (1 - li)) if li < 1 - 1e-6 else i
        torch.testing.assert_close(xi[i], li * image[i] + (1 - li) * image[j])
        torch.testing.assert_close(yt[i], li * target[i] + (1 - li) * target[j])
        torch.testing.assert_close(wt[i], li * weight[i] + (1 - li) * weight[j])
        assert torch.equal(vt[i], valid[i] & valid[j])
    soft = (yt > 1e-4) & (yt < 1 - 1e-4)
    assert soft.any()  # mixed targets stay soft


def test_mixup_reproducible_alpha_zero_and_none_passthrough() -> None:
    image, target, weight, valid = _mix_batch()
    a = mixup(image, target, weight, alpha=0.2, generator=torch.Generator().manual_seed(5), valid=valid)
    b = mixup(image, target, weight, alpha=0.2, generator=torch.Generator().manual_seed(5), valid=valid)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    xi, yt, wt, vt, lam = mixup(image, target, None, alpha=0.0, generator=torch.Generator())
    assert torch.equal(xi, image) and torch.equal(yt, target) and wt is None and vt is None
    assert torch.equal(lam, torch.ones(8))
    with pytest.raises(ValueError, match="alpha"):
        mixup(image, target, weight, alpha=-1.0, generator=torch.Generator())


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.0])
def test_sample_beta_follows_the_beta_distribution(alpha: float) -> None:
    lam = sample_beta(alpha, 3000, torch.Generator().manual_seed(11)).numpy()
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 0.01
    again = sample_beta(alpha, 3000, torch.Generator().manual_seed(11)).numpy()
    np.testing.assert_array_equal(lam, again)
