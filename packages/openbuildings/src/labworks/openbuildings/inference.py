"""Detection on large rasters: streaming tiled inference with overlap and blending, then seam-safe
instances -> footprints.

Pass 1 (:func:`predict_raster`) reads tiles with windowed reads, batches them through the U-Net,
blends overlapping tiles with a 2-D Hann (or Gaussian) window and writes each strip of rows to a
probability GeoTIFF as soon as no later tile can touch it: memory is bounded by ``(tile + stride) x
width`` whatever the scene size. Pass 2 (:func:`footprints_from_probability`) labels the *stitched*
probability map block by block with a halo and keeps only instances whose centroid lies in the block
core, so a building crossing a block edge is neither split nor duplicated (as long as it is smaller
than the halo).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from labworks.core import atomic_path, get_device, get_logger, progress, shard_sequence
from labworks.openbuildings.config import DetectConfig
from labworks.openbuildings.export import write_geojson, write_geoparquet, write_open_buildings_csv
from labworks.openbuildings.instances import Footprints, extract_footprints
from labworks.openbuildings.raster import NormStats, normalize, raster_info, read_window, tile_windows
from labworks.openbuildings.thresholds import ThresholdTable, apply_thresholds

log = get_logger("labworks.openbuildings")

NODATA = -1.0


def blend_window(tile: int, kind: str = "hann") -> np.ndarray:
    """Blending weights (tile, tile), strictly positive so every pixel is covered."""
    if kind == "none":
        return np.ones((tile, tile), np.float32)
    if kind == "hann":
        h = np.hanning(tile + 2)[1:-1]
    elif kind == "gaussian":
        x = np.arange(tile) - (tile - 1) / 2
        h = np.exp(-0.5 * (x / (tile / 4)) ** 2)
    else:
        raise ValueError(f"unknown blend {kind!r}; use 'hann', 'gaussian' or 'none'")
    w = np.outer(h, h).astype(np.float32)
    return np.maximum(w, 1e-4)


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def _predict_batch(
    model: torch.nn.Module, batch: torch.Tensor, device: torch.device, cfg: DetectConfig
) -> torch.Tensor:
    """Probabilities (B, H, W); with ``cfg.tta == "flips"`` the mean over the 4 flips of the tile."""
    flips: list[tuple[int, ...]] = [()] if cfg.tta == "none" else [(), (-1,), (-2,), (-2, -1)]
    out = torch.zeros(batch.shape[0], *batch.shape[-2:], device=device)
    for dims in flips:
        x = batch.flip(dims) if dims else batch
        with _autocast(device, cfg.dtype):
            logits = model(x)
        p = torch.sigmoid(logits.float())[:, 0]
        out += p.flip(dims) if dims else p
    return out / len(flips)


@torch.no_grad()
def predict_raster(
    model: torch.nn.Module,
    src_path: str | Path,
    out_path: str | Path,
    *,
    cfg: DetectConfig | None = None,
    stats: NormStats | None = None,
    bands: Sequence[int] | None = None,
) -> Path:
    """Building probability for every pixel of ``src_path``, written to ``out_path`` (float32 GeoTIFF,
    same grid and CRS; ``-1`` where the input is nodata/NaN). Atomic: the file appears when complete."""
    cfg = cfg or DetectConfig()
    info = raster_info(src_path)
    device = get_device(cfg.device)
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    tile, H, W = cfg.tile, info.height, info.width
    windows = tile_windows(H, W, tile, cfg.overlap)
    weight = blend_window(tile, cfg.blend)
    profile = {
        "driver": "GTiff",
        "height": H,
        "width": W,
        "count": 1,
        "dtype": "float32",
        "crs": info.crs,
        "transform": info.transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    rows = sorted({int(w.row_off) for w in windows})
    bar = progress(total=len(windows), desc="tiles", unit="tile")
    with (
        atomic_path(out_path) as tmp,
        rasterio.open(src_path) as src,
        rasterio.open(tmp, "w", **profile) as dst,
    ):
        buf0 = 0
        acc = np.zeros((0, W), np.float32)
        wsum = np.zeros((0, W), np.float32)
        valid_acc = np.zeros((0, W), bool)

        def flush(upto: int) -> None:
            nonlocal buf0, acc, wsum, valid_acc
            n = upto - buf0
            if n <= 0:
                return
            prob = np.where(valid_acc[:n], acc[:n] / np.maximum(wsum[:n], 1e-12), NODATA).astype(np.float32)
            dst.write(prob[None], window=Window(0, buf0, W, n))
            acc, wsum, valid_acc = acc[n:], wsum[n:], valid_acc[n:]
            buf0 = upto

        for r0 in rows:
            flush(r0)
            row_windows = [w for w in windows if int(w.row_off) == r0]
            h = max(int(w.height) for w in row_windows)
            need = r0 + h - buf0 - acc.shape[0]
            if need > 0:
                acc = np.concatenate([acc, np.zeros((need, W), np.float32)])
                wsum = np.concatenate([wsum, np.zeros((need, W), np.float32)])
                valid_acc = np.concatenate([valid_acc, np.zeros((need, W), bool)])
            for i in range(0, len(row_windows), cfg.batch_size):
                chunk = row_windows[i : i + cfg.batch_size]
                images, valids = [], []
                for w in chunk:
                    data, valid = read_window(src, w, bands=bands, pad_to=tile)
                    x = normalize(data, stats)
                    x[:, ~valid] = 0.0
                    images.append(x)
                    valids.append(valid)
                batch = torch.from_numpy(np.stack(images)).to(device)
                if device.type == "cuda":
                    batch = batch.contiguous(memory_format=torch.channels_last)
                probs = _predict_batch(model, batch, device, cfg).cpu().numpy()
                for w, p, valid in zip(chunk, probs, valids, strict=True):
                    hh, ww = int(w.height), int(w.width)
                    rr, cc = int(w.row_off) - buf0, int(w.col_off)
                    ww_ = weight[:hh, :ww] * valid[:hh, :ww]
                    acc[rr : rr + hh, cc : cc + ww] += p[:hh, :ww] * ww_
                    wsum[rr : rr + hh, cc : cc + ww] += ww_
                    valid_acc[rr : rr + hh, cc : cc + ww] |= valid[:hh, :ww]
                bar.update(len(chunk))
        flush(H)
    bar.close()
    return Path(out_path)


def footprints_from_probability(
    prob_path: str | Path,
    *,
    cfg: DetectConfig | None = None,
    stratum: str | None = None,
) -> Footprints:
    """Seam-safe instances from a probability GeoTIFF, processed in ``block`` x ``block`` cores with a
    ``halo`` of context: an instance is kept by the block holding its centroid, so none is split or
    duplicated (instances larger than the halo may be clipped; a warning counts them)."""
    cfg = cfg or DetectConfig()
    info = raster_info(prob_path)
    H, W = info.height, info.width
    parts: list[Footprints] = []
    # a partition (not tile_windows, whose edge snapping overlaps the last tiles)
    cores = [
        Window(c, r, min(cfg.block, W - c), min(cfg.block, H - r))
        for r in range(0, H, cfg.block)
        for c in range(0, W, cfg.block)
    ]
    with rasterio.open(prob_path) as src:
        for core in progress(cores, desc="post-processing", unit="block"):
            r0 = max(int(core.row_off) - cfg.halo, 0)
            c0 = max(int(core.col_off) - cfg.halo, 0)
            r1 = min(int(core.row_off + core.height) + cfg.halo, H)
            c1 = min(int(core.col_off + core.width) + cfg.halo, W)
            win = Window(c0, r0, c1 - c0, r1 - r0)
            prob = src.read(1, window=win)
            valid = prob != NODATA
            fp = extract_footprints(
                np.where(valid, prob, 0.0).astype(np.float32),
                src.window_transform(win),
                str(info.crs),
                threshold=cfg.threshold,
                min_area=cfg.min_area,
                simplify_tolerance=cfg.simplify_tolerance,
                connectivity=cfg.connectivity,
                valid=valid,
                min_confidence=cfg.min_confidence,
                seed_threshold=cfg.seed_threshold,
                min_seed_area=cfg.min_seed_area,
                keep_centroid_in=(
                    int(core.row_off) - r0,
                    int(core.col_off) - c0,
                    int(core.row_off + core.height) - r0,
                    int(core.col_off + core.width) - c0,
                ),
            )
            parts.append(fp)
    out = Footprints.concat(parts) if parts else Footprints.empty(str(info.crs))
    if stratum is not None:
        out.attrs["stratum"] = np.full(len(out), stratum, dtype=object)
    return out


@dataclass
class Detection:
    """Outputs of :func:`detect` for one raster."""

    source: Path
    probability: Path
    footprints: Footprints
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def detect(
    model: torch.nn.Module,
    src_path: str | Path,
    out_dir: str | Path,
    *,
    cfg: DetectConfig | None = None,
    stats: NormStats | None = None,
    thresholds: ThresholdTable | None = None,
    precision: float | None = None,
    stratum: str = "all",
    formats: Sequence[str] = ("csv", "geojson", "parquet"),
) -> Detection:
    """Raster -> probability GeoTIFF -> footprints in the Open Buildings schema (CSV, GeoJSON,
    GeoParquet) under ``out_dir/<stem>.*``. With ``thresholds`` and ``precision`` the stored
    per-stratum confidence threshold for that precision level is applied at export."""
    cfg = cfg or DetectConfig()
    src = Path(src_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    prob_path = predict_raster(model, src, out / f"{src.stem}.prob.tif", cfg=cfg, stats=stats)
    t1 = time.perf_counter()
    fp = footprints_from_probability(prob_path, cfg=cfg, stratum=stratum)
    if precision is not None:
        if thresholds is None:
            raise ValueError(
                "precision given but the model carries no fitted thresholds (run evaluate --fit)"
            )
        keep = apply_thresholds(fp.confidence, np.full(len(fp), stratum, dtype=object), thresholds, precision)
        fp = fp.filter(keep)
    t2 = time.perf_counter()
    files: dict[str, Path] = {}
    writers: dict[str, tuple[Callable[[Footprints, Path], Path], str]] = {
        "csv": (write_open_buildings_csv, ".buildings.csv"),
        "geojson": (write_geojson, ".buildings.geojson"),
        "parquet": (write_geoparquet, ".buildings.parquet"),
    }
    for name in formats:
        if name not in writers:
            raise ValueError(f"unknown output format {name!r}; choose from {sorted(writers)}")
        fn, suffix = writers[name]
        files[name] = fn(fp, out / f"{src.stem}{suffix}")
    t3 = time.perf_counter()
    return Detection(
        src, prob_path, fp, files, {"predict": t1 - t0, "postprocess": t2 - t1, "write": t3 - t2}
    )


def detect_many(
    model: torch.nn.Module,
    sources: Sequence[str | Path],
    out_dir: str | Path,
    **kwargs: Any,
) -> list[Detection]:
    """:func:`detect` over many rasters, sharded across ``torchrun`` ranks (each rank its own scenes)."""
    return [detect(model, src, out_dir, **kwargs) for src in shard_sequence(list(sources))]
