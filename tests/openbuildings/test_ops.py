"""connected_components (reference and Triton kernel) == scipy.ndimage.label; instance_stats == scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from labworks.core import has_triton
from labworks.core.testing import check_op, skip_unless
from labworks.openbuildings.ops import connected_components, instance_stats

STRUCT = {4: None, 8: np.ones((3, 3), bool)}


def _scipy(mask: np.ndarray, conn: int) -> np.ndarray:
    if mask.ndim == 2:
        return ndi.label(mask, structure=STRUCT[conn])[0]
    return np.stack([ndi.label(m, structure=STRUCT[conn])[0] for m in mask])


def spiral(n: int) -> np.ndarray:
    """A 1-pixel-wide square spiral: one component whose pixels are far apart along the path."""
    m = np.zeros((n, n), bool)
    r, c, dr, dc = 0, 0, 0, 1
    lo_r, hi_r, lo_c, hi_c = 0, n - 1, 0, n - 1
    for _ in range(4 * n):
        length = (hi_c - lo_c) if dr == 0 else (hi_r - lo_r)
        if length <= 0:
            break
        for _ in range(length):
            m[r, c] = True
            r, c = r + dr, c + dc
        if (dr, dc) == (0, 1):
            lo_r += 2
        elif (dr, dc) == (1, 0):
            hi_c -= 2
        elif (dr, dc) == (0, -1):
            hi_r -= 2
        else:
            lo_c += 2
        dr, dc = dc, -dr
    m[r, c] = True
    return m


def nested_us(n: int) -> np.ndarray:
    """Nested U-shapes open at the top, plus a comb whose teeth only meet at the bottom row:
    labels must travel back up from the last row to the first pixel."""
    m = np.zeros((n, n), bool)
    for k in range(0, n // 2, 2):
        m[k : n - k, k] = True
        m[k : n - k, n - 1 - k] = True
        m[n - 1 - k, k : n - k] = True
    return m


def comb(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[:, ::2] = True
    m[-1, :] = True
    return m


def _random_masks(seed: int, count: int, max_hw: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        h, w = rng.integers(1, max_hw, 2)
        out.append(rng.random((h, w)) < rng.uniform(0.1, 0.9))
    return out


@pytest.mark.parametrize("conn", [4, 8])
def test_reference_equals_scipy_on_random_masks(conn: int) -> None:
    for m in _random_masks(seed=conn, count=60, max_hw=40):
        got = connected_components(torch.from_numpy(m), conn)
        assert got.dtype == torch.int32 and got.shape == m.shape
        np.testing.assert_array_equal(got.numpy(), _scipy(m, conn))


@pytest.mark.parametrize("conn", [4, 8])
@pytest.mark.parametrize(
    "make",
    [
        lambda: spiral(61),
        lambda: spiral(60).T,
        lambda: nested_us(40),
        lambda: nested_us(40)[::-1],
        lambda: comb(30, 41),
        lambda: comb(30, 41)[::-1, ::-1],
        lambda: np.eye(37, dtype=bool)[::-1],  # anti-diagonal: 37 components (4), 1 (8)
        lambda: np.indices((33, 35)).sum(0) % 2 == 0,  # checkerboard
    ],
    ids=["spiral", "spiralT", "us", "us_flip", "comb", "comb_flip", "antidiag", "checker"],
)
def test_reference_hard_shapes(conn: int, make) -> None:
    m = np.ascontiguousarray(make())
    want = _scipy(m, conn)
    np.testing.assert_array_equal(connected_components(torch.from_numpy(m), conn).numpy(), want)


def test_spiral_is_one_component() -> None:
    m = spiral(101)
    assert ndi.label(m)[1] == 1 and m.sum() > 2500
    lab = connected_components(torch.from_numpy(m), 4)
    assert int(lab.max()) == 1 and int((lab > 0).sum()) == m.sum()


@pytest.mark.parametrize("conn", [4, 8])
def test_empty_full_and_degenerate(conn: int) -> None:
    for shape in [(7, 9), (1, 1), (1, 13), (13, 1), (0, 5), (3, 0, 4)]:
        z = torch.zeros(shape, dtype=torch.bool)
        assert connected_components(z, conn).eq(0).all()
        o = torch.ones(shape, dtype=torch.bool)
        got = connected_components(o, conn)
        assert got.shape == o.shape and got.dtype == torch.int32
        assert got.eq(1).all()


@pytest.mark.parametrize("conn", [4, 8])
def test_batch_numbers_each_image_from_one(conn: int) -> None:
    rng = np.random.default_rng(3)
    m = rng.random((4, 23, 17)) < 0.45
    m[1] = False  # an empty image between full ones
    m[2] = True
    got = connected_components(torch.from_numpy(m), conn).numpy()
    np.testing.assert_array_equal(got, _scipy(m, conn))
    assert got[2].max() == 1 and got[1].max() == 0


def test_larger_building_like_mask_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    m = np.zeros((300, 300), bool)
    for _ in range(150):
        r, c = rng.integers(0, 285, 2)
        h, w = rng.integers(2, 15, 2)
        m[r : r + h, c : c + w] = True
    for conn in (4, 8):
        np.testing.assert_array_equal(
            connected_components(torch.from_numpy(m), conn).numpy(), _scipy(m, conn)
        )


def test_input_validation() -> None:
    with pytest.raises(TypeError, match="bool"):
        connected_components(torch.zeros(3, 3), 4)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        connected_components(torch.zeros(3, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="connectivity"):
        connected_components(torch.zeros(3, 3, dtype=torch.bool), 6)


def test_opcheck_reference_registration() -> None:
    m = torch.rand(2, 6, 7) < 0.5
    torch.library.opcheck(
        connected_components.op,
        (m, 8),
        test_utils=["test_schema", "test_faketensor", "test_autograd_registration"],
    )


@pytest.mark.triton_interp
@pytest.mark.parametrize("conn", [4, 8])
def test_triton_kernel_equals_reference_and_scipy(conn: int) -> None:
    skip_unless(has_triton(), "triton is not importable", "TRITON")
    cases = [*_random_masks(seed=10 + conn, count=6, max_hw=20), spiral(21), nested_us(16), comb(9, 13)]
    rng = np.random.default_rng(conn)
    cases.append(rng.random((3, 11, 14)) < 0.5)  # batch
    cases.append(np.zeros((5, 6), bool))
    cases.append(np.ones((5, 6), bool))
    for m in cases:
        t = torch.from_numpy(np.ascontiguousarray(m))
        got = connected_components(t, conn, backend="triton")
        np.testing.assert_array_equal(got.cpu().numpy(), _scipy(m, conn))
    t = torch.from_numpy(cases[-3])
    assert check_op(connected_components, t, conn, require_triton=True) == ["dispatch", "triton", "opcheck"]


@pytest.mark.gpu
@pytest.mark.parametrize("conn", [4, 8])
def test_triton_kernel_on_cuda_large(conn: int) -> None:
    skip_unless(torch.cuda.is_available(), "no CUDA device", "GPU")
    rng = np.random.default_rng(0)
    for m in [rng.random((2, 1000, 1500)) < 0.55, spiral(1001)[None], nested_us(1000)[None]]:
        got = connected_components(torch.from_numpy(m).cuda(), conn)
        np.testing.assert_array_equal(got.cpu().numpy(), _scipy(m, conn))


def test_instance_stats_match_scipy() -> None:
    rng = np.random.default_rng(5)
    m = rng.random((40, 50)) < 0.4
    lab, n = ndi.label(m)
    prob = rng.random((40, 50)).astype(np.float32)
    st = instance_stats(torch.from_numpy(lab), torch.from_numpy(prob), n)
    idx = np.arange(1, n + 1)
    np.testing.assert_array_equal(st["area"].numpy(), ndi.sum_labels(np.ones_like(lab), lab, idx))
    np.testing.assert_allclose(
        st["prob_sum"].numpy(), ndi.sum_labels(prob.astype(np.float64), lab, idx), rtol=1e-12
    )
    np.testing.assert_allclose(
        st["confidence"].numpy(), ndi.mean(prob.astype(np.float64), lab, idx), rtol=1e-12
    )
    np.testing.assert_allclose(
        st["centroid"].numpy(), np.array(ndi.center_of_mass(np.ones_like(lab), lab, idx))
    )
    boxes = ndi.find_objects(lab)
    want = np.array([[s[0].start, s[1].start, s[0].stop - 1, s[1].stop - 1] for s in boxes])
    np.testing.assert_array_equal(st["bbox"].numpy(), want)
    assert st["row_sum"].dtype == torch.int64


def test_instance_stats_missing_ids_and_validation() -> None:
    lab = torch.tensor([[0, 2], [2, 0]], dtype=torch.int32)
    st = instance_stats(lab, torch.full((2, 2), 0.5), 3)
    assert st["area"].tolist() == [0, 2, 0]
    assert torch.isnan(st["confidence"][0]) and st["confidence"][1] == 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        instance_stats(lab, torch.zeros(2, 2), 1)
    with pytest.raises(ValueError, match="same shape"):
        instance_stats(lab, torch.zeros(3, 2), 3)
    with pytest.raises(TypeError, match="integer"):
        instance_stats(lab.float(), torch.zeros(2, 2), 3)
