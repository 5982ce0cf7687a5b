"""Probability map → instances → polygons, checked against scipy.ndimage and rasterio.features."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.features
import scipy.ndimage as ndi
import shapely
import torch
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, box, shape

from labworks.openbuildings.instances import (
    Footprints,
    clean_polygon,
    extract_footprints,
    label_instances,
    polygonize,
)

UTM = "EPSG:32616"
T50 = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)  # 50 cm north-up UTM grid


def scene(seed: int, h: int = 120, w: int = 140, n: int = 25) -> np.ndarray:
    """Probability map with rectangular / L-shaped / ring buildings and background noise < 0.5."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 0.45, (h, w)).astype(np.float32)
    for k in range(n):
        r, c = rng.integers(0, h - 12), rng.integers(0, w - 12)
        bh, bw = rng.integers(2, 12, 2)
        p[r : r + bh, c : c + bw] = rng.uniform(0.55, 1.0, (bh, bw))
        if k % 5 == 0 and bh > 4 and bw > 4:  # courtyard building (a hole)
            p[r + 2 : r + bh - 2, c + 2 : c + bw - 2] = 0.1
    return p


def _rasterio_by_label(lab: np.ndarray, transform: Affine, conn: int) -> dict[int, object]:
    out: dict[int, list] = {}
    for geom, v in rasterio.features.shapes(lab, mask=lab > 0, transform=transform, connectivity=conn):
        out.setdefault(int(v), []).append(shape(geom))
    return {k: shapely.union_all(v) for k, v in out.items()}


@pytest.mark.parametrize("conn", [4, 8])
def test_label_instances_equals_scipy_with_strict_threshold_and_valid(conn: int) -> None:
    p = scene(0)
    p[5, 5:9] = 0.5  # exactly at the threshold: background (strict >)
    valid = np.ones_like(p, bool)
    valid[:, 100:] = False
    lab, n = label_instances(p, threshold=0.5, connectivity=conn, valid=valid)
    want, wn = ndi.label((p > 0.5) & valid, structure=np.ones((3, 3)) if conn == 8 else None)
    assert lab.dtype == np.int32 and n == wn > 5
    np.testing.assert_array_equal(lab, want)
    assert (lab[5, 5:9] == 0).all() and (lab[:, 100:] == 0).all()
    lab_t, n_t = label_instances(torch.from_numpy(p), threshold=0.5, connectivity=conn, valid=valid)
    np.testing.assert_array_equal(lab_t, want)
    assert n_t == wn


def test_label_instances_validation() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        label_instances(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="valid"):
        label_instances(np.zeros((3, 4)), valid=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="connectivity"):
        label_instances(np.zeros((3, 4)), connectivity=6)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        label_instances([[0.1, 0.9]])  # type: ignore[arg-type]


@pytest.mark.parametrize("transform", [Affine.identity(), T50], ids=["pixels", "utm"])
def test_polygonize_equals_rasterio_shapes_and_pixel_area(transform: Affine) -> None:
    lab, n = label_instances(scene(1))
    polys = polygonize(lab, transform)
    want = _rasterio_by_label(lab, transform, 4)
    assert [k for k, _ in polys] == list(range(1, n + 1)) == sorted(want)
    counts = np.bincount(lab.ravel(), minlength=n + 1)
    px_area = abs(transform.a * transform.e - transform.b * transform.d)
    n_holes = 0
    for k, g in polys:
        assert isinstance(g, Polygon) and g.is_valid
        assert shapely.symmetric_difference(g, want[k]).area == 0
        assert g.area == pytest.approx(counts[k] * px_area, rel=1e-12)
        n_holes += len(g.interiors)
    assert n_holes > 0  # courtyard buildings keep their holes


def test_polygonize_8_connected_diagonal_pixels() -> None:
    lab = np.zeros((4, 4), np.int32)
    lab[0, 0] = lab[1, 1] = lab[2, 2] = 1  # one 8-connected instance of three diagonal pixels
    ((k, g),) = polygonize(lab, Affine.identity(), connectivity=8)
    assert k == 1 and not g.is_valid  # rasterio's self-touching ring
    fixed = clean_polygon(g, simplify_tolerance=0.0, min_area=0.0)
    assert isinstance(fixed, MultiPolygon) and fixed.is_valid and fixed.area == 3
    # the same label polygonized with 4-connectivity: three squares, returned as their union
    ((_k4, g4),) = polygonize(lab, Affine.identity(), connectivity=4)
    assert isinstance(g4, MultiPolygon) and len(g4.geoms) == 3 and g4.area == 3


def test_polygonize_validation_and_empty() -> None:
    assert polygonize(np.zeros((5, 5), np.int32), T50) == []
    with pytest.raises(TypeError, match="integers"):
        polygonize(np.zeros((5, 5)), T50)
    with pytest.raises(TypeError, match="Affine"):
        polygonize(np.zeros((5, 5), np.int32), (0.5, 0, 0, 0, -0.5, 0))  # type: ignore[arg-type]
    lab64 = np.zeros((5, 5), np.int64)
    lab64[1:3, 1:3] = 7
    ((k, g),) = polygonize(lab64, Affine.identity())
    assert k == 7 and g.equals(box(1, 1, 3, 3))


def test_clean_polygon_min_area_simplify_and_repair() -> None:
    # a 45° staircase: Douglas-Peucker removes the steps and stays within the tolerance
    steps = [(0, 0)]
    for i in range(10):
        steps += [(i + 1, i), (i + 1, i + 1)]
    stair = Polygon([*steps, (11, 10), (11, -1), (0, -1)])
    assert stair.is_valid
    simp = clean_polygon(stair, simplify_tolerance=0.75, min_area=0)
    assert isinstance(simp, Polygon) and simp.is_valid
    assert len(simp.exterior.coords) < len(stair.exterior.coords) / 3
    assert simp.hausdorff_distance(stair) <= 0.75 and abs(simp.area - stair.area) <= 11 * 0.5
    assert clean_polygon(stair, simplify_tolerance=0, min_area=0).equals(stair)
    assert clean_polygon(box(0, 0, 1, 3), simplify_tolerance=0.1, min_area=3.0001) is None  # before simplify
    assert clean_polygon(box(0, 0, 1, 3), simplify_tolerance=0.1, min_area=3.0).area == 3
    ring = box(0, 0, 10, 10).difference(box(3, 3, 7, 7))
    kept = clean_polygon(ring, simplify_tolerance=0.25, min_area=1)
    assert len(kept.interiors) == 1 and kept.area == 84
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    fixed = clean_polygon(bowtie, simplify_tolerance=0, min_area=0)
    assert fixed.is_valid and fixed.area == pytest.approx(2.0)
    with pytest.raises(ValueError, match="simplify_tolerance"):
        clean_polygon(ring, simplify_tolerance=-1, min_area=0)
    with pytest.raises(ValueError, match="min_area"):
        clean_polygon(ring, simplify_tolerance=0, min_area=float("nan"))


def test_extract_footprints_confidence_area_and_crs_units() -> None:
    p = scene(2)
    fp = extract_footprints(p, T50, UTM, min_area=0.0, simplify_tolerance=0.0)
    lab, n = ndi.label(p > 0.5)
    assert len(fp) == n and fp.crs == UTM
    np.testing.assert_array_equal(fp.labels, np.arange(1, n + 1))
    np.testing.assert_allclose(fp.confidence, ndi.mean(p.astype(np.float64), lab, fp.labels), rtol=1e-12)
    counts = np.bincount(lab.ravel())[fp.labels]
    np.testing.assert_allclose([g.area for g in fp.geometries], counts * 0.25)  # m² at 50 cm
    for k, g in zip(fp.labels, fp.geometries, strict=True):  # CRS coordinates of the pixel box
        rows, cols = np.nonzero(lab == k)
        x0, y1 = T50 @ (cols.min(), rows.min())
        x1, y0 = T50 @ (cols.max() + 1, rows.max() + 1)
        assert g.bounds == pytest.approx((x0, y0, x1, y1))


def test_extract_footprints_filters() -> None:
    p = scene(3)
    full = extract_footprints(p, T50, UTM, min_area=0.0, simplify_tolerance=0.0)
    small = np.array([g.area < 4.0 for g in full.geometries])
    assert small.any() and (~small).any()
    big = extract_footprints(p, T50, UTM, min_area=4.0, simplify_tolerance=0.0)
    np.testing.assert_array_equal(big.labels, full.labels[~small])
    conf = extract_footprints(p, T50, UTM, min_area=0.0, simplify_tolerance=0.0, min_confidence=0.8)
    np.testing.assert_array_equal(conf.labels, full.labels[full.confidence >= 0.8])
    simp = extract_footprints(p, T50, UTM, min_area=0.0, simplify_tolerance=0.25)
    assert len(simp) == len(full)
    for a, b in zip(simp.geometries, full.geometries, strict=True):
        assert a.is_valid and a.hausdorff_distance(b) <= 0.25 + 1e-9
    none = extract_footprints(np.zeros((8, 8), np.float32), T50, UTM)
    assert len(none) == 0 and none.crs == UTM


def test_keep_centroid_in_tiles_without_duplicates_or_splits() -> None:
    """Cut a scene into 2 x 2 cores with a halo larger than any building: the union of per-core
    results equals the whole-scene result (every building once, same geometry, same confidence)."""
    p = scene(4, h=96, w=112, n=40)
    whole = extract_footprints(p, T50, UTM, min_area=0.0)
    halo, parts = 16, []
    for r0, r1 in [(0, 48), (48, 96)]:
        for c0, c1 in [(0, 56), (56, 112)]:
            a0, b0 = max(r0 - halo, 0), max(c0 - halo, 0)
            a1, b1 = min(r1 + halo, 96), min(c1 + halo, 112)
            tile_t = T50 @ Affine.translation(b0, a0)
            parts.append(
                extract_footprints(
                    p[a0:a1, b0:b1],
                    tile_t,
                    UTM,
                    min_area=0.0,
                    keep_centroid_in=(r0 - a0, c0 - b0, r1 - a0, c1 - b0),
                )
            )
    tiled = Footprints.concat(parts)
    assert len(tiled) == len(whole)
    key = lambda g: tuple(np.round(g.centroid.coords[0], 6))  # noqa: E731
    w_by = {key(g): (g, c) for g, c in zip(whole.geometries, whole.confidence, strict=True)}
    for g, c in zip(tiled.geometries, tiled.confidence, strict=True):
        wg, wc = w_by.pop(key(g))
        assert shapely.symmetric_difference(g, wg).area < 1e-9 and c == pytest.approx(wc)
    assert not w_by
    with pytest.raises(ValueError, match="row0 <= row1"):
        extract_footprints(p, T50, UTM, keep_centroid_in=(10, 0, 5, 10))


def test_keep_centroid_in_is_half_open_and_exact() -> None:
    p = np.zeros((6, 6), np.float32)
    p[1:3, 1:3] = 0.9  # centroid (1.5, 1.5)
    p[4, 4] = 0.9  # centroid (4, 4)
    assert len(extract_footprints(p, Affine.identity(), UTM, min_area=0, keep_centroid_in=(0, 0, 2, 2))) == 1
    assert len(extract_footprints(p, Affine.identity(), UTM, min_area=0, keep_centroid_in=(0, 0, 1, 6))) == 0
    assert len(extract_footprints(p, Affine.identity(), UTM, min_area=0, keep_centroid_in=(4, 4, 5, 5))) == 1
    assert len(extract_footprints(p, Affine.identity(), UTM, min_area=0, keep_centroid_in=(0, 0, 4, 4))) == 1


def test_footprints_container() -> None:
    g = [box(0, 0, 1, 1), box(2, 2, 3, 3), box(4, 4, 5, 5)]
    fp = Footprints(
        g, np.array([0.9, 0.7, 0.8]), UTM, np.array([1, 2, 3]), {"stratum": np.array(["a", "b", "a"])}
    )
    assert len(fp) == 3 and fp.labels.dtype == np.int32
    sub = fp.filter(np.array([True, False, True]))
    assert len(sub) == 2 and sub.attrs["stratum"].tolist() == ["a", "a"] and sub.labels.tolist() == [1, 3]
    both = Footprints.concat([fp, Footprints.empty(UTM), sub])
    assert len(both) == 5 and both.confidence.tolist() == [0.9, 0.7, 0.8, 0.9, 0.8]
    assert Footprints([box(0, 0, 1, 1)], [1.0], UTM).labels.tolist() == [0]
    with pytest.raises(ValueError, match="CRS mismatch"):
        Footprints.concat([fp, Footprints(g, np.ones(3), "EPSG:4326")])
    assert len(Footprints.concat([fp, Footprints([], [], "epsg:32616", attrs={})])) == 3
    with pytest.raises(ValueError, match="attribute columns differ"):
        Footprints.concat([fp, Footprints(g, np.ones(3), UTM)])
    with pytest.raises(ValueError, match="confidences"):
        Footprints(g, np.ones(2), UTM)
    with pytest.raises(ValueError, match="stratum"):
        Footprints(g, np.ones(3), UTM, attrs={"stratum": np.array(["a"])})
    with pytest.raises(ValueError, match="keep must be bool"):
        fp.filter(np.array([1, 0, 1]))


@pytest.mark.gpu
def test_cuda_labelling_matches_scipy() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    p = scene(5, h=512, w=640, n=300)
    lab, n = label_instances(torch.from_numpy(p).cuda())
    want, wn = ndi.label(p > 0.5)
    assert n == wn
    np.testing.assert_array_equal(lab, want)
