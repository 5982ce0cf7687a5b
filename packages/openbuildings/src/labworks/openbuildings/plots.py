"""Figures for building detection: PR curves, overlays on imagery, size histograms, training curves,
ablations. Figures are plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas (no
display, no pyplot global state, safe in worker threads); every PNG is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from rasterio.transform import Affine
from shapely.geometry.base import BaseGeometry

from labworks.core import atomic_path

__all__ = [
    "plot_ablation",
    "plot_overlay",
    "plot_pr_curves",
    "plot_size_histogram",
    "plot_training_curves",
]


def _save(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    dest = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return dest


def _area_under_envelope(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC all-points AP from a (recall-sorted) PR curve; NaN if recall is unknown."""
    p = np.asarray(precision, np.float64)
    r = np.asarray(recall, np.float64)
    if len(r) == 0:
        return 0.0
    if np.isnan(r).any():
        return float("nan")
    order = np.argsort(r, kind="stable")
    mrec = np.concatenate(([0.0], r[order], [1.0]))
    mpre = np.concatenate(([0.0], p[order], [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def plot_pr_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    title: str = "Precision-recall (IoU 0.5)",
) -> Path:
    """One precision-recall line per stratum/model; the legend shows its AP (VOC all-points).

    Args:
        curves: ``{name: (precision (K,), recall (K,))}``, e.g. from
            :func:`labworks.openbuildings.evaluate.pr_curve`.
        path: output PNG.
    """
    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    for name, pr in curves.items():
        if len(pr) != 2:
            raise ValueError(f"curve {name!r} must be (precision, recall), got {len(pr)} arrays")
        p, r = (np.asarray(a, np.float64).reshape(-1) for a in pr)
        if p.shape != r.shape:
            raise ValueError(f"curve {name!r}: precision ({p.size}) and recall ({r.size}) differ in length")
        ap = _area_under_envelope(p, r)
        ax.step(r, p, where="post", label=f"{name} (AP {ap:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def _to_pixel(geoms: Sequence[BaseGeometry], transform: Affine | None) -> list[BaseGeometry]:
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    if transform is None or len(arr) == 0:
        return list(arr)
    inv = ~transform

    def f(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        col = inv.a * x + inv.b * y + inv.c
        row = inv.d * x + inv.e * y + inv.f
        return np.column_stack([col, row])

    return list(shapely.transform(arr, f))


def _patches(geoms: Sequence[BaseGeometry]) -> list[PathPatch]:
    out: list[PathPatch] = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        polys = getattr(g, "geoms", [g])
        for poly in polys:
            if poly.geom_type != "Polygon":
                continue
            rings = [np.asarray(poly.exterior.coords)[:, :2]] + [
                np.asarray(i.coords)[:, :2] for i in poly.interiors
            ]
            verts = np.concatenate(rings)
            codes = np.concatenate(
                [[MplPath.MOVETO] + [MplPath.LINETO] * (len(r) - 2) + [MplPath.CLOSEPOLY] for r in rings]
            )
            out.append(PathPatch(MplPath(verts, codes)))
    return out


def plot_overlay(
    image: np.ndarray,
    path: str | os.PathLike[str],
    *,
    pred: Sequence[BaseGeometry] | None = None,
    gt: Sequence[BaseGeometry] | None = None,
    prob: np.ndarray | None = None,
    transform: Affine | None = None,
    title: str | None = None,
    legend: bool = True,
) -> Path:
    """Detections (and labels) drawn over the image.

    Args:
        image: (3, H, W) uint8 RGB (or (1, H, W) / (H, W) grey).
        path: output PNG.
        pred: predicted polygons (red outlines), pixel coordinates (x = column, y = row, pixel corners
            as rasterio) unless ``transform`` is given.
        gt: ground-truth polygons (cyan outlines), same coordinates as ``pred``.
        prob: (H, W) building probability in [0, 1], shown as a translucent heat map.
        transform: the raster's affine transform; polygons are then in CRS coordinates and converted
            to pixel coordinates with its inverse.
        title: optional title.
        legend: draw a legend naming the outline colours.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(
            f"image must be (3, H, W) or (1, H, W) / (H, W), got shape {np.asarray(image).shape}"
        )
    if img.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {img.dtype}")
    h, w = img.shape[1:]
    fig = Figure(figsize=(6, max(1.0, 6 * h / max(w, 1))))
    ax = fig.subplots()
    extent = (0.0, float(w), float(h), 0.0)  # pixel (r, c) covers [c, c+1) x [r, r+1)
    if img.shape[0] == 3:
        ax.imshow(np.moveaxis(img, 0, -1), extent=extent, interpolation="nearest")
    else:
        ax.imshow(img[0], cmap="gray", extent=extent, interpolation="nearest", vmin=0, vmax=255)
    if prob is not None:
        pm = np.asarray(prob, np.float32)
        if pm.shape != (h, w):
            raise ValueError(f"prob must be (H, W) = {(h, w)}, got {pm.shape}")
        ax.imshow(pm, cmap="magma", alpha=0.45, vmin=0, vmax=1, extent=extent, interpolation="nearest")
    for geoms, colour, name in ((gt, "cyan", "ground truth"), (pred, "red", "prediction")):
        if geoms is None:
            continue
        patches = _patches(_to_pixel(geoms, transform))
        if patches:
            coll = PatchCollection(patches, facecolor="none", edgecolor=colour, linewidth=1.0, label=name)
            ax.add_collection(coll)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    handles = [c for c in ax.collections if not str(c.get_label()).startswith("_")]
    if handles and legend:
        ax.legend(handles=handles, loc="upper right", fontsize=7)
    return _save(fig, path)


def plot_size_histogram(
    areas_m2: np.ndarray | Sequence[float],
    path: str | os.PathLike[str],
    *,
    reference: Mapping[str, np.ndarray | Sequence[float]] | None = None,
    bins: np.ndarray | Sequence[float] | int | None = None,
    title: str = "Footprint sizes",
) -> Path:
    """Footprint-area distribution on log-spaced bins (Open Buildings style, 5-5000 m² by default).

    ``reference`` adds one outline per named set (e.g. ``{"ground truth": areas}``) on the same bins;
    each series is normalised to a fraction of its count so sets of different size compare.
    """
    from labworks.openbuildings.evaluate import size_histogram

    counts, edges = size_histogram(areas_m2, bins)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    series: dict[str, np.ndarray] = {"detections": counts}
    for name, ref in (reference or {}).items():
        series[name], _ = size_histogram(ref, edges)
    for k, (name, c) in enumerate(series.items()):
        frac = c / max(int(c.sum()), 1)
        ax.stairs(frac, edges, fill=k == 0, alpha=0.5 if k == 0 else 1.0, label=f"{name} (n={int(c.sum())})")
    ax.set_xscale("log")
    ax.set_xlabel("footprint area (m²)")
    ax.set_ylabel("fraction of footprints")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_training_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike[str]) -> Path:
    """Training history, one line per series: losses (keys containing ``loss``) on the left panel,
    every other metric on the right. Non-finite values are left as gaps."""
    series = {k: np.asarray(v, np.float64).reshape(-1) for k, v in history.items() if len(v)}
    if not series:
        raise ValueError("history has no non-empty series to plot")
    losses = {k: v for k, v in series.items() if "loss" in k.lower()}
    others = {k: v for k, v in series.items() if k not in losses}
    panels = [d for d in (losses, others) if d]
    fig = Figure(figsize=(5.5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, d, name in zip(axes[0], panels, ["loss" if losses else "metric", "metric"], strict=False):
        for k, v in d.items():
            ax.plot(
                np.arange(1, len(v) + 1),
                np.where(np.isfinite(v), v, np.nan),
                marker="." if len(v) < 40 else None,
                label=k,
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ablation(
    results: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    metric: str = "mAP",
    baseline: str | None = None,
) -> Path:
    """Bar chart of an ablation: per variant the mean over seeds ± sample standard deviation (ddof=1;
    0 for a single seed), with each seed as a dot. ``baseline`` draws a dashed line at its mean."""
    if not results:
        raise ValueError("results is empty: nothing to plot")
    names = list(results)
    vals: list[np.ndarray] = []
    for n in names:
        v = np.asarray(results[n], np.float64).reshape(-1)
        if v.size == 0:
            raise ValueError(f"variant {n!r} has no results")
        vals.append(v)
    means = np.array([v.mean() for v in vals])
    sds = np.array([v.std(ddof=1) if v.size > 1 else 0.0 for v in vals])
    fig = Figure(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4))
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x, means, yerr=sds, capsize=4, color="#7aa6c2", edgecolor="black", linewidth=0.6)
    for i, v in enumerate(vals):
        ax.scatter(np.full(v.size, i), v, color="black", s=10, zorder=3)
    if baseline is not None:
        if baseline not in results:
            raise KeyError(f"baseline {baseline!r} not among variants {names}")
        ax.axhline(means[names.index(baseline)], color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(f"{metric} (mean ± sd over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Ablation: {metric}")
    return _save(fig, path)
