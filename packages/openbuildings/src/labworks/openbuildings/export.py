"""Footprints → files: the Open Buildings CSV schema, GeoJSON (RFC 7946) and GeoParquet 1.1.

Open Buildings CSV (google-research ``open_buildings_download_region_polygons.ipynb``): columns
``latitude, longitude, area_in_meters, confidence, geometry, full_plus_code`` (the *points* variant
drops ``geometry``); ``geometry`` = WKT in lon-lat (EPSG:4326); ``latitude``/``longitude`` = shapely
planar centroid of that lon-lat geometry; ``area_in_meters`` = WGS84 geodesic area rounded to 4
decimals; ``full_plus_code`` = 12-digit Plus Code of the centroid. Every writer is atomic (a reader
sees the old file or the new one). GeoParquet is written with pyarrow alone (WKB + the ``geo``
metadata), no GDAL.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from labworks.core import atomic_path
from labworks.openbuildings.geo import centroids_latlon, geodesic_area, plus_codes, to_lonlat
from labworks.openbuildings.instances import Footprints

__all__ = [
    "OPEN_BUILDINGS_COLUMNS",
    "OPEN_BUILDINGS_POINT_COLUMNS",
    "read_open_buildings_csv",
    "to_open_buildings_table",
    "write_geojson",
    "write_geoparquet",
    "write_open_buildings_csv",
]

OPEN_BUILDINGS_COLUMNS = (
    "latitude",
    "longitude",
    "area_in_meters",
    "confidence",
    "geometry",
    "full_plus_code",
)
OPEN_BUILDINGS_POINT_COLUMNS = tuple(c for c in OPEN_BUILDINGS_COLUMNS if c != "geometry")
_FLOAT_COLUMNS = ("latitude", "longitude", "area_in_meters", "confidence")
_GEOPARQUET_VERSION = "1.1.0"


class ExportError(ValueError):
    """A file cannot be written or read in the requested schema."""


def _table(fp: Footprints) -> tuple[dict[str, Any], list[BaseGeometry]]:
    if not isinstance(fp, Footprints):
        raise TypeError(f"expected Footprints, got {type(fp).__name__}")
    ll = to_lonlat(fp.geometries, fp.crs)
    lat, lon = centroids_latlon(ll)
    table: dict[str, Any] = {
        "latitude": lat,
        "longitude": lon,
        "area_in_meters": np.round(geodesic_area(ll), 4),
        "confidence": fp.confidence.astype(np.float64),
        "geometry": list(shapely.to_wkt(np.asarray(ll, dtype=object), rounding_precision=-1)) if ll else [],
        "full_plus_code": plus_codes(lat, lon, 12),
    }
    return table, ll


def to_open_buildings_table(fp: Footprints) -> dict[str, Any]:
    """Columns of the Open Buildings schema (in ``OPEN_BUILDINGS_COLUMNS`` order): float64 arrays
    for ``latitude``, ``longitude``, ``area_in_meters`` (geodesic m², 4 decimals) and
    ``confidence``; lists of str for ``geometry`` (lon-lat WKT) and ``full_plus_code``."""
    return _table(fp)[0]


def _open_text(path: Path, mode: str, gz: bool) -> IO[str]:
    if mode not in ("r", "w"):
        raise ValueError(f"mode must be 'r' or 'w', got {mode!r}")
    if gz:
        if mode == "r":
            return gzip.open(path, "rt", encoding="utf-8", newline="")
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return open(path, mode, encoding="utf-8", newline="")


def _fmt(v: float) -> str:
    return "" if math.isnan(v) else repr(float(v))


def write_open_buildings_csv(fp: Footprints, path: str | os.PathLike[str], *, points: bool = False) -> Path:
    """Write ``fp`` as an Open Buildings CSV with a header row (``.csv.gz`` → gzip). ``points=True``
    writes the points variant (no ``geometry`` column). Floats use the shortest exact repr."""
    path = Path(path)
    table = to_open_buildings_table(fp)
    cols = OPEN_BUILDINGS_POINT_COLUMNS if points else OPEN_BUILDINGS_COLUMNS
    with atomic_path(path) as tmp, _open_text(tmp, "w", path.name.endswith(".gz")) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for i in range(len(fp)):
            w.writerow([_fmt(table[c][i]) if c in _FLOAT_COLUMNS else table[c][i] for c in cols])
    return path


def _rows(path: Path) -> Iterator[list[str]]:
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"  # gzip magic, whatever the suffix
    with _open_text(path, "r", gz) as f:
        yield from csv.reader(f)


def read_open_buildings_csv(path: str | os.PathLike[str]) -> Footprints:
    """Read an Open Buildings CSV (polygons or points, with or without the header row, plain or
    gzip) → :class:`Footprints` in EPSG:4326. Geometries are the WKT polygons (points for the
    points variant); ``attrs`` holds ``latitude``, ``longitude``, ``area_in_meters`` and
    ``full_plus_code`` as read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV: {path}")
    rows = list(_rows(path))
    cols: tuple[str, ...]
    if rows and tuple(rows[0]) in (OPEN_BUILDINGS_COLUMNS, OPEN_BUILDINGS_POINT_COLUMNS):
        cols, rows = tuple(rows[0]), rows[1:]
    elif not rows or len(rows[0]) == len(OPEN_BUILDINGS_COLUMNS):
        cols = OPEN_BUILDINGS_COLUMNS  # v3 shards carry no header
    elif len(rows[0]) == len(OPEN_BUILDINGS_POINT_COLUMNS):
        cols = OPEN_BUILDINGS_POINT_COLUMNS
    else:
        raise ExportError(
            f"{path}: {len(rows[0])} columns; expected the Open Buildings schema {OPEN_BUILDINGS_COLUMNS}"
        )
    for k, r in enumerate(rows):
        if len(r) != len(cols):
            raise ExportError(f"{path}: row {k + 1} has {len(r)} fields, expected {len(cols)}")
    data = {c: [r[j] for r in rows] for j, c in enumerate(cols)}
    try:
        floats = {
            c: np.array([float(v) if v else np.nan for v in data[c]], np.float64) for c in _FLOAT_COLUMNS
        }
    except ValueError as err:
        raise ExportError(f"{path}: non-numeric value in a numeric column ({err})") from err
    if "geometry" in cols:
        geoms = list(shapely.from_wkt(np.asarray(data["geometry"], dtype=object), on_invalid="raise"))
    else:
        geoms = list(shapely.points(floats["longitude"], floats["latitude"])) if rows else []
    attrs = {
        "latitude": floats["latitude"],
        "longitude": floats["longitude"],
        "area_in_meters": floats["area_in_meters"],
        "full_plus_code": np.asarray(data["full_plus_code"], dtype=object),
    }
    return Footprints(geoms, floats["confidence"], "EPSG:4326", np.zeros(len(geoms), np.int32), attrs)


def _py(v: Any) -> Any:
    """A JSON-safe Python scalar (NaN → null)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _properties(fp: Footprints, table: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    cols: dict[str, Any] = {
        "confidence": table["confidence"],
        "area_in_meters": table["area_in_meters"],
        "full_plus_code": table["full_plus_code"],
    }
    extra = {k: v for k, v in fp.attrs.items() if k not in cols and k not in OPEN_BUILDINGS_COLUMNS}
    return list(cols) + list(extra), {**cols, **extra}


def write_geojson(fp: Footprints, path: str | os.PathLike[str], *, lonlat: bool = True) -> Path:
    """Write a GeoJSON FeatureCollection: lon-lat (RFC 7946) by default; ``lonlat=False`` keeps the
    raster CRS and names it in a (pre-RFC, GDAL-readable) ``crs`` member. Properties:
    ``confidence``, ``area_in_meters``, ``full_plus_code`` plus every ``attrs`` column."""
    path = Path(path)
    table, ll = _table(fp)
    geoms = ll if lonlat else fp.geometries
    gj = shapely.to_geojson(np.asarray(geoms, dtype=object)) if geoms else []
    names, cols = _properties(fp, table)
    header: dict[str, Any] = {"type": "FeatureCollection"}
    if not lonlat:
        auth = CRS.from_user_input(fp.crs).to_authority()
        if auth is None:
            raise ExportError(f"write_geojson(lonlat=False): CRS {fp.crs!r} has no authority code to name")
        header["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:{auth[0]}::{auth[1]}"}}
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(header)[:-1] + ', "features": [')
        for i in range(len(fp)):
            props = json.dumps({k: _py(cols[k][i]) for k in names}, allow_nan=False)
            f.write(
                ("," if i else "") + f'\n{{"type": "Feature", "properties": {props}, "geometry": {gj[i]}}}'
            )
        f.write("\n]}\n")
    return path


def _geo_metadata(geoms: list[BaseGeometry], crs: CRS) -> dict[str, Any]:
    arr = np.asarray(geoms, dtype=object)
    col: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": sorted({g.geom_type for g in geoms}),
        "crs": crs.to_json_dict(),
    }
    if len(geoms):
        b = shapely.total_bounds(arr)
        if np.isfinite(b).all():
            col["bbox"] = [float(v) for v in b]
    return {"version": _GEOPARQUET_VERSION, "primary_column": "geometry", "columns": {"geometry": col}}


def write_geoparquet(fp: Footprints, path: str | os.PathLike[str], *, lonlat: bool = True) -> Path:
    """Write GeoParquet 1.1 with pyarrow: the Open Buildings columns (``latitude``, ``longitude``,
    ``area_in_meters``, ``confidence``, ``full_plus_code``), the ``attrs`` columns and a WKB
    ``geometry`` column (lon-lat EPSG:4326 by default, the raster CRS with ``lonlat=False``), with
    ``geo`` file metadata (primary column, encoding, geometry types, PROJJSON CRS, bbox)."""
    path = Path(path)
    table, ll = _table(fp)
    geoms = ll if lonlat else fp.geometries
    crs = CRS.from_epsg(4326) if lonlat else CRS.from_user_input(fp.crs)
    names, cols = _properties(fp, table)
    data: dict[str, pa.Array] = {c: pa.array(table[c], pa.float64()) for c in _FLOAT_COLUMNS}
    data["full_plus_code"] = pa.array(table["full_plus_code"], pa.string())
    for k in names:
        if k in data:
            continue
        v = cols[k]
        data[k] = pa.array(list(v) if isinstance(v, np.ndarray) and v.dtype == object else v)
    wkb = list(shapely.to_wkb(np.asarray(geoms, dtype=object))) if geoms else []
    data["geometry"] = pa.array(wkb, pa.binary())
    tbl = pa.table(data)
    meta = dict(tbl.schema.metadata or {})
    meta[b"geo"] = json.dumps(_geo_metadata(geoms, crs)).encode()
    tbl = tbl.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(tbl, tmp)
    return path
