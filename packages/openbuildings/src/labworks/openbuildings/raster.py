"""Raster and label I/O for real and synthetic data: one code path for every GeoTIFF.

- :func:`raster_info` / :func:`read_window` / :func:`tile_windows`: windowed reads with a validity mask
  (nodata in all bands, or NaN/inf in any band), tiles that cover every pixel.
- :func:`normalize` / :class:`NormStats`: fixed per-dataset statistics, never per tile.
- :func:`read_labels`: GeoJSON or GeoParquet building polygons, reprojected to the raster CRS, empty
  and invalid geometries dropped or repaired (with a warning); :func:`check_labels_overlap` catches
  a CRS/label mismatch; :func:`rasterize_instances`: polygons -> int32 instance ids.
- :class:`TileDataset`: training tiles from (image, labels) pairs with windowed reads.

Pixel (row, col) covers ``[col, col+1) x [row, row+1)`` in pixel space (corner convention of
``rasterio.features.rasterize``); a pixel belongs to a polygon when its centre is inside it.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeAlias

import numpy as np
import pyproj
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.io
import rasterio.transform
import shapely
import torch
from affine import Affine
from pydantic import model_validator
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.windows import Window
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from labworks.core import Config, atomic_path

__all__ = [
    "LabelError",
    "LabelWarning",
    "NormStats",
    "RasterError",
    "RasterInfo",
    "TileDataset",
    "check_labels_overlap",
    "normalize",
    "raster_info",
    "rasterize_instances",
    "read_labels",
    "read_window",
    "tile_windows",
    "write_geotiff",
]

PathLike: TypeAlias = str | os.PathLike[str]
Building: TypeAlias = Polygon | MultiPolygon


class RasterError(ValueError):
    """A raster (or its labels) cannot be used: unreadable, no CRS, rotated grid, CRS mismatch."""


class LabelError(RasterError):
    """A label file cannot be read or interpreted (format, CRS, coordinates)."""


class LabelWarning(UserWarning):
    """Label geometries were dropped (empty, not polygonal) or repaired (invalid)."""


# --------------------------------------------------------------------------------------------------
# raster metadata and windows


@dataclass(frozen=True)
class RasterInfo:
    """What a reader needs to know about a raster before reading pixels."""

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine
    nodata: float | None
    res: tuple[float, float]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        west, south, east, north = rasterio.transform.array_bounds(self.height, self.width, self.transform)
        return (float(west), float(south), float(east), float(north))


def raster_info(path: PathLike, *, require_crs: bool = True) -> RasterInfo:
    """Metadata of ``path``; :class:`RasterError` if unreadable, without a CRS (unless
    ``require_crs=False``) or with a rotated/sheared geotransform."""
    p = Path(path)
    try:
        with rasterio.open(p) as src:
            info = RasterInfo(
                path=p,
                width=int(src.width),
                height=int(src.height),
                count=int(src.count),
                dtype=str(src.dtypes[0]),
                crs=src.crs if src.crs else None,
                transform=src.transform,
                nodata=None if src.nodata is None else float(src.nodata),
                res=(float(abs(src.transform.a)), float(abs(src.transform.e))),
            )
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(f"cannot read raster {p}: {err}") from None
    t = info.transform
    if t.b != 0 or t.d != 0:
        raise RasterError(
            f"raster {p} has a rotated or sheared geotransform {tuple(t)[:6]}; only north-up grids "
            "are supported: warp it first (e.g. gdalwarp)"
        )
    if t.a == 0 or t.e == 0:
        raise RasterError(f"raster {p} has a degenerate geotransform {tuple(t)[:6]}")
    if require_crs and info.crs is None:
        raise RasterError(
            f"raster {p} has no CRS: georeference it (e.g. gdal_edit.py -a_srs EPSG:xxxx) or pass "
            "require_crs=False"
        )
    return info


def _offsets(n: int, tile: int, stride: int) -> list[tuple[int, int]]:
    if n <= tile:
        return [(0, n)]
    offs = list(range(0, n - tile + 1, stride))
    if offs[-1] + tile < n:
        offs.append(n - tile)
    return [(o, tile) for o in offs]


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    """Windows of ``tile`` x ``tile`` pixels with stride ``tile - overlap`` covering every pixel,
    row-major. The last row/column of windows is snapped to the raster edge (no window leaves the
    raster); a dimension smaller than ``tile`` gets one window of its full extent (the caller pads)."""
    for name, v in (("height", height), ("width", width), ("tile", tile)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if int(overlap) != overlap or not 0 <= overlap < tile:
        raise ValueError(f"overlap must be an integer with 0 <= overlap < tile={tile}, got {overlap!r}")
    stride = tile - overlap
    rows = _offsets(int(height), int(tile), stride)
    cols = _offsets(int(width), int(tile), stride)
    return [Window(c0, r0, cw, rh) for r0, rh in rows for c0, cw in cols]


def _window_ints(window: Window) -> tuple[int, int, int, int]:
    vals = (window.row_off, window.col_off, window.height, window.width)
    if any(float(v) != int(v) for v in vals):
        raise RasterError(f"window {window} is not on whole pixels")
    r, c, h, w = (int(v) for v in vals)
    return r, c, h, w


def read_window(
    src: rasterio.io.DatasetReader | PathLike,
    window: Window,
    *,
    bands: Sequence[int] | None = None,
    pad_to: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``window`` (inside the raster) of ``bands`` (1-based; default all).

    Returns ``(data, valid)``: data ``(C, h, w)`` in the file dtype (non-finite values replaced by 0),
    valid ``(h, w)`` bool, False where every band equals nodata, any band is NaN/inf, or an internal
    mask/alpha band says so. With ``pad_to``, both are padded at the bottom/right to
    ``(pad_to, pad_to)`` with 0 / False.
    """
    if not isinstance(src, rasterio.io.DatasetReader):
        with rasterio.open(src) as ds:
            return read_window(ds, window, bands=bands, pad_to=pad_to)
    r, c, h, w = _window_ints(window)
    if r < 0 or c < 0 or h < 1 or w < 1 or r + h > src.height or c + w > src.width:
        raise RasterError(
            f"window (row {r}, col {c}, {h}x{w}) is not inside raster {src.name} ({src.height}x{src.width})"
        )
    idx = list(range(1, src.count + 1)) if bands is None else [int(b) for b in bands]
    bad = [b for b in idx if not 1 <= b <= src.count]
    if bad or not idx:
        raise RasterError(f"bands {list(bands or [])} out of range 1..{src.count} for {src.name}")
    win = Window(c, r, w, h)
    data = src.read(idx, window=win)
    valid = np.ones((h, w), dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        finite = np.isfinite(data)
        if not finite.all():
            valid &= finite.all(axis=0)
            data = np.where(finite, data, 0).astype(data.dtype, copy=False)
    nodata = src.nodata
    if nodata is not None and not math.isnan(nodata):
        valid &= ~(data == np.asarray(nodata).astype(data.dtype)).all(axis=0)
    flags = src.mask_flag_enums[idx[0] - 1]
    if MaskFlags.per_dataset in flags or MaskFlags.alpha in flags:
        valid &= src.read_masks(idx[0], window=win) > 0
    if pad_to is not None:
        if pad_to < max(h, w):
            raise RasterError(f"pad_to={pad_to} is smaller than the window ({h}x{w})")
        data = np.pad(data, ((0, 0), (0, pad_to - h), (0, pad_to - w)))
        valid = np.pad(valid, ((0, pad_to - h), (0, pad_to - w)))
    return data, valid


# --------------------------------------------------------------------------------------------------
# normalization


class NormStats(Config):
    """Fixed per-dataset normalization: ``(x / scale - mean[c]) / std[c]`` per channel.

    The default is the usual RGB statistics of 8-bit imagery (ImageNet mean/std on ``x / 255``).
    Compute dataset statistics with :meth:`from_rasters`; never normalize per tile.
    """

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    scale: float = 255.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.mean or len(self.mean) != len(self.std):
            raise ValueError(
                f"mean and std need one value per channel, got {len(self.mean)} and {len(self.std)}"
            )
        if any(not s > 0 for s in self.std):
            raise ValueError(f"std must be > 0 for every channel, got {self.std}")
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        return self

    @property
    def channels(self) -> int:
        return len(self.mean)

    @classmethod
    def from_rasters(
        cls,
        paths: Sequence[PathLike],
        *,
        max_pixels: int = 1_000_000,
        bands: Sequence[int] | None = None,
        scale: float = 255.0,
        strip: int = 256,
    ) -> NormStats:
        """Global per-channel mean/std of ``x / scale`` over valid pixels of ``paths``, from a regular
        strided subsample (same stride in every raster) of at most about ``max_pixels`` pixels, read
        in strips of ``strip`` rows (bounded memory)."""
        if not paths:
            raise ValueError("from_rasters needs at least one raster")
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
        infos = [raster_info(path, require_crs=False) for path in paths]
        # one stride for all rasters: every pixel has the same chance to be sampled
        step = max(1, math.ceil(math.sqrt(sum(i.height * i.width for i in infos) / max_pixels)))
        total: np.ndarray | None = None
        total_sq: np.ndarray | None = None
        n = 0
        for path, info in zip(paths, infos, strict=True):
            with rasterio.open(path) as src:
                for r0 in range(0, info.height, strip):
                    h = min(strip, info.height - r0)
                    data, valid = read_window(src, Window(0, r0, info.width, h), bands=bands)
                    first = (-r0) % step
                    x = data[:, first::step, ::step].astype(np.float64) / scale
                    m = valid[first::step, ::step]
                    if total is None or total_sq is None:
                        total = np.zeros(x.shape[0])
                        total_sq = np.zeros(x.shape[0])
                    elif x.shape[0] != total.shape[0]:
                        raise RasterError(f"{path} has {x.shape[0]} bands, earlier rasters {total.shape[0]}")
                    sel = x[:, m]
                    total += sel.sum(axis=1)
                    total_sq += (sel * sel).sum(axis=1)
                    n += sel.shape[1]
        if n == 0 or total is None or total_sq is None:
            raise RasterError("no valid pixels found in the rasters")
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
        std = np.where(std > 0, std, 1.0)
        return cls(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std), scale=scale)


def normalize(image: np.ndarray, stats: NormStats | None = None) -> np.ndarray:
    """``(C, H, W)`` image of any numeric dtype -> float32 ``(x / scale - mean) / std`` per channel."""
    stats = stats or NormStats()
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
    if image.shape[0] != stats.channels:
        raise ValueError(
            f"image has {image.shape[0]} channels but the normalization stats have {stats.channels}; "
            "pass NormStats for this imagery (NormStats.from_rasters)"
        )
    mean = np.asarray(stats.mean, np.float32)[:, None, None]
    std = np.asarray(stats.std, np.float32)[:, None, None]
    out = image.astype(np.float32) / np.float32(stats.scale)
    out -= mean
    out /= std
    return out


# --------------------------------------------------------------------------------------------------
# labels


def _as_pyproj(crs: Any) -> pyproj.CRS:
    if isinstance(crs, pyproj.CRS):
        return crs
    if isinstance(crs, CRS):
        return pyproj.CRS.from_wkt(crs.to_wkt())
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as err:
        raise LabelError(f"cannot interpret CRS {crs!r}: {err}") from None


def crs_string(crs: Any) -> str:
    """``"EPSG:<code>"`` when the CRS has one, else its authority string or WKT."""
    c = _as_pyproj(crs)
    epsg = c.to_epsg()
    if epsg is not None:
        return f"EPSG:{epsg}"
    auth = c.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else c.to_wkt()


def _geojson_crs(doc: dict[str, Any], path: Path) -> pyproj.CRS:
    member = doc.get("crs")
    if member is None:
        return pyproj.CRS.from_epsg(4326)  # RFC 7946: lon/lat WGS84
    if isinstance(member, dict):
        props = member.get("properties") or {}
        name = props.get("name")
        if member.get("type") == "name" and isinstance(name, str):
            return _as_pyproj(name)
        raise LabelError(f"{path}: unsupported 'crs' member {member!r} (expected a named CRS)")
    return _as_pyproj(member)


def _read_geojson(path: Path) -> tuple[list[Any], list[dict[str, Any]], pyproj.CRS | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelError(f"cannot read GeoJSON {path}: {err}") from None
    if not isinstance(doc, dict):
        raise LabelError(f"{path}: expected a GeoJSON object, got {type(doc).__name__}")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features") or []
    elif kind == "Feature":
        features = [doc]
    elif kind in {"Polygon", "MultiPolygon", "GeometryCollection", "Point", "LineString"}:
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    else:
        raise LabelError(f"{path}: not a GeoJSON FeatureCollection/Feature (type={kind!r})")
    geoms: list[Any] = []
    props: list[dict[str, Any]] = []
    for f in features:
        g = f.get("geometry") if isinstance(f, dict) else None
        try:
            geoms.append(shape(g) if g else None)
        except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as err:
            raise LabelError(f"{path}: malformed geometry {str(g)[:80]}: {err}") from None
        props.append(dict(f.get("properties") or {}) if isinstance(f, dict) else {})
    return geoms, props, _geojson_crs(doc, path)


def _read_geoparquet(path: Path) -> tuple[list[Any], list[dict[str, Any]], pyproj.CRS | None]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as err:
        raise LabelError(f"cannot read GeoParquet {path}: {err}") from None
    raw = (table.schema.metadata or {}).get(b"geo")
    if raw is None:
        raise LabelError(f"{path}: no 'geo' metadata; not a GeoParquet file")
    geo = json.loads(raw)
    column = geo.get("primary_column", "geometry")
    meta = (geo.get("columns") or {}).get(column, {})
    encoding = str(meta.get("encoding", "WKB")).upper()
    if encoding != "WKB":
        raise LabelError(f"{path}: geometry encoding {encoding!r} is not supported (only WKB)")
    if column not in table.column_names:
        raise LabelError(f"{path}: geometry column {column!r} missing")
    if "crs" not in meta:
        crs: pyproj.CRS | None = pyproj.CRS.from_user_input("OGC:CRS84")  # GeoParquet default
    elif meta["crs"] is None:
        crs = None  # explicitly unknown
    elif isinstance(meta["crs"], dict):
        crs = pyproj.CRS.from_json_dict(meta["crs"])
    else:
        crs = _as_pyproj(meta["crs"])
    wkb = np.asarray(table.column(column).to_pylist(), dtype=object)
    try:
        geoms = list(shapely.from_wkb(wkb))
    except shapely.errors.GEOSException as err:
        raise LabelError(f"{path}: malformed WKB geometry: {err}") from None
    others = [name for name in table.column_names if name != column]
    cols = {name: table.column(name).to_pylist() for name in others}
    props = [{name: cols[name][i] for name in others} for i in range(table.num_rows)]
    return geoms, props, crs


def _polygonal(g: BaseGeometry) -> Building | None:
    """The polygonal part of ``g`` (Polygon, or MultiPolygon when several), None if there is none."""
    if isinstance(g, Polygon | MultiPolygon):
        return None if g.is_empty else g
    parts: list[Polygon] = []
    for sub in getattr(g, "geoms", []):
        p = _polygonal(sub)
        if isinstance(p, Polygon):
            parts.append(p)
        elif isinstance(p, MultiPolygon):
            parts.extend(p.geoms)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _reprojector(src: pyproj.CRS, dst: pyproj.CRS) -> Callable[[np.ndarray], np.ndarray]:
    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return fn


def read_labels(
    path: PathLike,
    *,
    crs: Any = None,
    source_crs: Any = None,
) -> tuple[list[Building], list[dict[str, Any]], str | None]:
    """Building polygons from GeoJSON (``.geojson``/``.json``) or GeoParquet (``.parquet``).

    The labels' CRS comes from the GeoJSON ``crs`` member (else EPSG:4326 per RFC 7946) or the
    GeoParquet ``geo`` metadata (PROJJSON; absent = OGC:CRS84); ``source_crs`` overrides it.
    With ``crs`` (the raster's), polygons are reprojected to it (pyproj, x/y = easting/northing or
    lon/lat order) and that CRS is returned. Empty and non-polygonal geometries are dropped, invalid
    ones repaired with ``make_valid`` keeping the polygonal part (a MultiPolygon stays one building);
    a :class:`LabelWarning` reports the counts.

    Returns ``(polygons, properties, crs_string)``; use :func:`check_labels_overlap` to catch labels
    that land outside the raster (a CRS mismatch).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"label file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in {".geojson", ".json"}:
        geoms, props, label_crs = _read_geojson(p)
        from_rfc7946 = label_crs is not None and label_crs.to_epsg() == 4326
    elif suffix in {".parquet", ".geoparquet", ".pq"}:
        geoms, props, label_crs = _read_geoparquet(p)
        from_rfc7946 = False
    else:
        raise LabelError(f"{p}: unsupported label format {suffix!r} (use .geojson or .parquet)")
    if source_crs is not None:
        label_crs = _as_pyproj(source_crs)
        from_rfc7946 = False

    kept: list[Building] = []
    kept_props: list[dict[str, Any]] = []
    n_empty = n_nonpoly = n_repaired = 0
    for g, prop in zip(geoms, props, strict=True):
        if g is None or g.is_empty:
            n_empty += 1
            continue
        g = shapely.force_2d(g)
        if not g.is_valid:
            fixed = _polygonal(shapely.make_valid(g))
            if fixed is None or fixed.area == 0:
                n_empty += 1
                continue
            g = fixed
            n_repaired += 1
        else:
            poly = _polygonal(g)
            if poly is None:
                if isinstance(g, Polygon | MultiPolygon):
                    n_empty += 1
                else:
                    n_nonpoly += 1
                continue
            g = poly
        kept.append(g)
        kept_props.append(prop)
    if n_empty or n_nonpoly or n_repaired:
        warnings.warn(
            f"read_labels({p.name}): dropped {n_empty} empty and {n_nonpoly} non-polygon geometries, "
            f"repaired {n_repaired} invalid",
            LabelWarning,
            stacklevel=2,
        )

    if label_crs is not None and label_crs.is_geographic and kept:
        x0, y0, x1, y1 = shapely.total_bounds(kept)
        if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
            hint = " (a GeoJSON without a 'crs' member is read as EPSG:4326 lon/lat)" if from_rfc7946 else ""
            raise LabelError(
                f"{p}: coordinates {x0:.1f}..{x1:.1f}, {y0:.1f}..{y1:.1f} are not lon/lat but the labels' "
                f"CRS is {crs_string(label_crs)}{hint}; add the CRS to the file or pass source_crs="
            )
    if crs is None:
        return kept, kept_props, None if label_crs is None else crs_string(label_crs)
    target = _as_pyproj(crs)
    if label_crs is None:
        warnings.warn(
            f"read_labels({p.name}): the labels have no CRS; assuming they are in {crs_string(target)}",
            LabelWarning,
            stacklevel=2,
        )
    elif not label_crs.equals(target) and kept:
        arr = shapely.transform(np.asarray(kept, dtype=object), _reprojector(label_crs, target))
        kept = list(arr)
    return kept, kept_props, crs_string(target)


def check_labels_overlap(
    polygons: Sequence[BaseGeometry], info: RasterInfo, *, labels_crs: str | None = None
) -> None:
    """:class:`RasterError` when labels exist but none intersects the raster's bounds: almost always
    labels in another CRS than assumed. No labels at all is fine (a scene without buildings)."""
    geoms = [g for g in polygons if g is not None and not g.is_empty]
    if not geoms:
        return
    left, bottom, right, top = info.bounds
    box = shapely.box(left, bottom, right, top)
    if bool(np.any(shapely.intersects(np.asarray(geoms, dtype=object), box))):
        return
    lb = shapely.total_bounds(geoms)
    raster_crs = crs_string(info.crs) if info.crs is not None else "none"
    raise RasterError(
        f"none of the {len(geoms)} labels intersects raster {info.path.name}: raster CRS {raster_crs} bounds "
        f"({left:.1f}, {bottom:.1f}, {right:.1f}, {top:.1f}); labels (CRS {labels_crs or raster_crs} after "
        f"reprojection) bounds ({lb[0]:.1f}, {lb[1]:.1f}, {lb[2]:.1f}, {lb[3]:.1f}). Check the labels' CRS."
    )


def rasterize_instances(
    polygons: Sequence[BaseGeometry | None], transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """int32 ``(H, W)``: id ``i + 1`` where the pixel centre is inside ``polygons[i]`` (later polygons
    drawn over earlier ones), 0 elsewhere; empty/None entries keep their id unused."""
    h, w = int(shape[0]), int(shape[1])
    pairs = [(mapping(g), i + 1) for i, g in enumerate(polygons) if g is not None and not g.is_empty]
    if not pairs or h == 0 or w == 0:
        return np.zeros((h, w), dtype=np.int32)
    return rasterio.features.rasterize(
        pairs, out_shape=(h, w), transform=transform, fill=0, all_touched=False, dtype="int32"
    )


def write_geotiff(
    path: PathLike,
    data: np.ndarray,
    *,
    transform: Affine,
    crs: Any,
    nodata: float | None = None,
    dtype: Any = None,
) -> Path:
    """Write ``(C, H, W)`` or ``(H, W)`` ``data`` as a tiled (256), deflate-compressed GeoTIFF,
    atomically (the file appears complete or not at all). ``crs`` may be None (no georeferencing)."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"data must be (C, H, W) or (H, W), got shape {np.asarray(data).shape}")
    if dtype is not None:
        arr = arr.astype(dtype)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": None if crs is None else (crs if isinstance(crs, CRS) else CRS.from_user_input(crs)),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if arr.shape[0] == 3 and arr.dtype == np.uint8:
        profile["photometric"] = "RGB"
    out = Path(path)
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(arr)
    return out


# --------------------------------------------------------------------------------------------------
# training tiles


@dataclass
class _SceneTiles:
    image: Path
    labels: Path | None
    info: RasterInfo
    polygons: list[Building]
    tree: shapely.STRtree | None


class TileDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Training tiles from (image GeoTIFF, label GeoJSON/GeoParquet or None) pairs, windowed reads.

    Each item is a dict: ``image`` float32 ``(C, t, t)`` normalized with the fixed ``stats`` (0 where
    invalid), ``instances`` int64 ``(t, t)`` (the scene's instance ids, i.e. label ``i + 1`` for the
    scene's ``i``-th polygon, rasterized in the tile window; zeros when unlabelled), ``labelled``
    bool, ``valid`` bool ``(t, t)`` (False on nodata and padding), ``scene`` index and ``window``
    ``(row_off, col_off)``. Scenes smaller than ``tile`` are padded at the bottom/right.
    ``cache=True`` keeps decoded tiles in memory (for small sets).
    """

    def __init__(
        self,
        scenes: Sequence[tuple[PathLike, PathLike | None]],
        *,
        tile: int = 256,
        overlap: int = 0,
        stats: NormStats | None = None,
        cache: bool = True,
        bands: Sequence[int] | None = None,
    ) -> None:
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.stats = stats or NormStats()
        self.bands = None if bands is None else [int(b) for b in bands]
        self.cache_enabled = cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.scenes: list[_SceneTiles] = []
        self.index: list[tuple[int, Window]] = []
        for s, (image, labels) in enumerate(scenes):
            info = raster_info(image)
            channels = len(self.bands) if self.bands is not None else info.count
            if channels != self.stats.channels:
                raise RasterError(
                    f"{info.path} gives {channels} bands but the normalization stats have "
                    f"{self.stats.channels} channels"
                )
            polys: list[Building] = []
            tree = None
            if labels is not None:
                polys, _, lcrs = read_labels(labels, crs=info.crs)
                check_labels_overlap(polys, info, labels_crs=lcrs)
                tree = shapely.STRtree(polys) if polys else None
            self.scenes.append(
                _SceneTiles(Path(image), None if labels is None else Path(labels), info, polys, tree)
            )
            for w in tile_windows(info.height, info.width, self.tile, self.overlap):
                self.index.append((s, w))

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, win = self.index[i]
        sc = self.scenes[s]
        data, valid = read_window(sc.image, win, bands=self.bands, pad_to=self.tile)
        image = normalize(data, self.stats)
        image[:, ~valid] = 0.0
        inst = np.zeros((self.tile, self.tile), dtype=np.int64)
        if sc.tree is not None:
            t = sc.info.transform  # north-up (raster_info rejects rotated grids)
            r0, c0, h, w = _window_ints(win)
            left, top = t.c + c0 * t.a, t.f + r0 * t.e
            wt = Affine(t.a, 0.0, left, 0.0, t.e, top)
            xs, ys = (left, left + w * t.a), (top, top + h * t.e)
            left, right, bottom, top = min(xs), max(xs), min(ys), max(ys)
            hits = np.sort(sc.tree.query(shapely.box(left, bottom, right, top), predicate="intersects"))
            if hits.size:
                pairs = [(mapping(sc.polygons[j]), int(j) + 1) for j in hits]
                inst[:h, :w] = rasterio.features.rasterize(
                    pairs, out_shape=(h, w), transform=wt, fill=0, all_touched=False, dtype="int32"
                )
        return image, inst, valid

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"tile index {i} out of range for {len(self)} tiles")
        i %= len(self)
        item = self._cache.get(i)
        if item is None:
            item = self._load(i)
            if self.cache_enabled:
                self._cache[i] = item
        image, inst, valid = item
        s, win = self.index[i]
        return {
            "image": torch.from_numpy(image.copy()),
            "instances": torch.from_numpy(inst.copy()),
            "labelled": self.scenes[s].labels is not None,
            "valid": torch.from_numpy(valid.copy()),
            "scene": s,
            "window": (int(win.row_off), int(win.col_off)),
        }
