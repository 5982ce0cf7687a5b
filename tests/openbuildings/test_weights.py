"""Loss weight maps against brute force and scipy: U-Net distance weights, edges, Gaussian-of-edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from labworks.openbuildings import weights as W
from labworks.openbuildings.weights import (
    class_balance_map,
    edge_map,
    gaussian_edge_weight_map,
    gaussian_kernel1d,
    unet_weight_map,
    weight_map,
)

CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def random_instances(rng: np.random.Generator, h: int, w: int, n: int, max_side: int = 9) -> np.ndarray:
    """Random (possibly touching/overlapping) rectangles with non-contiguous ids."""
    inst = np.zeros((h, w), np.int32)
    ids = rng.choice(np.arange(1, 10_000), size=n, replace=False)
    for i in ids:
        r, c = rng.integers(0, h - 2), rng.integers(0, w - 2)
        inst[r : r + rng.integers(1, max_side), c : c + rng.integers(1, max_side)] = i
    return inst


def brute_unet(inst: np.ndarray, w0: float, sigma: float, class_balance: bool = True) -> np.ndarray:
    """Per-pixel reference: full EDT to every building, sort, two smallest (inf when missing)."""
    ids = [i for i in np.unique(inst) if i > 0]
    dists = [ndimage.distance_transform_edt(inst != i) for i in ids]
    dists += [np.full(inst.shape, np.inf)] * 2
    d = np.sort(np.stack(dists), axis=0)
    wc = class_balance_map(inst) if class_balance else np.ones(inst.shape)
    return wc + np.where(inst == 0, w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2)), 0.0)


def reference_edges(inst: np.ndarray) -> np.ndarray:
    hi = ndimage.grey_dilation(inst, footprint=CROSS, mode="nearest")
    lo = ndimage.grey_erosion(inst, footprint=CROSS, mode="nearest")
    return (hi != lo).astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("w0", "sigma"), [(10.0, 5.0), (10.0, 1.5), (3.0, 8.0)])
def test_unet_weight_map_equals_brute_force(seed: int, w0: float, sigma: float) -> None:
    rng = np.random.default_rng(seed)
    inst = random_instances(rng, 48, 56, n=int(rng.integers(2, 14)))
    got = unet_weight_map(inst, w0=w0, sigma=sigma)
    assert got.dtype == np.float32 and got.shape == inst.shape
    np.testing.assert_allclose(got, brute_unet(inst, w0, sigma), rtol=1e-6, atol=1e-6)
    got_nb = unet_weight_map(inst, w0=w0, sigma=sigma, class_balance=False)
    np.testing.assert_allclose(got_nb, brute_unet(inst, w0, sigma, False), rtol=1e-6, atol=1e-6)


def test_unet_weight_map_far_buildings_use_truncation_bound() -> None:
    # buildings farther apart than the margin: the computed term is 0 where the true one is < 1e-7
    inst = np.zeros((20, 200), np.int32)
    inst[5:10, 2:6] = 1
    inst[5:10, 190:195] = 2
    np.testing.assert_allclose(unet_weight_map(inst), brute_unet(inst, 10, 5), rtol=1e-6, atol=1e-6)


def test_unet_weight_map_closed_form_and_small_counts() -> None:
    inst = np.zeros((11, 21), np.int32)
    inst[5, 5] = 7
    inst[5, 15] = 9
    w = unet_weight_map(inst, w0=10, sigma=5, class_balance=False)
    # midpoint: d1 = d2 = 5 -> 1 + 10 exp(-100 / 50)
    assert w[5, 10] == pytest.approx(1 + 10 * math.exp(-2.0), rel=1e-6)
    # (5, 6): d1 = 1, d2 = 9
    assert w[5, 6] == pytest.approx(1 + 10 * math.exp(-2.0), rel=1e-6)
    # (0, 10): d1 = d2 = sqrt(25 + 25)
    assert w[0, 10] == pytest.approx(1 + 10 * math.exp(-((2 * math.sqrt(50)) ** 2) / 50), rel=1e-6)
    assert w[5, 5] == 1.0 and w[5, 15] == 1.0  # buildings get w_c only
    # fewer than two buildings: the separation term vanishes (d2 = inf), w = w_c
    one = np.zeros((10, 10), np.int32)
    one[3:5, 3:5] = 4
    np.testing.assert_array_equal(unet_weight_map(one), class_balance_map(one))
    np.testing.assert_array_equal(unet_weight_map(np.zeros((6, 7), np.int32)), np.ones((6, 7), np.float32))
    # no background pixel at all
    np.testing.assert_array_equal(unet_weight_map(np.full((4, 4), 3)), np.ones((4, 4), np.float32))


def test_class_balance_map() -> None:
    inst = np.zeros((4, 4), np.int64)
    inst[0, :2] = 1
    inst[3, 3] = 5
    inst[2, 0] = 2  # 4 building pixels, 12 background -> building weight 3
    w = class_balance_map(inst)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, np.where(inst > 0, 3.0, 1.0))
    tiny = np.zeros((10, 10), np.int32)
    tiny[0, 0] = 1  # 99 / 1, capped
    assert class_balance_map(tiny)[0, 0] == 10.0
    assert class_balance_map(tiny, max_weight=None)[0, 0] == 99.0
    np.testing.assert_array_equal(class_balance_map(np.zeros((3, 3), np.int32)), np.ones((3, 3)))
    # batched torch, per image
    batch = torch.from_numpy(np.stack([inst, tiny[:4, :4]]))
    wt = class_balance_map(batch)
    assert isinstance(wt, torch.Tensor) and wt.shape == (2, 4, 4)
    np.testing.assert_array_equal(wt[0].numpy(), w)
    assert wt[1, 0, 0] == 10.0  # 15 / 1 capped
    with pytest.raises(ValueError, match="max_weight"):
        class_balance_map(inst, max_weight=0.5)


def test_edge_map_matches_morphology_and_marks_contacts() -> None:
    rng = np.random.default_rng(5)
    inst = np.stack([random_instances(rng, 30, 40, 10) for _ in range(3)])
    e = edge_map(torch.from_numpy(inst))
    assert e.dtype == torch.float32 and e.shape == (3, 30, 40)
    for b in range(3):
        np.testing.assert_array_equal(e[b].numpy(), reference_edges(inst[b]))
    np.testing.assert_array_equal(edge_map(inst[0]).numpy(), reference_edges(inst[0]))
    # two touching buildings, no background between them
    t = np.zeros((8, 10), np.int32)
    t[2:6, 1:5] = 1
    t[2:6, 5:9] = 2
    e2 = edge_map(t).numpy()
    assert (e2[2:6, 4] == 1).all() and (e2[2:6, 5] == 1).all()  # both sides of the shared wall
    assert (e2[3:5, 2:4] == 0).all()  # interior of building 1
    assert e2[1, 2] == 1 and e2[2, 2] == 1  # both sides of the building/background boundary
    assert e2[0, 0] == 0  # far background
    # border of the image is not an edge
    full = np.full((5, 5), 3)
    assert edge_map(full).sum() == 0


@pytest.mark.parametrize("sigma", [0.1, 1.0, 2.5, 5.0, 40.0])
def test_gaussian_edge_weight_map_equals_scipy(sigma: float) -> None:
    rng = np.random.default_rng(7)
    inst = np.stack([random_instances(rng, 33, 47, 8) for _ in range(2)])
    k = gaussian_kernel1d(sigma)
    r = len(k) // 2
    peak = k[r] + k[r + 1] if len(k) > 1 else k[r]
    got = gaussian_edge_weight_map(torch.from_numpy(inst), w0=10.0, sigma=sigma)
    assert got.dtype == torch.float32 and got.shape == inst.shape
    for b in range(2):
        g = ndimage.gaussian_filter(reference_edges(inst[b]), sigma, mode="reflect", truncate=4.0)
        ref = class_balance_map(inst[b]) + 10.0 * g / peak
        np.testing.assert_allclose(got[b].numpy(), ref, rtol=1e-5, atol=1e-5)
    nb = gaussian_edge_weight_map(inst[0], sigma=sigma, w0=3.0, class_balance=False)
    g = ndimage.gaussian_filter(reference_edges(inst[0]), sigma, mode="reflect", truncate=4.0)
    np.testing.assert_allclose(nb.numpy(), 1.0 + 3.0 * g / peak, rtol=1e-5, atol=1e-5)


def test_gaussian_kernel_and_both_blur_methods_match_scipy() -> None:
    x = torch.rand(2, 21, 30, dtype=torch.float64)
    for sigma in (0.7, 3.0, 12.0):
        ref = np.stack([ndimage.gaussian_filter(a, sigma, mode="reflect") for a in x.numpy()])
        for method in ("matmul", "conv"):
            np.testing.assert_allclose(W._gaussian_blur(x, sigma, method=method).numpy(), ref, atol=1e-12)


def test_straight_edge_far_from_others_peaks_at_w0() -> None:
    inst = np.zeros((120, 120), np.int64)
    inst[:, 60:] = 1
    w = gaussian_edge_weight_map(inst, w0=10.0, sigma=5.0, class_balance=False).numpy()
    np.testing.assert_allclose(w[:, 59], 11.0, rtol=1e-6)
    np.testing.assert_allclose(w[:, 60], 11.0, rtol=1e-6)
    assert w.max() == pytest.approx(11.0, rel=1e-6)
    assert w[0, 0] == pytest.approx(1.0, abs=1e-6)  # 59 px away, beyond the 4-sigma truncation


def test_gap_between_buildings_weighs_more_than_isolated_edge() -> None:
    inst = np.zeros((64, 96), np.int32)
    inst[20:44, 10:40] = 1
    inst[20:44, 43:73] = 2  # 3 px gap
    for w in (
        gaussian_edge_weight_map(inst, class_balance=False).numpy(),
        unet_weight_map(inst, class_balance=False),
    ):
        assert w[32, 41] > w[32, 8] + 1.0  # gap pixel vs outer side of building 1


def test_weight_map_dispatcher() -> None:
    rng = np.random.default_rng(3)
    inst = torch.from_numpy(np.stack([random_instances(rng, 32, 32, 6) for _ in range(3)])).long()
    assert torch.equal(weight_map(inst, kind="none", w0=10, sigma=5), torch.ones(3, 32, 32))
    g = weight_map(inst, kind="gaussian", w0=10, sigma=5)
    assert torch.equal(g, gaussian_edge_weight_map(inst, w0=10, sigma=5))
    u = weight_map(inst, kind="unet", w0=10, sigma=5)
    assert u.shape == (3, 32, 32) and u.dtype == torch.float32
    for b in range(3):
        np.testing.assert_array_equal(u[b].numpy(), unet_weight_map(inst[b].numpy(), w0=10, sigma=5))
    assert weight_map(inst[0], kind="unet", w0=10, sigma=5).shape == (32, 32)
    with pytest.raises(ValueError, match="unknown weight map kind 'dist'"):
        weight_map(inst, kind="dist", w0=10, sigma=5)  # type: ignore[arg-type]


def test_input_validation() -> None:
    with pytest.raises(TypeError, match="integer building ids"):
        gaussian_edge_weight_map(torch.zeros(4, 4))
    with pytest.raises(TypeError, match="integer building ids"):
        unet_weight_map(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        unet_weight_map(np.zeros((2, 4, 4), np.int32))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(B, H, W\)"):
        edge_map(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=">= 0"):
        unet_weight_map(np.full((3, 3), -1))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_edge_weight_map(torch.zeros(4, 4, dtype=torch.long), sigma=0.0)
    with pytest.raises(ValueError, match="w0"):
        unet_weight_map(np.zeros((4, 4), np.int32), w0=-1.0)
