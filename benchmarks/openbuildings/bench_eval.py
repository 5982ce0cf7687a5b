"""Benchmark: labworks SpaceNet F1 (STRtree + vectorised areas; raster bincount) vs a solaris-style loop.

Usage: python benchmarks/openbuildings/bench_eval.py [--buildings 2000] [--repeat 3] [--peer-max 5000]

The peer is a minimal, faithful re-implementation of solaris ``Evaluator.eval_iou`` +
``eval.iou.calculate_iou`` (solaris itself pins TF 1.13 and is not installable): proposals visited one
by one with ``GeoDataFrame.iterrows``, ``gdf.intersects(pred)`` over the remaining ground truth, a
per-candidate ``intersection(...).area / union(...).area``, ``idxmax`` and ``drop`` of the match.

Cases: the shared solaris goldens (``gt.geojson``/``pred.geojson``, 28 + 28 polygons, TP 8 / FP 20 /
FN 20), and a synthetic scene of ``--buildings`` rotated rectangles on a 0.5 m grid with jittered
predictions, scored as polygons (ours vs the peer) and as rasters (``raster_f1``: one bincount).
Counts are asserted identical between ours and the peer on the same polygons.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.features
import shapely
import torch
from rasterio.transform import Affine
from shapely.affinity import rotate
from shapely.geometry import box, shape

from labworks.openbuildings.evaluate import F1Result, raster_f1, spacenet_f1

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "openbuildings" / "spacenet-eval"


# ---- peer: solaris's per-proposal loop ----------------------------------------------------------
def _calculate_iou(pred_poly: Any, test_data_gdf: Any) -> Any:
    import geopandas as gpd

    if not pred_poly.is_valid:
        pred_poly = pred_poly.buffer(0.0)
    precise_matches = test_data_gdf[test_data_gdf.intersects(pred_poly)]
    iou_row_list = []
    for _, row in precise_matches.iterrows():
        test_poly = row.geometry
        if pred_poly.is_valid and test_poly.is_valid:
            iou_score = pred_poly.intersection(test_poly).area / float(pred_poly.union(test_poly).area)
        else:
            iou_score = 0
        row["iou_score"] = iou_score
        iou_row_list.append(row)
    return gpd.GeoDataFrame(iou_row_list)


def solaris_style_eval_iou(gt: list[Any], pred: list[Any], miniou: float = 0.5) -> tuple[int, int, int]:
    """TP, FP, FN as solaris ``Evaluator.eval_iou(calculate_class_scores=False)`` (file order)."""
    import geopandas as gpd

    gt_edit = gpd.GeoDataFrame({"gid": np.arange(len(gt))}, geometry=list(gt))
    proposals = gpd.GeoDataFrame({"pid": np.arange(len(pred))}, geometry=list(pred))
    field = "iou_score_all"
    proposals[field] = 0.0
    for _, pred_row in proposals.iterrows():
        iou_gdf = _calculate_iou(pred_row.geometry, gt_edit)
        if not iou_gdf.empty:
            max_iou_row = iou_gdf.loc[iou_gdf["iou_score"].astype(float).idxmax(axis=0, skipna=True)]
            if max_iou_row["iou_score"] > miniou:
                proposals.loc[pred_row.name, field] = max_iou_row["iou_score"]
                gt_edit = gt_edit.drop(max_iou_row.name, axis=0)
            else:
                proposals.loc[pred_row.name, field] = 0
        else:
            proposals.loc[pred_row.name, field] = 0
    tp = int((proposals[field] >= miniou).sum())
    return tp, int((proposals[field] < miniou).sum()), len(gt_edit)


# ---- data ---------------------------------------------------------------------------------------
def synthetic_scene(n: int, seed: int = 0) -> tuple[list[Any], list[Any], Affine, tuple[int, int]]:
    """n rotated rectangles (4-20 m sides) on a jittered grid; predictions shifted/scaled/rotated,
    ~8% missed, ~8% false alarms. Coordinates in metres (UTM-like), 0.5 m pixels."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    pitch = 28.0
    x0, y0 = 500_000.0, 4_000_000.0
    gt, pred = [], []
    for k in range(n):
        i, j = divmod(k, side)
        cx = x0 + (j + 0.5) * pitch + rng.uniform(-3, 3)
        cy = y0 - (i + 0.5) * pitch + rng.uniform(-3, 3)
        w, h = rng.uniform(4, 20, 2)
        ang = rng.uniform(0, 90)
        g = rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), ang)
        gt.append(g)
        if rng.random() < 0.92:
            dx, dy = rng.normal(0, 0.8, 2)
            sw, sh = rng.uniform(0.8, 1.15, 2)
            p = box(cx - w * sw / 2 + dx, cy - h * sh / 2 + dy, cx + w * sw / 2 + dx, cy + h * sh / 2 + dy)
            pred.append(rotate(p, ang + rng.normal(0, 4)))
        if rng.random() < 0.08:
            fx, fy = cx + rng.uniform(-12, 12), cy + rng.uniform(-12, 12)
            pred.append(box(fx, fy, fx + 3, fy + 3))
    order = rng.permutation(len(pred))
    pred = [pred[i] for i in order]
    width = height = int(np.ceil(side * pitch / 0.5)) + 8
    transform = Affine(0.5, 0.0, x0, 0.0, -0.5, y0)
    return gt, pred, transform, (height, width)


def rasterize_ids(polys: list[Any], transform: Affine, shape_hw: tuple[int, int]) -> np.ndarray:
    return rasterio.features.rasterize(
        ((p, i + 1) for i, p in enumerate(polys)),
        out_shape=shape_hw,
        transform=transform,
        fill=0,
        dtype="int32",
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def counts(r: F1Result | tuple[int, int, int]) -> tuple[int, int, int]:
    return (r.tp, r.fp, r.fn) if isinstance(r, F1Result) else r


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--buildings", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-max", type=int, default=5000, help="skip the peer on scenes with more proposals")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    rows: list[tuple[str, float, float, str]] = []

    # ---- shared goldens -------------------------------------------------------------------------
    if SHARED.is_dir():
        gt = [shape(f["geometry"]) for f in json.loads((SHARED / "gt.geojson").read_text())["features"]]
        pr = [shape(f["geometry"]) for f in json.loads((SHARED / "pred.geojson").read_text())["features"]]
        t_ours, ours = timed(lambda: spacenet_f1(gt, pr), args.repeat)
        solaris_style_eval_iou(gt[:2], pr[:2])  # warm-up: geopandas import and first-call costs
        t_peer, peer = timed(lambda: solaris_style_eval_iou(gt, pr), args.repeat)
        assert counts(ours) == counts(peer) == (8, 20, 20), (counts(ours), counts(peer))
        rows.append(("goldens 28/28: spacenet_f1 vs solaris loop", t_ours, t_peer, "TP/FP/FN 8/20/20 both"))
    else:
        print(f"(shared goldens not found at {SHARED}; skipped)")

    # ---- synthetic scene ------------------------------------------------------------------------
    gt, pr, transform, hw = synthetic_scene(args.buildings)
    print(f"synthetic scene: {len(gt)} buildings, {len(pr)} proposals, raster {hw[0]}x{hw[1]} at 0.5 m")
    t_ours, ours = timed(lambda: spacenet_f1(gt, pr), args.repeat)
    if len(pr) <= args.peer_max:
        t_peer, peer = timed(lambda: solaris_style_eval_iou(gt, pr), 1)
        assert counts(ours) == counts(peer), (counts(ours), counts(peer))
        rows.append(
            (f"{len(gt)} polygons: spacenet_f1 vs solaris loop", t_ours, t_peer, f"{counts(ours)} both")
        )
    else:
        t_peer = float("nan")
        rows.append((f"{len(gt)} polygons: spacenet_f1 (peer skipped)", t_ours, t_peer, f"{counts(ours)}"))

    g_lab = rasterize_ids(gt, transform, hw)
    p_lab = rasterize_ids(pr, transform, hw)
    t_r, r = timed(lambda: raster_f1(g_lab, p_lab), args.repeat)
    note = f"{counts(r)} (pixel-grid masks; polygons {counts(ours)})"
    rows.append((f"{len(gt)} rasters: raster_f1 (bincount) vs solaris loop", t_r, t_peer, note))
    rows.append((f"{len(gt)} rasters: raster_f1 vs spacenet_f1 polygons", t_r, t_ours, ""))
    if torch.cuda.is_available():
        gd, pd_ = torch.from_numpy(g_lab).cuda(), torch.from_numpy(p_lab).cuda()
        raster_f1(gd, pd_)
        torch.cuda.synchronize()
        t_g, rg = timed(lambda: raster_f1(gd, pd_), args.repeat)
        assert counts(rg) == counts(r)
        rows.append((f"{len(gt)} rasters on CUDA: raster_f1 vs CPU raster_f1", t_g, t_r, ""))

    print(f"\n{'case':58s} {'ours (s)':>10s} {'peer (s)':>10s} {'speed-up':>9s}  note")
    for name, a, b, note in rows:
        ratio = b / a if np.isfinite(b) and a > 0 else float("nan")
        print(f"{name:58s} {a:10.4f} {b:10.4f} {ratio:8.1f}x  {note}")
    if np.isfinite(t_peer):
        print(f"\npeer throughput: {len(pr) / t_peer:,.0f} proposals/s; spacenet_f1: {len(pr) / t_ours:,.0f}/s; "
              f"raster_f1: {len(pr) / t_r:,.0f}/s")  # fmt: skip
    print(f"shapely {shapely.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
