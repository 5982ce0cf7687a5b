"""Georeferencing: Plus Codes on the official OLC conformance tables and against openlocationcode,
lon-lat reprojection and geodesic area against pyproj, centroids against shapely."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from openlocationcode import openlocationcode as olc
from shapely.geometry import Point, box

from labworks.openbuildings.geo import (
    centroids_latlon,
    decode_plus_code,
    geodesic_area,
    plus_codes,
    to_crs,
    to_lonlat,
)


def _table(shared_data: Path, name: str) -> list[list[str]]:
    path = shared_data / "openbuildings" / "plus-codes" / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open(path, encoding="utf-8") as f:
        rows = [r for r in csv.reader(line for line in f if line.strip() and not line.startswith("#"))]
    assert rows
    return rows


def test_encoding_table_every_row(shared_data: Path) -> None:
    rows = _table(shared_data, "encoding.csv")
    assert len(rows) == 302
    lat = np.array([float(r[0]) for r in rows])
    lng = np.array([float(r[1]) for r in rows])
    for length in sorted({int(r[4]) for r in rows}):
        sel = [i for i, r in enumerate(rows) if int(r[4]) == length]
        got = plus_codes(lat[sel], lng[sel], length, strict=False)
        assert got == [rows[i][5] for i in sel], f"length {length}"
        assert got == [olc.encode(lat[i], lng[i], length) for i in sel]  # the library agrees too


def test_strict_mode_rejects_what_the_table_clips(shared_data: Path) -> None:
    rows = _table(shared_data, "encoding.csv")
    out = [r for r in rows if abs(float(r[0])) > 90 or abs(float(r[1])) > 180]
    assert len(out) > 20
    for r in out[:10]:
        with pytest.raises(ValueError, match="outside"):
            plus_codes([float(r[0])], [float(r[1])], int(r[4]))


def test_decoding_table_within_1e_10(shared_data: Path) -> None:
    rows = _table(shared_data, "decoding.csv")
    assert len(rows) == 420
    for code, length, *bounds in rows:
        got = decode_plus_code(code)
        np.testing.assert_allclose(got, [float(b) for b in bounds], atol=1e-10, rtol=0, err_msg=code)
        assert olc.decode(code).codeLength == int(length)


def test_validity_table_with_the_library(shared_data: Path) -> None:
    rows = _table(shared_data, "validityTests.csv")
    assert len(rows) == 25
    for code, valid, short, full in rows:
        assert [olc.isValid(code), olc.isShort(code), olc.isFull(code)] == [
            v == "true" for v in (valid, short, full)
        ], code
        if full == "true":
            decode_plus_code(code)
        else:
            with pytest.raises(ValueError, match="not a valid full Plus Code"):
                decode_plus_code(code)


def test_short_code_table_with_the_library(shared_data: Path) -> None:
    rows = _table(shared_data, "shortCodeTests.csv")
    assert len(rows) == 19
    for full, lat, lng, short, kind in rows:
        if kind in ("B", "S"):
            assert olc.shorten(full, float(lat), float(lng)) == short
        if kind in ("B", "R"):
            assert olc.recoverNearest(short, float(lat), float(lng)) == full


@pytest.mark.parametrize("decimals", [None, 2, 5, 7])
def test_plus_codes_equal_openlocationcode_on_random_points(decimals: int | None) -> None:
    rng = np.random.default_rng(0 if decimals is None else decimals)
    lat = rng.uniform(-90, 90, 1500)
    lon = rng.uniform(-180, 180, 1500)
    if decimals is not None:  # values on cell boundaries exercise the exact rounding path
        lat, lon = np.round(lat, decimals), np.round(lon, decimals)
    lat[:6] = [90, -90, 0, 89.99999999, 1e-15, -1e-15]
    lon[:6] = [180, -180, 0, 179.9999999, -1e-15, 1e-15]
    for length in (2, 4, 8, 10, 11, 12, 15):
        want = [olc.encode(a, b, length) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
        assert plus_codes(lat, lon, length) == want, length
    codes = plus_codes(lat, lon)
    assert all(len(c) == 13 and c[8] == "+" for c in codes)  # 12 digits by default


def test_plus_codes_input_errors() -> None:
    with pytest.raises(ValueError, match="NaN"):
        plus_codes([np.nan], [0.0])
    with pytest.raises(ValueError, match="NaN"):
        plus_codes([0.0], [np.inf], strict=False)
    with pytest.raises(ValueError, match="latitude 91"):
        plus_codes([91.0], [0.0])
    with pytest.raises(ValueError, match="longitude -181"):
        plus_codes([0.0], [-181.0])
    for bad in (1, 3, 9):
        with pytest.raises(ValueError, match="length"):
            plus_codes([0.0], [0.0], bad)
    with pytest.raises(ValueError, match="equal length"):
        plus_codes([0.0, 1.0], [0.0])
    assert plus_codes([], []) == []
    assert plus_codes(0.0, 0.0, 20) == [olc.encode(0.0, 0.0, 15)]
    with pytest.raises(TypeError):
        decode_plus_code(123)  # type: ignore[arg-type]


def test_decode_round_trip_contains_point() -> None:
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-60, 60, 50), rng.uniform(-170, 170, 50)
    for a, b, code in zip(lat, lon, plus_codes(lat, lon, 12), strict=True):
        lo_lat, lo_lon, hi_lat, hi_lon = decode_plus_code(code)
        assert lo_lat <= a < hi_lat and lo_lon <= b < hi_lon
        assert hi_lat - lo_lat == pytest.approx(0.000125 / 25) and hi_lon - lo_lon == pytest.approx(
            0.000125 / 16
        )


def test_to_lonlat_matches_pyproj_pointwise() -> None:
    g = [
        box(500000, 4000000, 500020, 4000010).difference(box(500005, 4000002, 500010, 4000004)),
        Point(400123.5, 3e6),
    ]
    out = to_lonlat(g, "EPSG:32616")
    tr = pyproj.Transformer.from_crs("EPSG:32616", "EPSG:4326", always_xy=True)
    for src, dst in zip(g, out, strict=True):
        assert src.geom_type == dst.geom_type
        xy = shapely.get_coordinates(src)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        np.testing.assert_allclose(
            shapely.get_coordinates(dst), np.column_stack([lon, lat]), rtol=0, atol=1e-12
        )
    assert len(out[0].interiors) == 1
    assert -88 < out[0].centroid.x < -86 and 36 < out[0].centroid.y < 36.2  # zone 16N, x = lon
    back = to_crs(out, "EPSG:4326", "EPSG:32616")
    np.testing.assert_allclose(shapely.get_coordinates(back[0]), shapely.get_coordinates(g[0]), atol=1e-6)
    assert to_lonlat([], "EPSG:32616") == []
    same = to_lonlat(out, "EPSG:4326")
    assert same[0].equals_exact(out[0], 0) and same[0] is not out[0]
    with pytest.raises(ValueError, match="unknown CRS"):
        to_lonlat(g, "EPSG:999999")


def test_geodesic_area_of_a_utm_square() -> None:
    """A 100 m x 100 m UTM square: geodesic area = 1e4 m² / areal scale factor of the projection."""
    crs = pyproj.CRS("EPSG:32637")  # zone 37N (East Africa), square 50 km east of the central meridian
    x0, y0 = 550000.0, 100000.0
    sq = box(x0, y0, x0 + 100, y0 + 100)
    area = geodesic_area(to_lonlat([sq], crs))
    (lon,), (lat,) = pyproj.Transformer.from_crs(crs, 4326, always_xy=True).transform([x0 + 50], [y0 + 50])
    k = pyproj.Proj(crs).get_factors(lon, lat).areal_scale
    assert area[0] == pytest.approx(1e4 / k, rel=1e-6)
    assert area[0] == pytest.approx(1e4, rel=1e-3)
    ring = to_lonlat([sq.difference(box(x0 + 25, y0 + 25, x0 + 75, y0 + 75))], crs)
    assert geodesic_area(ring)[0] == pytest.approx(0.75e4 / k, rel=1e-6)  # holes subtracted
    cw = shapely.geometry.polygon.orient(to_lonlat([sq], crs)[0], sign=-1.0)  # orientation-free
    assert geodesic_area([cw])[0] == pytest.approx(area[0], rel=1e-12)
    assert geodesic_area([]).shape == (0,)


def test_geodesic_area_equals_pyproj_geometry_area_perimeter() -> None:
    """Per (multi)polygon with holes = pyproj's ``geometry_area_perimeter`` on CCW-shell/CW-hole
    polygons; a hole with the shell's orientation (which pyproj would add) is still subtracted."""
    rng = np.random.default_rng(2)
    geod = pyproj.Geod(ellps="WGS84")
    polys = []
    for i in range(40):
        x, y = rng.uniform(200000, 800000), rng.uniform(-9e5, 9e5)
        p = box(x, y, x + rng.uniform(5, 30), y + rng.uniform(5, 30)).difference(
            box(x + 2, y + 2, x + 4, y + 4)
        )
        polys.append(shapely.MultiPolygon([p, box(x + 40, y, x + 50, y + 7)]) if i % 4 == 0 else p)
    ll = [
        shapely.geometry.polygon.orient(p)
        if p.geom_type == "Polygon"
        else shapely.MultiPolygon([shapely.geometry.polygon.orient(q) for q in p.geoms])
        for p in to_lonlat(polys, "EPSG:32736")
    ]
    want = [abs(geod.geometry_area_perimeter(p)[0]) for p in ll]
    np.testing.assert_allclose(geodesic_area(ll), want, rtol=1e-12)
    same_way = shapely.Polygon(ll[1].exterior.coords, [ll[1].interiors[0].coords[::-1]])
    assert geodesic_area([same_way])[0] == pytest.approx(want[1], rel=1e-12)
    assert geodesic_area([Point(36, -1), shapely.LineString([(36, -1), (36.1, -1)]), ll[0]]).tolist()[:2] == [
        0,
        0,
    ]


def test_centroids_latlon_are_planar_shapely_centroids() -> None:
    polys = to_lonlat(
        [box(500000 + 30 * i, 4000000, 500012 + 30 * i, 4000007) for i in range(5)], "EPSG:32616"
    )
    lat, lon = centroids_latlon(polys)
    for la, lo, p in zip(lat, lon, polys, strict=True):
        assert (la, lo) == (p.centroid.y, p.centroid.x)
    lat0, lon0 = centroids_latlon([])
    assert lat0.shape == lon0.shape == (0,)
