"""Georeferencing for footprints: raster CRS → lon-lat, geodesic area, centroids and Plus Codes.

Conventions (Open Buildings, ``open_buildings_download_region_polygons.ipynb``): geometries are
written in lon-lat (EPSG:4326, x = longitude); ``latitude``/``longitude`` are the shapely *planar*
centroid of that lon-lat geometry; ``area_in_meters`` is a WGS84 geodesic area; ``full_plus_code``
is the 12-digit Open Location Code of the centroid (the library's default is 10).

Plus Codes are encoded here with vectorised integer arithmetic that reproduces
``openlocationcode.encode`` (PyPI 1.0.1, the encoder Open Buildings used) exactly: latitude clipped
to [-90, 90] (90 moved down by one cell), longitude wrapped to [-180, 180), then
``latVal = int(round((lat + 90) * 2.5e7, 6))``, ``lngVal = int(round((lng + 180) * 8.192e6, 6))``,
the 4 x 5 grid digits and the base-20 pairs. Values within 2e-6 of an integer step are re-evaluated
with Python's exact ``round``, so the float arithmetic is the library's to the last bit. Note: that
arithmetic adds 90 before scaling, which above ~82° latitude loses ~1e-6 of a step and can put a
point lying exactly on a cell boundary (e.g. 88.96°) into the lower cell, where the spec's newer
``lat * 2.5e7``-first form (the ``latInt`` column of ``encoding.csv``) puts it into the upper one;
all rows of the official conformance tables still pass, and Open Buildings' coverage is far below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from openlocationcode import openlocationcode as olc
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

__all__ = [
    "centroids_latlon",
    "decode_plus_code",
    "geodesic_area",
    "plus_codes",
    "to_crs",
    "to_lonlat",
]

_ALPHABET = np.frombuffer(b"23456789CFGHJMPQRVWX", dtype=np.uint8)
_LAT_PREC = 8000 * 5**5  # 2.5e7 integer steps per degree of latitude (15-digit precision)
_LNG_PREC = 8000 * 4**5  # 8.192e6 per degree of longitude
_MAX_DIGITS = 15
_PAIR_DIGITS = 10
_GEOD = Geod(ellps="WGS84")


def _as_crs(crs: str | CRS) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as err:
        raise ValueError(f"unknown CRS {crs!r}: {err}") from err


def to_crs(geoms: Sequence[BaseGeometry], src: str | CRS, dst: str | CRS) -> list[BaseGeometry]:
    """Reproject ``geoms`` from ``src`` to ``dst`` (x/y axis order = lon/lat for geographic CRSs),
    all coordinates in one vectorised ``pyproj`` call."""
    arr = np.asarray(list(geoms), dtype=object)
    if arr.size == 0:
        return []
    s, d = _as_crs(src), _as_crs(dst)
    if s == d:
        return [shapely.transform(g, lambda xy: xy) for g in arr]  # fresh copies
    tr = Transformer.from_crs(s, d, always_xy=True)

    def _xy(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return list(shapely.transform(arr, _xy))


def to_lonlat(geoms: Sequence[BaseGeometry], crs: str | CRS) -> list[BaseGeometry]:
    """Geometries in ``crs`` → lon-lat (EPSG:4326, x = longitude) for writing and geodesy."""
    return to_crs(geoms, crs, "EPSG:4326")


def geodesic_area(geoms_lonlat: Sequence[BaseGeometry]) -> NDArray[np.float64]:
    """WGS84 geodesic area in m² of lon-lat (multi)polygons: per part, |area of the shell| minus the
    |areas of the holes| (``pyproj.Geod(ellps="WGS84").polygon_area_perimeter`` per ring), so ring
    orientation does not matter. Non-polygonal geometries have area 0."""
    arr = np.asarray(list(geoms_lonlat), dtype=object).reshape(-1)
    out = np.zeros(arr.size, dtype=np.float64)
    if arr.size == 0:
        return out
    polygonal = np.isin(shapely.get_type_id(arr), (3, 6))  # Polygon, MultiPolygon
    parts, owner = shapely.get_parts(arr[polygonal], return_index=True)
    owner = np.flatnonzero(polygonal)[owner]
    rings, ring_part = shapely.get_rings(parts, return_index=True)  # shell first, then holes
    if rings.size == 0:
        return out
    is_shell = np.r_[True, ring_part[1:] != ring_part[:-1]]
    xy = shapely.get_coordinates(rings)
    ends = np.cumsum(shapely.get_num_coordinates(rings))
    starts = ends - shapely.get_num_coordinates(rings)
    lon, lat = xy[:, 0], xy[:, 1]
    signed = np.empty(rings.size, dtype=np.float64)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        signed[i] = abs(_GEOD.polygon_area_perimeter(lon[a:b], lat[a:b])[0])
    signed[~is_shell] *= -1.0
    np.add.at(out, owner[ring_part], signed)
    return out


def centroids_latlon(
    geoms_lonlat: Sequence[BaseGeometry],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(lat, lon)`` of the shapely planar centroid of each lon-lat geometry (Open Buildings)."""
    arr = np.asarray(list(geoms_lonlat), dtype=object)
    if arr.size == 0:
        return np.zeros(0), np.zeros(0)
    c = shapely.centroid(arr)
    return np.asarray(shapely.get_y(c), np.float64), np.asarray(shapely.get_x(c), np.float64)


def _floor_round6(y: NDArray[np.float64]) -> NDArray[np.int64]:
    """``floor(round(y, 6))`` element-wise with Python's exact decimal rounding."""
    v = np.floor(y)
    out = v.astype(np.int64)
    near = (y - v) > 1.0 - 2e-6  # round(y, 6) may carry to the next integer: decide exactly
    for i in np.flatnonzero(near):
        out[i] = math.floor(round(float(y[i]), 6))
    return out


def _lat_precision(n: int) -> float:
    """Height in degrees of a code of ``n`` digits (``openlocationcode.computeLatitudePrecision``)."""
    if n <= _PAIR_DIGITS:
        return float(20 ** math.floor(n / -2 + 2))
    return float(20**-3 / 5 ** (n - _PAIR_DIGITS))


def _check_length(length: int) -> int:
    if not isinstance(length, int | np.integer) or isinstance(length, bool):
        raise TypeError(f"Plus Code length must be an int, got {type(length).__name__}")
    if length < 2 or (length < _PAIR_DIGITS and length % 2 == 1):
        raise ValueError(f"invalid Plus Code length {length}: use 2, 4, 6, 8, or 10 to 15")
    return min(int(length), _MAX_DIGITS)


def plus_codes(lat: ArrayLike, lon: ArrayLike, length: int = 12, *, strict: bool = True) -> list[str]:
    """Open Location Codes of points, ``length`` significant digits (12 = Open Buildings'
    ``full_plus_code``, ``XXXXXXXX+XXXX``; lengths > 15 are clipped to 15 like the spec).

    ``strict`` (default) rejects latitudes outside [-90, 90] and longitudes outside [-180, 180];
    with ``strict=False`` latitudes are clipped and longitudes wrapped, as the OLC spec does.
    NaN or infinite values always raise. Equals ``openlocationcode.encode(lat, lon, length)``.
    """
    n = _check_length(length)
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    if la.shape != lo.shape or la.ndim != 1:
        raise ValueError(
            f"plus_codes: lat and lon must be 1-D of equal length, got {la.shape} and {lo.shape}"
        )
    if not (np.isfinite(la).all() and np.isfinite(lo).all()):
        bad = np.flatnonzero(~(np.isfinite(la) & np.isfinite(lo)))
        raise ValueError(f"plus_codes: NaN or infinite coordinates at indices {bad[:10].tolist()}")
    if strict:
        if (np.abs(la) > 90).any():
            i = int(np.flatnonzero(np.abs(la) > 90)[0])
            raise ValueError(f"plus_codes: latitude {la[i]} at index {i} is outside [-90, 90]")
        if (np.abs(lo) > 180).any():
            i = int(np.flatnonzero(np.abs(lo) > 180)[0])
            raise ValueError(f"plus_codes: longitude {lo[i]} at index {i} is outside [-180, 180]")
    if la.size == 0:
        return []
    la = np.clip(la, -90.0, 90.0)
    la = np.where(la == 90.0, 90.0 - _lat_precision(n), la)
    out_of_range = (lo < -180) | (lo >= 180)
    if out_of_range.any():  # the library's repeated +-360 (float-exact as it does it)
        lo = lo.copy()
        for j in np.flatnonzero(out_of_range):
            lo[j] = olc.normalizeLongitude(float(lo[j]))
    lat_i = _floor_round6((la + 90.0) * _LAT_PREC)
    lng_i = _floor_round6((lo + 180.0) * _LNG_PREC)
    digits = np.empty((la.size, _MAX_DIGITS), dtype=np.int64)
    for k in range(_MAX_DIGITS - 1, _PAIR_DIGITS - 1, -1):  # 4 x 5 grid digits, least significant last
        digits[:, k] = (lat_i % 5) * 4 + lng_i % 4
        lat_i //= 5
        lng_i //= 4
    for k in range(_PAIR_DIGITS - 2, -1, -2):  # base-20 (lat, lng) pairs
        digits[:, k] = lat_i % 20
        digits[:, k + 1] = lng_i % 20
        lat_i //= 20
        lng_i //= 20
    chars = _ALPHABET[digits]
    if n >= 8:
        out = np.concatenate([chars[:, :8], np.full((la.size, 1), ord("+"), np.uint8), chars[:, 8:n]], 1)
    else:
        pad = np.full((la.size, 8 - n), ord("0"), np.uint8)
        out = np.concatenate([chars[:, :n], pad, np.full((la.size, 1), ord("+"), np.uint8)], 1)
    width = out.shape[1]
    return np.ascontiguousarray(out).view(f"S{width}").ravel().astype(f"U{width}").tolist()


def decode_plus_code(code: str) -> tuple[float, float, float, float]:
    """``(lat_lo, lon_lo, lat_hi, lon_hi)`` of the area of a full Plus Code (library decoder)."""
    if not isinstance(code, str):
        raise TypeError(f"decode_plus_code: code must be a str, got {type(code).__name__}")
    if not olc.isFull(code):
        raise ValueError(f"decode_plus_code: {code!r} is not a valid full Plus Code")
    a = olc.decode(code)
    return float(a.latitudeLo), float(a.longitudeLo), float(a.latitudeHi), float(a.longitudeHi)
