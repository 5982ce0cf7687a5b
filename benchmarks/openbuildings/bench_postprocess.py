"""Post-processing throughput: probability map → Open Buildings rows, ours vs a typical per-polygon loop.

    python benchmarks/openbuildings/bench_postprocess.py [--size 1 4] [--threads 1] [--density 0.12]

Synthetic 50 cm scene per size (1 km² = 2000 x 2000 px, 4 km² = 4000 x 4000): rotated rectangular
buildings rasterized with unique ids into a probability map (buildings U(0.55, 1), background
U(0, 0.45)), georeferenced in UTM 37S (Kenya). Both pipelines produce the same Open Buildings rows
(threshold 0.5 → 4-connected components → polygons → min area 4 m² → simplify 0.25 m → lon-lat →
centroid → 12-digit Plus Code → geodesic area):

- ours: ``label_instances`` (scipy on CPU) → ``instance_stats`` (torch bincount) → ``polygonize``
  (rasterio shapes + vectorised shapely construction) → vectorised clean/simplify →
  ``to_open_buildings_table`` (one pyproj call for all vertices, vectorised Plus Codes);
- peer: ``scipy.ndimage.label`` + ``ndimage.mean`` + ``rasterio.features.shapes`` and, per polygon,
  ``shape`` → ``make_valid`` if invalid → ``simplify`` → ``shapely.ops.transform(pyproj)`` → ``centroid`` →
  ``Geod.geometry_area_perimeter`` → ``openlocationcode.encode``, as a user would write it.

Also times the connected-components op: its torch reference on CPU (vs scipy) and, when CUDA is
available, the Triton kernel. Prints per-stage seconds, s/km² and the peer/ours ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyproj
import rasterio.features
import scipy.ndimage as ndi
import shapely
import shapely.ops
import torch
from affine import Affine
from openlocationcode import openlocationcode as olc
from shapely.geometry import Polygon, shape

from labworks.openbuildings.export import to_open_buildings_table
from labworks.openbuildings.instances import (
    Footprints,
    _clean_many,
    label_instances,
    polygonize,
)
from labworks.openbuildings.ops import connected_components, instance_stats

CRS = "EPSG:32737"
GSD = 0.5
MIN_AREA = 4.0
TOL = 0.25


def make_scene(km2: float, density: float, seed: int) -> tuple[np.ndarray, Affine]:
    """Probability map (float32) of ``km2`` km² at 50 cm with about ``density`` building cover."""
    side = round(np.sqrt(km2) * 1000 / GSD)
    rng = np.random.default_rng(seed)
    transform = Affine(GSD, 0, 250000.0, 0, -GSD, 9990000.0)
    mean_area = 110.0  # m²
    n = int(density * km2 * 1e6 / mean_area)
    cx = rng.uniform(0, side * GSD, n)
    cy = rng.uniform(0, side * GSD, n)
    w = rng.uniform(4, 16, n)
    h = w * rng.uniform(0.5, 1.2, n)
    ang = rng.uniform(0, np.pi / 2, n)
    shapes_ = []
    for i in range(n):
        c, s = np.cos(ang[i]), np.sin(ang[i])
        pts = [
            (dx * c - dy * s + cx[i], dx * s + dy * c + cy[i])
            for dx, dy in [
                (-w[i] / 2, -h[i] / 2),
                (w[i] / 2, -h[i] / 2),
                (w[i] / 2, h[i] / 2),
                (-w[i] / 2, h[i] / 2),
            ]
        ]
        x0, y0 = transform.c, transform.f
        shapes_.append((Polygon([(x0 + x, y0 - y) for x, y in pts]), i + 1))
    ids = rasterio.features.rasterize(shapes_, out_shape=(side, side), transform=transform, dtype="int32")
    prob = rng.uniform(0.0, 0.45, (side, side)).astype(np.float32)
    fg = ids > 0
    prob[fg] = rng.uniform(0.55, 1.0, int(fg.sum())).astype(np.float32)
    return prob, transform


def _timed(fn: Callable[[], Any], sync: bool = False) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    if sync:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def ours(prob: np.ndarray, transform: Affine) -> tuple[dict[str, Any], dict[str, float]]:
    t: dict[str, float] = {}
    (labels, n), t["label (scipy)"] = _timed(lambda: label_instances(prob, threshold=0.5))
    st, t["stats (bincount)"] = _timed(
        lambda: instance_stats(torch.from_numpy(labels), torch.from_numpy(prob), n)
    )
    polys, t["polygonize"] = _timed(lambda: polygonize(labels, transform))
    cleaned, t["clean+simplify"] = _timed(
        lambda: _clean_many([g for _, g in polys], simplify_tolerance=TOL, min_area=MIN_AREA)
    )
    ids = np.array([k for k, _ in polys])
    ok = np.array([g is not None for g in cleaned])
    fp = Footprints(
        [g for g in cleaned if g is not None], st["confidence"].numpy()[ids[ok] - 1], CRS, ids[ok]
    )
    table, t["lon-lat+centroid+area+plus code"] = _timed(lambda: to_open_buildings_table(fp))
    return table, t


def peer(prob: np.ndarray, transform: Affine) -> tuple[dict[str, list[Any]], dict[str, float]]:
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    labels, n = ndi.label(prob > 0.5)
    conf = ndi.mean(prob, labels, np.arange(1, n + 1))
    t["label+mean (scipy)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    shapes_ = list(rasterio.features.shapes(labels, mask=labels > 0, transform=transform))
    t["rasterio shapes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    geod = pyproj.Geod(ellps="WGS84")
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "latitude",
            "longitude",
            "area_in_meters",
            "confidence",
            "geometry",
            "full_plus_code",
            "label",
        )
    }
    for geom, v in shapes_:
        poly = shape(geom)
        if not poly.is_valid:  # solaris uses buffer(0); make_valid keeps the ring start -> same simplify
            poly = shapely.make_valid(poly)
        if poly.area < MIN_AREA:
            continue
        poly = poly.simplify(TOL, preserve_topology=True)
        ll = shapely.ops.transform(tr.transform, poly)  # the classic per-geometry idiom
        c = ll.centroid
        rows["latitude"].append(c.y)
        rows["longitude"].append(c.x)
        rows["area_in_meters"].append(round(abs(geod.geometry_area_perimeter(ll)[0]), 4))
        rows["confidence"].append(float(conf[int(v) - 1]))
        rows["geometry"].append(ll.wkt)
        rows["full_plus_code"].append(olc.encode(c.y, c.x, 12))
        rows["label"].append(int(v))
    t["per-polygon loop"] = time.perf_counter() - t0
    return rows, t


def _cc_line(prob: np.ndarray, skip_torch: bool) -> str:
    """Connected components alone: scipy vs the op's torch reference (CPU) and Triton (CUDA)."""
    want, _ = ndi.label(prob > 0.5)
    mask = torch.from_numpy(prob > 0.5)
    _, t_sc = _timed(lambda: ndi.label(prob > 0.5))
    line = f"  connected components: scipy {t_sc:.3f} s"
    if not skip_torch:
        connected_components(mask[:64, :64], 4, backend="reference")
        ref, t_ref = _timed(lambda: connected_components(mask, 4, backend="reference"))
        ok = bool((ref.numpy() == want).all())
        line += f", torch reference (CPU) {t_ref:.3f} s ({t_ref / t_sc:.1f}x scipy, equal={ok})"
    if torch.cuda.is_available():
        m = mask.cuda()
        connected_components(m, 4)
        torch.cuda.synchronize()
        got, t_gpu = _timed(lambda: connected_components(m, 4), sync=True)
        ok = bool((got.cpu().numpy() == want).all())
        line += f", Triton (CUDA) {t_gpu * 1e3:.1f} ms (equal={ok})"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, nargs="+", default=[1.0, 4.0], help="scene sizes in km²")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--density", type=float, default=0.12, help="building cover fraction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-torch-cc", action="store_true", help="skip the (slow) CPU torch CC reference")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*shapely.ops.transform", category=DeprecationWarning)
    print(f"torch {torch.__version__}, threads={args.threads}, cuda={torch.cuda.is_available()}")
    for km2 in args.size:
        prob, transform = make_scene(km2, args.density, args.seed)
        print(f"\n== {km2:g} km² at {GSD} m: {prob.shape[0]} x {prob.shape[1]} px ==")
        ours(prob[:256, :256].copy(), transform)  # warm-up (imports, first custom-op call)
        table, t_ours = ours(prob, transform)
        rows, t_peer = peer(prob, transform)
        order = np.argsort(rows["label"], kind="stable")  # ours is sorted by label
        rows = {k: [v[i] for i in order] for k, v in rows.items()}
        n_o, n_p = len(table["full_plus_code"]), len(rows["full_plus_code"])
        same = n_o == n_p and table["full_plus_code"] == rows["full_plus_code"]
        a_o, a_p = np.asarray(table["area_in_meters"]), np.asarray(rows["area_in_meters"])
        area_dev = float(np.max(np.abs(a_o - a_p))) if n_o == n_p and n_o else float("nan")
        print(
            f"buildings: ours {n_o}, peer {n_p}; identical Plus Codes: {same}; max |area diff| {area_dev:.2e} m²"
        )
        for name, d in (("ours", t_ours), ("peer", t_peer)):
            total = sum(d.values())
            print(f"  {name}: total {total:.3f} s = {total / km2:.3f} s/km²")
            for k, v in d.items():
                print(f"    {k:<34s} {v:8.4f} s")
        print(f"  ratio peer/ours: {sum(t_peer.values()) / sum(t_ours.values()):.2f}x")
        print(_cc_line(prob, skip_torch=args.skip_torch_cc))


if __name__ == "__main__":
    main()
