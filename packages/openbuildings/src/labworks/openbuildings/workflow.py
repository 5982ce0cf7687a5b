"""End-to-end evaluation of a model on labelled scenes: detect each scene with the production path
(tiled inference -> seam-safe footprints), score the footprints against the labels, fit per-stratum
confidence thresholds, and write the report, PR curves, size histogram and overlays."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

from labworks.core import atomic_write_text, get_logger
from labworks.openbuildings.config import DetectConfig
from labworks.openbuildings.evaluate import Report, evaluate, instance_iou_matrix, match_by_score, pr_curve
from labworks.openbuildings.geo import geodesic_area, to_lonlat
from labworks.openbuildings.inference import Detection, detect
from labworks.openbuildings.instances import Footprints
from labworks.openbuildings.plots import plot_overlay, plot_pr_curves, plot_size_histogram
from labworks.openbuildings.raster import NormStats, raster_info, rasterize_instances, read_labels
from labworks.openbuildings.thresholds import ThresholdTable, fit_thresholds

log = get_logger("labworks.openbuildings")


@dataclass
class SceneScore:
    """A scene's ground truth and detections on the raster grid, ready for :func:`evaluate`."""

    gt_labels: np.ndarray
    pred_labels: np.ndarray
    scores: np.ndarray
    stratum: str


def score_scene(
    fp: Footprints, image_path: str | Path, labels_path: str | Path, stratum: str = "all"
) -> SceneScore:
    """Rasterize labels and detected footprints on the image grid (instance ids; scores = confidence)."""
    info = raster_info(image_path)
    polys, _, _ = read_labels(labels_path, crs=str(info.crs))
    shape = (info.height, info.width)
    gt = rasterize_instances(polys, info.transform, shape)
    pred = rasterize_instances(fp.geometries, info.transform, shape)
    return SceneScore(gt, pred, np.asarray(fp.confidence, np.float64), stratum)


def _detect_and_score(
    model: torch.nn.Module,
    scenes: Sequence[dict[str, Any]],
    out_dir: Path,
    cfg: DetectConfig,
    stats: NormStats | None,
) -> tuple[Report, list[SceneScore], list[Detection]]:
    """Detect on every manifest row and score it against its labels (the terrain is the stratum): the
    report over all rows, each row's score and detection."""
    items: list[SceneScore] = []
    detections: list[Detection] = []
    for row in scenes:
        stratum = str(row.get("terrain", "all"))
        det = detect(model, row["image"], out_dir, cfg=cfg, stats=stats, stratum=stratum)
        detections.append(det)
        items.append(score_scene(det.footprints, row["image"], row["labels"], stratum))
    report = evaluate((s.gt_labels, s.pred_labels, s.scores, s.stratum) for s in items)
    return report, items, detections


def evaluate_model(
    model: torch.nn.Module,
    scenes: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    cfg: DetectConfig | None = None,
    stats: NormStats | None = None,
    precisions: Sequence[float] | None = None,
    overlays: int = 2,
) -> tuple[Report, ThresholdTable | None, list[Detection]]:
    """Detect and score every manifest row (``image``, ``labels``, ``terrain``); the terrain is the
    stratum. Writes ``report.json``, ``pr_curves.png``, ``sizes.png`` and ``overlay-*.png``; with
    ``precisions``, fits per-stratum thresholds on these detections (``thresholds.json``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = cfg or DetectConfig()
    report, items, detections = _detect_and_score(model, scenes, out / "detections", cfg, stats)
    # per-detection TP flags at IoU 0.5 (score-greedy), for PR curves and thresholds
    all_scores: list[np.ndarray] = []
    all_tp: list[np.ndarray] = []
    all_strata: list[str] = []
    n_gt: dict[str, int] = {}
    for s in items:
        iou = instance_iou_matrix(s.gt_labels, s.pred_labels)
        sc = torch.as_tensor(s.scores[: iou.shape[1]])
        is_tp, _ = match_by_score(iou, sc, iou_threshold=0.5)
        all_scores.append(s.scores[: iou.shape[1]])
        all_tp.append(is_tp.cpu().numpy())
        all_strata += [s.stratum] * iou.shape[1]
        n_gt[s.stratum] = n_gt.get(s.stratum, 0) + iou.shape[0]
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    strata = np.asarray(all_strata, dtype=object)
    curves = {}
    for name in ["all", *sorted(n_gt)]:
        sel = np.ones(len(scores), bool) if name == "all" else strata == name
        total = sum(n_gt.values()) if name == "all" else n_gt[name]
        p, r, _ = pr_curve(scores[sel], tp[sel], total)
        curves[name] = (p, r)
    plot_pr_curves(curves, out / "pr_curves.png", title="Precision-recall at IoU 0.5")
    fps = [d.footprints for d in detections]
    if fps and sum(len(f) for f in fps):
        areas = np.concatenate([geodesic_area(to_lonlat(f.geometries, f.crs)) for f in fps if len(f)])
        plot_size_histogram(areas, out / "sizes.png")
    for det, row in list(zip(detections, scenes, strict=True))[:overlays]:
        with rasterio.open(row["image"]) as src:
            image = src.read()
            transform = src.transform
        gt, _, _ = read_labels(row["labels"], crs=str(src.crs))
        plot_overlay(
            image[:3],
            out / f"overlay-{Path(row['image']).stem}.png",
            pred=det.footprints.geometries,
            gt=gt,
            transform=transform,
        )
    table = None
    if precisions:
        table = fit_thresholds(scores, tp, strata, precisions=tuple(precisions))
        table.to_file(out / "thresholds.json")
    report.to_json(out / "report.json")
    atomic_write_text(
        out / "timings.json",
        json.dumps([{"scene": str(d.source), **d.seconds} for d in detections], indent=1),
    )
    return report, table, detections


def fit_pixel_threshold(
    model: torch.nn.Module,
    scenes: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    cfg: DetectConfig | None = None,
    stats: NormStats | None = None,
    candidates: Sequence[float] = (0.3, 0.4, 0.5, 0.6),
    seed_margin: float = 0.3,
) -> tuple[DetectConfig, dict[float, float]]:
    """The detection config whose pixel threshold maximises mAP@[.5:.95] on labelled validation scenes
    (manifest rows with ``image`` and ``labels``), with the seed threshold ``threshold + seed_margin``
    (capped at 0.95) when ``cfg`` splits touching buildings from seeds.

    A model trained on few labels is less confident than the default 0.5 assumes (the data-scarce ablation
    in docs/openbuildings.md gains about +0.04 mAP at 0.3). One detection pass per candidate; ties go to
    the candidate nearest 0.5. Returns the best config and ``{candidate: mAP}``."""
    if not candidates or not all(0 < t < 1 for t in candidates):
        raise ValueError(f"candidates must be a non-empty list of thresholds in (0, 1), got {candidates}")
    if not scenes or any(not row.get("labels") for row in scenes):
        raise ValueError("fit_pixel_threshold needs labelled scenes (rows with 'image' and 'labels')")
    cfg = cfg or DetectConfig()
    out = Path(out_dir)
    scores: dict[float, float] = {}
    configs: dict[float, DetectConfig] = {}
    for t in sorted(set(float(c) for c in candidates)):
        seed = None if cfg.seed_threshold is None else min(t + seed_margin, 0.95)
        c = DetectConfig.from_dict({**cfg.to_dict(), "threshold": t, "seed_threshold": seed})
        scores[t] = _detect_and_score(model, scenes, out / f"threshold-{t:g}", c, stats)[0].map
        configs[t] = c
        log.info("pixel threshold %.2f: validation mAP %.4f", t, scores[t])
    best = max(scores, key=lambda t: (scores[t], -abs(t - 0.5)))
    return configs[best], scores
