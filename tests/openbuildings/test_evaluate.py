"""Evaluation metrics against independent references: the solaris SpaceNet goldens, a plain
per-proposal shapely loop (solaris's algorithm), brute-force numpy IoU, rasterio polygonization and
pycocotools COCOeval."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio.features
import shapely
import torch
from shapely.geometry import Polygon, box, shape

from labworks.openbuildings.evaluate import (
    COCO_IOU_THRESHOLDS,
    Detections,
    F1Result,
    _polygon_pairs,
    average_precision,
    evaluate,
    evaluate_instances,
    instance_iou_matrix,
    match_by_score,
    pr_curve,
    raster_f1,
    read_spacenet_csv,
    size_histogram,
    spacenet_f1,
    spacenet_f1_csv,
)

F1_GOLD = 0.2857142857142857


# --------------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------------
def solaris_loop(
    gt: list, pred: list, miniou: float = 0.5, order: list[int] | None = None
) -> tuple[int, int, int, np.ndarray]:
    """solaris Evaluator.eval_iou, transcribed as a per-proposal loop over the remaining ground truth."""
    remaining = list(range(len(gt)))
    rec = np.zeros(len(pred))
    for p in order if order is not None else range(len(pred)):
        poly = pred[p]
        if not poly.is_valid:
            poly = poly.buffer(0.0)
        best, best_g = None, None
        for g in remaining:  # GT frame order; idxmax keeps the first maximum
            if not gt[g].intersects(poly):
                continue
            if poly.is_valid and gt[g].is_valid:
                iou = poly.intersection(gt[g]).area / float(poly.union(gt[g]).area)
            else:
                iou = 0.0
            if best is None or iou > best:
                best, best_g = iou, g
        if best is not None and best_g is not None and best > miniou:
            rec[p] = best
            remaining.remove(best_g)
    tp = int((rec >= miniou).sum())
    return tp, len(pred) - tp, len(remaining), rec


def coco_greedy(iou: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """pycocotools evaluateImg matching (no crowd / ignore), transcribed."""
    n_g, n_q = iou.shape
    gtm = np.full(n_g, -1)
    dtm = np.full(n_q, -1)
    for d in np.argsort(-scores, kind="mergesort"):
        best, m = min(thr, 1 - 1e-10), -1
        for g in range(n_g):
            if gtm[g] >= 0:
                continue
            if iou[g, d] < best:
                continue
            best, m = iou[g, d], g
        if m >= 0:
            gtm[m], dtm[d] = d, m
    return dtm


def random_scene(
    rng: np.random.Generator, h: int = 64, w: int = 64, n: int = 12, jitter: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GT rectangles with ids (later ones overwrite), jittered predictions plus a few false alarms."""
    gt = np.zeros((h, w), np.int32)
    pred = np.zeros((h, w), np.int32)
    k = 0
    for i in range(n):
        hh, ww = rng.integers(3, 12, 2)
        r, c = rng.integers(0, h - hh), rng.integers(0, w - ww)
        gt[r : r + hh, c : c + ww] = i + 1
        if rng.random() < 0.85:
            dr, dc, dh, dw = rng.integers(-jitter, jitter + 1, 4)
            r2, c2 = max(0, r + dr), max(0, c + dc)
            k += 1
            pred[r2 : r2 + max(1, hh + dh), c2 : c2 + max(1, ww + dw)] = k
    for _ in range(int(rng.integers(0, 4))):
        hh, ww = rng.integers(2, 8, 2)
        r, c = rng.integers(0, h - hh), rng.integers(0, w - ww)
        k += 1
        pred[r : r + hh, c : c + ww] = k
    return gt, pred, rng.random(k)


def polygonize(labels: np.ndarray) -> tuple[list, np.ndarray]:
    """One (multi)polygon per present id, pixel coordinates (rasterio corner convention)."""
    parts: dict[int, list] = {}
    for geom, value in rasterio.features.shapes(labels, mask=labels > 0):
        parts.setdefault(int(value), []).append(shape(geom))
    ids = np.array(sorted(parts), np.int64)
    return [shapely.union_all(parts[i]) for i in ids], ids


def _spacenet_dir(shared_data: Path) -> Path:
    d = shared_data / "openbuildings" / "spacenet-eval"
    if not d.is_dir():
        pytest.skip(f"SpaceNet goldens not found at {d}")
    return d


def _read_geojson(path: Path) -> tuple[list, list]:
    data = json.loads(path.read_text())
    return [shape(f["geometry"]) for f in data["features"]], [f["properties"] for f in data["features"]]


# --------------------------------------------------------------------------------------------------
# SpaceNet goldens
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["file", "confidence"])
def test_spacenet_geojson_golden(shared_data: Path, order: str) -> None:
    d = _spacenet_dir(shared_data)
    gt, _ = _read_geojson(d / "gt.geojson")
    pred, props = _read_geojson(d / "pred.geojson")
    conf = np.array([p["conf"] for p in props], float)
    r = spacenet_f1(gt, pred, order=order, confidence=conf)  # type: ignore[arg-type]
    assert (r.tp, r.fp, r.fn) == (8, 20, 20)
    assert r.precision == r.recall == r.f1 == F1_GOLD
    assert r.ious.shape == (28,) and int((r.ious > 0.5).sum()) == 8
    # the per-proposal loop agrees on every recorded IoU
    tp, fp, fn, rec = solaris_loop(gt, pred)
    assert (tp, fp, fn) == (8, 20, 20)
    np.testing.assert_array_equal(r.ious, rec) if order == "file" else None


def test_spacenet_iou_values_from_solaris_tests(shared_data: Path) -> None:
    """solaris tests/test_eval/iou_test.py: IoU 0.07349979874483353 with gt 27; best match gt 21."""
    d = _spacenet_dir(shared_data)
    gt, _ = _read_geojson(d / "gt.geojson")
    p1 = Polygon([(736348.0, 3722762.5), (736353.0, 3722762.0), (736354.0, 3722759.0), (736352.0, 3722755.5),
                  (736348.5, 3722755.5), (736346.0, 3722757.5), (736348.0, 3722762.5)])  # fmt: skip
    p2 = Polygon([(736414.0, 3722573.0), (736417.5, 3722572.5), (736420.0, 3722568.0), (736421.0, 3722556.0),
                  (736418.5, 3722538.0), (736424.0, 3722532.5), (736424.0, 3722527.0), (736422.5, 3722525.5),
                  (736412.0, 3722524.0), (736410.5, 3722521.5), (736407.0, 3722520.5), (736383.5, 3722521.0),
                  (736376.5, 3722528.5), (736378.0, 3722532.5), (736402.0, 3722532.0), (736410.0, 3722539.0),
                  (736411.0, 3722544.0), (736408.5, 3722553.5), (736409.0, 3722569.0), (736414.0, 3722573.0)])  # fmt: skip
    g = np.empty(len(gt), object)
    g[:] = gt
    p = np.empty(2, object)
    p[:] = [p1, p2]
    pi, gi, iou, _ = _polygon_pairs(g, p)
    first = gi[pi == 0]
    assert first[0] == 27
    assert iou[pi == 0][0] == pytest.approx(0.07349979874483353, abs=1e-12)
    assert gi[pi == 1][np.argmax(iou[pi == 1])] == 21


def test_spacenet_csv_golden(shared_data: Path) -> None:
    d = _spacenet_dir(shared_data)
    with open(d / "test_results_full.csv", newline="") as f:
        full = list(csv.DictReader(f))
    with open(d / "test_results.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    for min_area in (0.0, 20.0):  # solaris's off-nadir scorer uses min_area=20
        pooled, per_image = spacenet_f1_csv(d / "sample_truth.csv", d / "sample_preds.csv", min_area=min_area)
        assert (pooled.tp, pooled.fp, pooled.fn, pooled.f1) == (151, 0, 0, 1.0)
        assert len(per_image) == len(full)
        for row in full:
            r = per_image[row["imageID"]]
            assert (r.tp, r.fp, r.fn) == (int(row["TruePos"]), int(row["FalsePos"]), int(row["FalseNeg"]))
            assert (r.precision, r.recall, r.f1) == (
                float(row["Precision"]),
                float(row["Recall"]),
                float(row["F1Score"]),
            )
        s = summary[0]
        assert (pooled.tp, pooled.fp, pooled.fn) == (
            int(s["TruePos"]),
            int(s["FalsePos"]),
            int(s["FalseNeg"]),
        )
        assert pooled.f1 == float(s["F1Score"])


def test_read_spacenet_csv_empty_rows_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "preds.csv"
    p.write_text(
        "ImageId,BuildingId,PolygonWKT_Pix,Confidence\n"
        'a,0,"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))",0.9\n'
        "b,-1,POLYGON EMPTY,1\n"
        'a,1,"POLYGON ((20 0, 30 0, 30 10, 20 10, 20 0))",0.4\n'
    )
    data = read_spacenet_csv(p)
    assert data["b"] == []
    assert [(b, c) for b, _, c in data["a"]] == [(0, 0.9), (1, 0.4)]
    assert data["a"][1][1].area == 100
    t = tmp_path / "truth.csv"
    t.write_text('ImageId,BuildingId,PolygonWKT_Pix,PolygonWKT_Geo\na,0,"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))",1\n'
                 "c,-1,POLYGON EMPTY,1\n")  # fmt: skip
    pooled, per = spacenet_f1_csv(t, p)
    assert (per["a"].tp, per["a"].fp, per["a"].fn) == (1, 1, 0)
    assert (per["b"].tp, per["b"].fp, per["b"].fn) == (0, 0, 0)
    assert (per["c"].tp, per["c"].fp, per["c"].fn) == (0, 0, 0)
    assert (pooled.tp, pooled.fp, pooled.fn) == (1, 1, 0)
    bad = tmp_path / "bad.csv"
    bad.write_text("ImageId,Geometry\na,POLYGON EMPTY\n")
    with pytest.raises(ValueError, match="PolygonWKT_Pix"):
        read_spacenet_csv(bad)
    with pytest.raises(FileNotFoundError):
        read_spacenet_csv(tmp_path / "missing.csv")


# --------------------------------------------------------------------------------------------------
# SpaceNet rule on polygons: edge cases and the per-proposal loop
# --------------------------------------------------------------------------------------------------
def test_spacenet_strict_removal_at_exactly_half() -> None:
    gt = [box(0, 0, 2, 1)]
    pred = [box(0, 0, 1, 1)]  # IoU exactly 0.5: not removed, recorded 0 -> FP
    r = spacenet_f1(gt, pred)
    assert (r.tp, r.fp, r.fn) == (0, 1, 1) and r.f1 == 0.0
    r = spacenet_f1(gt, pred, miniou=0.49)
    assert (r.tp, r.fp, r.fn) == (1, 0, 0) and r.ious[0] == 0.5


def test_spacenet_order_matters_and_confidence_order() -> None:
    gt = [box(0, 0, 10, 10)]
    pred = [box(0, 0, 10, 7), box(0, 0, 10, 9)]  # both > 0.5; the first visited takes the gt
    r = spacenet_f1(gt, pred)
    np.testing.assert_allclose(r.ious, [0.7, 0.0])
    r = spacenet_f1(gt, pred, order="confidence", confidence=np.array([0.2, 0.8]))
    np.testing.assert_allclose(r.ious, [0.0, 0.9])
    assert (r.tp, r.fp, r.fn) == (1, 1, 0)
    with pytest.raises(ValueError, match="confidence"):
        spacenet_f1(gt, pred, order="confidence")
    with pytest.raises(ValueError, match="confidence has 1"):
        spacenet_f1(gt, pred, order="confidence", confidence=[1.0])


def test_spacenet_equal_iou_takes_earliest_ground_truth() -> None:
    """pandas idxmax keeps the first maximum: with overlapping ground truth this decides the count."""
    gt = [box(0, 0, 10, 8), box(0, 2, 10, 10)]
    pred = [box(0, 0, 10, 10), box(0, 3, 10, 10)]  # p0: IoU 0.8 with both; p1: 0.875 with gt1, 0.5 with gt0
    r = spacenet_f1(gt, pred)
    assert (r.tp, r.fp, r.fn) == solaris_loop(gt, pred)[:3] == (2, 0, 0)
    r = spacenet_f1(gt[::-1], pred)  # now p0 takes box(0,2,..) first and p1 is left with IoU 0.5
    assert (r.tp, r.fp, r.fn) == solaris_loop(gt[::-1], pred)[:3] == (1, 1, 1)


def test_spacenet_empty_cases() -> None:
    z = spacenet_f1([], [])
    assert (z.tp, z.fp, z.fn, z.precision, z.recall, z.f1) == (0, 0, 0, 0.0, 0.0, 0.0)
    r = spacenet_f1([box(0, 0, 1, 1)] * 3, [])
    assert (r.tp, r.fp, r.fn, r.f1) == (0, 0, 3, 0.0)
    r = spacenet_f1([], [box(0, 0, 1, 1), Polygon()])
    assert (r.tp, r.fp, r.fn, r.f1) == (0, 2, 0, 0.0)
    with pytest.raises(TypeError, match="shapely geometry"):
        spacenet_f1([box(0, 0, 1, 1)], ["POLYGON EMPTY"])  # type: ignore[list-item,unused-ignore]
    with pytest.raises(ValueError, match="miniou"):
        spacenet_f1([], [], miniou=1.5)


def test_spacenet_invalid_geometries() -> None:
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])  # invalid: repaired with buffer(0)
    assert not bowtie.is_valid
    gt = [box(0, 0, 10, 10), Polygon([(20, 0), (30, 10), (30, 0), (20, 10), (20, 0)])]  # 2nd gt invalid
    pred = [bowtie, box(20, 0, 30, 10)]
    tp, fp, fn, rec = solaris_loop(gt, pred)
    r = spacenet_f1(gt, pred)
    assert (r.tp, r.fp, r.fn) == (tp, fp, fn) == (0, 2, 2)
    np.testing.assert_array_equal(r.ious, rec)


@pytest.mark.parametrize("seed", range(6))
def test_spacenet_matches_per_proposal_loop(seed: int) -> None:
    """Random overlapping proposals and overlapping ground truth: identical counts and IoUs."""
    rng = np.random.default_rng(seed)
    gt = [
        box(x, y, x + w, y + h)
        for x, y, w, h in zip(*rng.uniform([0, 0, 2, 2], [40, 40, 9, 9], (25, 4)).T, strict=True)
    ]
    pred = []
    for g in gt:
        for _ in range(int(rng.integers(0, 3))):
            dx, dy, sx, sy = rng.uniform(-1.5, 1.5, 4)
            x0, y0, x1, y1 = g.bounds
            pred.append(box(x0 + dx, y0 + dy, x1 + dx + sx, y1 + dy + sy))
    pred += [box(x, y, x + 3, y + 3) for x, y in rng.uniform(0, 45, (5, 2))]
    pred.append(Polygon([(0, 0), (4, 4), (4, 0), (0, 4), (0, 0)]))  # bowtie
    order = rng.permutation(len(pred))
    pred = [pred[i] for i in order]
    conf = rng.random(len(pred))
    for miniou in (0.3, 0.5, 0.75):
        tp, fp, fn, rec = solaris_loop(gt, pred, miniou)
        r = spacenet_f1(gt, pred, miniou=miniou)
        assert (r.tp, r.fp, r.fn) == (tp, fp, fn)
        np.testing.assert_array_equal(r.ious, rec)
        tp, fp, fn, rec = solaris_loop(gt, pred, miniou, order=list(np.argsort(-conf, kind="stable")))
        r = spacenet_f1(gt, pred, miniou=miniou, order="confidence", confidence=conf)
        assert (r.tp, r.fp, r.fn) == (tp, fp, fn)
        np.testing.assert_array_equal(r.ious, rec)


# --------------------------------------------------------------------------------------------------
# raster matching
# --------------------------------------------------------------------------------------------------
def _brute_iou(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    out = np.zeros((int(gt.max()), int(pred.max())))
    for a in range(1, int(gt.max()) + 1):
        for b in range(1, int(pred.max()) + 1):
            inter = np.logical_and(gt == a, pred == b).sum()
            union = np.logical_or(gt == a, pred == b).sum()
            out[a - 1, b - 1] = inter / union if union else 0.0
    return out


@pytest.mark.parametrize("seed", range(3))
def test_instance_iou_matrix_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt, pred, _ = random_scene(rng, 48, 40)
    gt[gt == 3] = 0  # an absent id inside the range
    m = instance_iou_matrix(gt, pred)
    assert m.dtype == torch.float64 and m.shape == (gt.max(), pred.max())
    np.testing.assert_array_equal(m.numpy(), _brute_iou(gt, pred))
    m2 = instance_iou_matrix(torch.from_numpy(gt.astype(np.int16)), pred.astype(np.uint16))
    np.testing.assert_array_equal(m2.numpy(), m.numpy())


def test_sparse_and_dense_overlap_paths_agree() -> None:
    """Huge sparse ids force the sort-based path; it must equal the bincount path on compact ids."""
    rng = np.random.default_rng(5)
    gt, pred, scores = random_scene(rng, 40, 40)
    big_g, big_q = gt.astype(np.int64) * 7919, pred.astype(np.int64) * 104729  # (G+1)(Q+1) >> 4 * H * W
    a = evaluate_instances(gt, pred, scores, iou_thresholds=COCO_IOU_THRESHOLDS)
    big_scores = np.zeros(int(big_q.max()))
    big_scores[np.arange(1, pred.max() + 1) * 104729 - 1] = scores
    b = evaluate_instances(big_g, big_q, big_scores, iou_thresholds=COCO_IOU_THRESHOLDS)
    for t in COCO_IOU_THRESHOLDS:
        np.testing.assert_array_equal(a["detections"][t].is_tp, b["detections"][t].is_tp)
        np.testing.assert_array_equal(a["detections"][t].ious, b["detections"][t].ious)
    for k in ("pixel_tp", "pixel_fp", "pixel_fn", "n_gt", "n_pred"):
        assert a[k] == b[k]
    np.testing.assert_array_equal(a["gt_area_px"], b["gt_area_px"])
    # the torch bincount (used on accelerators) equals numpy's
    from labworks.openbuildings.evaluate import _pair_counts

    c_np = _pair_counts(gt, pred, int(gt.max()), int(pred.max()))
    c_t = _pair_counts(
        torch.from_numpy(gt).long(), torch.from_numpy(pred).long(), int(gt.max()), int(pred.max())
    )
    assert isinstance(c_t, torch.Tensor)
    np.testing.assert_array_equal(c_np, c_t.numpy())


def test_instance_iou_matrix_input_checks() -> None:
    a = np.zeros((4, 4), np.int32)
    assert instance_iou_matrix(a, a).shape == (0, 0)
    with pytest.raises(TypeError, match="integer label map"):
        instance_iou_matrix(a.astype(np.float32), a)
    with pytest.raises(TypeError, match="integer label map"):
        instance_iou_matrix(torch.zeros(4, 4, dtype=torch.bool), a)
    with pytest.raises(ValueError, match="differ in shape"):
        instance_iou_matrix(a, np.zeros((4, 5), np.int32))
    with pytest.raises(ValueError, match="negative"):
        instance_iou_matrix(a - 1, a)
    with pytest.raises(ValueError, match="2-D"):
        instance_iou_matrix(a[None], a[None])


@pytest.mark.parametrize("seed", range(5))
def test_raster_f1_agrees_with_polygon_f1(seed: int) -> None:
    """Same masks, polygonized with rasterio.features.shapes: identical SpaceNet counts and IoUs."""
    rng = np.random.default_rng(100 + seed)
    gt, pred, scores = random_scene(rng, 72, 72, n=16, jitter=2)
    gt_polys, _ = polygonize(gt)
    pred_polys, pred_ids = polygonize(pred)
    for miniou in (0.5, 0.3):
        r = raster_f1(gt, pred, miniou=miniou)
        p = spacenet_f1(gt_polys, pred_polys, miniou=miniou)
        assert (r.tp, r.fp, r.fn) == (p.tp, p.fp, p.fn)
        np.testing.assert_allclose(r.ious, p.ious, rtol=0, atol=1e-12)
        r = raster_f1(gt, pred, miniou=miniou, scores=scores)
        p = spacenet_f1(
            gt_polys, pred_polys, miniou=miniou, order="confidence", confidence=scores[pred_ids - 1]
        )
        assert (r.tp, r.fp, r.fn) == (p.tp, p.fp, p.fn)
        np.testing.assert_allclose(r.ious, p.ious, rtol=0, atol=1e-12)


def test_raster_f1_hand_case_and_scores_check() -> None:
    gt = np.zeros((10, 10), np.int32)
    gt[0:4, 0:4] = 1
    gt[6:10, 6:10] = 2
    pred = np.zeros_like(gt)
    pred[0:4, 0:3] = 1  # IoU 0.75 with gt 1
    pred[6:10, 6:8] = 2  # IoU 0.5 with gt 2: not a match (strict)
    pred[5, 0] = 3  # false alarm
    r = raster_f1(gt, pred)
    assert (r.tp, r.fp, r.fn) == (1, 2, 1)
    np.testing.assert_allclose(r.ious, [0.75, 0.0, 0.0])
    with pytest.raises(ValueError, match="ids up to 3"):
        raster_f1(gt, pred, scores=[0.1, 0.2])


def test_match_by_score_rules() -> None:
    iou = torch.tensor([[0.8, 0.6, 0.0], [0.0, 0.55, 0.5]], dtype=torch.float64)
    is_tp, m = match_by_score(iou, torch.tensor([0.3, 0.9, 0.1]))
    # det 1 (score .9) takes gt 0 (0.6 > 0.55); det 0 then has no free gt >= .5; det 2 takes gt 1 (0.5 >= .5)
    assert m.tolist() == [-1, 0, 1] and is_tp.tolist() == [False, True, True]
    # equal IoU: pycocotools gives the later ground truth
    tie = np.array([[0.5], [0.5]])
    assert match_by_score(tie, np.array([1.0]))[1].tolist() == [1]
    with pytest.raises(ValueError, match="scores has 2"):
        match_by_score(iou, torch.tensor([0.3, 0.9]))


@pytest.mark.parametrize("seed", range(4))
def test_match_by_score_equals_coco_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    iou = np.where(rng.random((9, 14)) < 0.35, np.round(rng.random((9, 14)), 1), 0.0)  # many ties
    scores = np.round(rng.random(14), 1)
    for thr in (0.5, 0.7, 1.0):
        _, m = match_by_score(torch.from_numpy(iou), scores, iou_threshold=thr)
        np.testing.assert_array_equal(m.numpy(), coco_greedy(iou, scores, thr))


# --------------------------------------------------------------------------------------------------
# AP
# --------------------------------------------------------------------------------------------------
def test_average_precision_hand_cases() -> None:
    s = [0.9, 0.8, 0.7, 0.6]
    tp = [True, False, True, False]
    # recall 1/3,1/3,2/3,2/3; precision 1,.5,2/3,.5; envelope 1 up to 1/3, 2/3 up to 2/3
    assert average_precision(s, tp, 3) == pytest.approx(1 / 3 + (1 / 3) * (2 / 3), abs=1e-15)
    assert average_precision(s, tp, 3, method="coco101") == pytest.approx((34 + 33 * 2 / 3) / 101, abs=1e-12)
    assert average_precision([0.5, 0.4], [True, True], 2) == 1.0
    assert average_precision([0.5, 0.4], [True, True], 2, method="coco101") == pytest.approx(1.0, abs=1e-12)
    assert average_precision([0.5, 0.4], [False, True], 1) == 0.5
    assert average_precision([], [], 4) == 0.0
    assert math.isnan(average_precision([0.3], [False], 0))
    # order by score, not by input
    assert average_precision([0.1, 0.9], [True, False], 1) == 0.5
    with pytest.raises(ValueError, match="true positives"):
        average_precision([0.3, 0.2], [True, True], 1)
    with pytest.raises(ValueError, match="method"):
        average_precision([0.3], [True], 1, method="auc")  # type: ignore[arg-type]


def test_pr_curve_groups_ties() -> None:
    p, r, t = pr_curve([0.9, 0.5, 0.5, 0.2], [True, True, False, True], 4)
    np.testing.assert_array_equal(t, [0.9, 0.5, 0.2])
    np.testing.assert_allclose(p, [1.0, 2 / 3, 3 / 4])
    np.testing.assert_allclose(r, [0.25, 0.5, 0.75])
    _, r0, _ = pr_curve([0.9], [False], 0)
    assert np.isnan(r0).all()


def _coco_eval(items: list, iou_thrs: list[float] | None = None) -> np.ndarray:
    """COCOeval segm on RLE masks of the label maps (scores[i-1] for id i)."""
    mask = pytest.importorskip("pycocotools.mask")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images: list[dict] = []
    anns: list[dict] = []
    res: list[dict] = []
    for i, (gt, pred, scores) in enumerate(items):
        images.append({"id": i + 1, "height": gt.shape[0], "width": gt.shape[1]})
        for gid in np.unique(gt)[1:]:
            rle = mask.encode(np.asfortranarray((gt == gid).astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "segmentation": rle,
                         "area": float((gt == gid).sum()), "iscrowd": 0, "bbox": list(mask.toBbox(rle))})  # fmt: skip
        for qid in np.unique(pred)[1:]:
            rle = mask.encode(np.asfortranarray((pred == qid).astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            res.append(
                {"image_id": i + 1, "category_id": 1, "segmentation": rle, "score": float(scores[qid - 1])}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "building"}]}
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(res), "segm")
        if iou_thrs is not None:
            ev.params.iouThrs = np.array(iou_thrs)
        ev.params.maxDets = [1, 10, 100]  # every image has < 100 detections: all are kept
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


@pytest.mark.parametrize("seed", [0, 1])
def test_ap_equals_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = [random_scene(rng, jitter=1) for _ in range(5)]
    stats50 = _coco_eval(items, [0.5])
    stats = _coco_eval(items)
    rep = evaluate(((g, p, s) for g, p, s in items), ap_method="coco101")
    assert rep.ap50_coco101 == pytest.approx(stats50[0], abs=1e-9)
    assert rep.ap50 == pytest.approx(stats[1], abs=1e-9)
    assert rep.map == pytest.approx(stats[0], abs=1e-9)
    assert rep.map_coco101 == pytest.approx(stats[0], abs=1e-9)
    # the same through the public per-image pieces
    per = [evaluate_instances(g, p, s, iou_thresholds=(0.5,)) for g, p, s in items]
    pooled = Detections.concat(im["detections"][0.5] for im in per)
    assert average_precision(pooled.scores, pooled.is_tp, pooled.n_gt, method="coco101") == pytest.approx(
        stats50[0], abs=1e-9
    )
    # VOC all-points is never below the 101-point sampling of the same envelope by more than 1/101
    assert rep.ap50_coco101 - 1 / 101 <= evaluate(((g, p, s) for g, p, s in items)).ap50


# --------------------------------------------------------------------------------------------------
# pooled report
# --------------------------------------------------------------------------------------------------
def test_evaluate_report_strata_pixels_and_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    items = [(*random_scene(rng, jitter=1), "urban" if i % 2 else "rural") for i in range(4)]
    rep = evaluate(items, score_threshold=0.4)
    assert rep.n_images == 4 and set(rep.per_stratum) == {"all", "rural", "urban"}
    assert rep.per_stratum["urban"]["n_images"] == 2
    assert rep.n_gt == sum(len(np.unique(g)) - 1 for g, *_ in items)
    assert rep.n_pred == sum(len(np.unique(p)) - 1 for _, p, *_ in items)
    # pixel IoU/F1 pooled from summed counts, against numpy
    tp = sum(np.sum((g > 0) & (p > 0)) for g, p, *_ in items)
    fp = sum(np.sum((g == 0) & (p > 0)) for g, p, *_ in items)
    fn = sum(np.sum((g > 0) & (p == 0)) for g, p, *_ in items)
    assert rep.pixel_iou == pytest.approx(tp / (tp + fp + fn), abs=1e-15)
    assert rep.pixel_f1 == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-15)
    # F1 at the score threshold = raster_f1 on the label maps with low-score ids erased
    ref = []
    for g, p, s, _ in items:
        keep = np.r_[False, s >= 0.4]
        ref.append(raster_f1(g, np.where(keep[p], p, 0), scores=s))
    pooled = F1Result.pooled(ref)
    assert (rep.f1.tp, rep.f1.fp, rep.f1.fn, rep.f1.f1) == (pooled.tp, pooled.fp, pooled.fn, pooled.f1)
    # per-stratum AP = AP of that stratum alone
    urban = evaluate([it for it in items if it[3] == "urban"])
    assert rep.per_stratum["urban"]["ap50"] == urban.ap50
    assert rep.per_stratum["all"]["map"] == rep.map
    assert len(rep.ap_per_iou) == len(COCO_IOU_THRESHOLDS) == 10
    assert sum(rep.size_hist["gt"]) == rep.n_gt and sum(rep.size_hist["pred"]) == rep.n_pred
    assert all(m <= g for m, g in zip(rep.size_hist["gt_matched"], rep.size_hist["gt"], strict=True))
    out = rep.to_json(tmp_path / "r" / "report.json")
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["ap50"] == rep.ap50 and data["f1"]["tp"] == rep.f1.tp


def test_evaluate_empty_and_bad_items() -> None:
    z = np.zeros((8, 8), np.int32)
    rep = evaluate([(z, z, np.zeros(0))])
    assert math.isnan(rep.ap50) and math.isnan(rep.pixel_iou) and rep.f1.f1 == 0.0
    assert rep.to_dict()["ap50"] is None
    with pytest.raises(ValueError, match="expected"):
        evaluate([(z, z)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="ap_method"):
        evaluate([], ap_method="x")  # type: ignore[arg-type]


def test_size_histogram() -> None:
    a = np.array([1.0, 5.0, 10.0, 100.0, 4999.0, 1e5])
    counts, edges = size_histogram(a)
    np.testing.assert_allclose(edges, np.geomspace(5, 5000, 31))
    assert counts.sum() == len(a) and counts[0] == 2 and counts[-1] == 2  # outliers clipped into end bins
    inside = a[(a >= 5) & (a < 5000)]
    np.testing.assert_array_equal(size_histogram(inside, edges)[0], np.histogram(inside, edges)[0])
    with pytest.raises(ValueError, match="finite"):
        size_histogram([-1.0])
    with pytest.raises(ValueError, match="increasing"):
        size_histogram([1.0], [5.0, 1.0])


@pytest.mark.gpu
def test_raster_matching_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(3)
    gt, pred, scores = random_scene(rng, 256, 256, n=60)
    g, p = torch.from_numpy(gt).cuda(), torch.from_numpy(pred).cuda()
    m = instance_iou_matrix(g, p)
    assert m.device.type == "cuda"
    np.testing.assert_array_equal(m.cpu().numpy(), instance_iou_matrix(gt, pred).numpy())
    a, b = raster_f1(g, p, scores=scores), raster_f1(gt, pred, scores=scores)
    assert (a.tp, a.fp, a.fn) == (b.tp, b.fp, b.fn)
    is_tp, _ = match_by_score(m, torch.from_numpy(scores).cuda())
    assert is_tp.device.type == "cuda"
