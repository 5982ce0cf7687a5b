"""Exports: Open Buildings CSV schema (checked with shapely, pyproj and openlocationcode), GeoJSON and
GeoParquet (read back with geopandas)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from affine import Affine
from openlocationcode import openlocationcode as olc
from shapely.geometry import box

from labworks.openbuildings.export import (
    OPEN_BUILDINGS_COLUMNS,
    read_open_buildings_csv,
    to_open_buildings_table,
    write_geojson,
    write_geoparquet,
    write_open_buildings_csv,
)
from labworks.openbuildings.geo import to_lonlat
from labworks.openbuildings.instances import Footprints, extract_footprints

gpd = pytest.importorskip("geopandas")  # test-only cross-check (add to the test dependency group)

UTM = "EPSG:32737"  # UTM zone 37S (Kenya)
T50 = Affine(0.5, 0.0, 250000.0, 0.0, -0.5, 9990000.0)  # ~1 km south of the equator


@pytest.fixture
def fp() -> Footprints:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.4, (80, 90)).astype(np.float32)
    for _ in range(15):
        r, c = rng.integers(0, 70, 2)
        h, w = rng.integers(3, 10, 2)
        p[r : r + h, c : c + w] = rng.uniform(0.6, 1.0)
    p[60:70, 5:15] = 0.9
    p[63:66, 8:11] = 0.1  # a courtyard
    out = extract_footprints(p, T50, UTM)
    out.attrs["stratum"] = np.array(["urban" if i % 2 else "rural" for i in range(len(out))], dtype=object)
    assert len(out) > 8
    return out


def _geod_area(g: shapely.Geometry) -> float:
    return abs(pyproj.Geod(ellps="WGS84").geometry_area_perimeter(g)[0])


def test_table_follows_the_open_buildings_conventions(fp: Footprints) -> None:
    t = to_open_buildings_table(fp)
    assert tuple(t) == OPEN_BUILDINGS_COLUMNS
    tr = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    for i, g in enumerate(fp.geometries):
        ll = shapely.from_wkt(t["geometry"][i])
        xy = shapely.get_coordinates(g)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        np.testing.assert_allclose(shapely.get_coordinates(ll), np.column_stack([lon, lat]), atol=1e-12)
        assert -1.0 < ll.centroid.y < 0 and 34 < ll.centroid.x < 37  # Kenya, x = lon
        assert t["latitude"][i] == pytest.approx(ll.centroid.y, abs=1e-12)
        assert t["longitude"][i] == pytest.approx(ll.centroid.x, abs=1e-12)
        assert t["area_in_meters"][i] == round(_geod_area(ll), 4)
        assert t["area_in_meters"][i] == pytest.approx(g.area, rel=2e-3)  # UTM m² ~ geodesic m²
        assert t["full_plus_code"][i] == olc.encode(t["latitude"][i], t["longitude"][i], 12)
    np.testing.assert_array_equal(t["confidence"], fp.confidence)
    assert any(len(shapely.from_wkt(w).interiors) for w in t["geometry"])


@pytest.mark.parametrize("name", ["b.csv", "b.csv.gz"])
def test_csv_schema_and_round_trip(fp: Footprints, tmp_path: Path, name: str) -> None:
    path = write_open_buildings_csv(fp, tmp_path / name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == OPEN_BUILDINGS_COLUMNS and len(rows) == len(fp) + 1
    t = to_open_buildings_table(fp)
    for i, r in enumerate(rows[1:]):
        assert float(r[0]) == t["latitude"][i] and float(r[1]) == t["longitude"][i]  # exact repr
        assert float(r[2]) == t["area_in_meters"][i] and float(r[3]) == fp.confidence[i]
        assert r[5] == t["full_plus_code"][i] and len(r[5]) == 13
    back = read_open_buildings_csv(path)
    assert back.crs == "EPSG:4326" and len(back) == len(fp)
    np.testing.assert_array_equal(back.confidence, fp.confidence)
    np.testing.assert_array_equal(back.attrs["area_in_meters"], t["area_in_meters"])
    assert back.attrs["full_plus_code"].tolist() == t["full_plus_code"]
    for a, b in zip(back.geometries, to_lonlat(fp.geometries, fp.crs), strict=True):
        assert a.equals_exact(b, 1e-12)
    # written again from the lon-lat footprints: the same table
    t2 = to_open_buildings_table(back)
    np.testing.assert_allclose(t2["latitude"], t["latitude"], atol=1e-12)
    np.testing.assert_array_equal(t2["full_plus_code"], t["full_plus_code"])
    np.testing.assert_allclose(t2["area_in_meters"], t["area_in_meters"], atol=1e-4)


def test_points_csv_and_headerless_v3_shards(fp: Footprints, tmp_path: Path) -> None:
    path = write_open_buildings_csv(fp, tmp_path / "p.csv", points=True)
    header = path.read_text().splitlines()[0]
    assert header == "latitude,longitude,area_in_meters,confidence,full_plus_code"
    pts = read_open_buildings_csv(path)
    t = to_open_buildings_table(fp)
    assert [g.geom_type for g in pts.geometries] == ["Point"] * len(fp)
    np.testing.assert_array_equal([g.y for g in pts.geometries], t["latitude"])
    full = write_open_buildings_csv(fp, tmp_path / "full.csv")
    shard = tmp_path / "0d7_buildings.csv.gz"  # v3 shards: gzip, no header row
    with gzip.open(shard, "wt", encoding="utf-8") as f:
        f.write("".join(full.read_text().splitlines(keepends=True)[1:]))
    back = read_open_buildings_csv(shard)
    assert len(back) == len(fp) and back.attrs["full_plus_code"].tolist() == t["full_plus_code"]


def test_csv_read_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="Open Buildings schema"):
        read_open_buildings_csv(bad)
    bad.write_text(",".join(OPEN_BUILDINGS_COLUMNS) + "\n1,2,3,x,POLYGON EMPTY,AAA\n")
    with pytest.raises(ValueError, match="non-numeric"):
        read_open_buildings_csv(bad)
    with pytest.raises(FileNotFoundError):
        read_open_buildings_csv(tmp_path / "missing.csv")


def test_geojson_lonlat_read_by_geopandas(fp: Footprints, tmp_path: Path) -> None:
    path = write_geojson(fp, tmp_path / "b.geojson")
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert list(doc["features"][0]["properties"]) == [
        "confidence",
        "area_in_meters",
        "full_plus_code",
        "stratum",
    ]
    gdf = gpd.read_file(path)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == len(fp)
    t = to_open_buildings_table(fp)
    np.testing.assert_allclose(gdf["confidence"], fp.confidence)
    np.testing.assert_allclose(gdf["area_in_meters"], t["area_in_meters"])
    assert gdf["full_plus_code"].tolist() == t["full_plus_code"]
    assert gdf["stratum"].tolist() == fp.attrs["stratum"].tolist()
    for a, b in zip(gdf.geometry, to_lonlat(fp.geometries, fp.crs), strict=True):
        assert a.equals_exact(b, 1e-12)


def test_geojson_in_raster_crs(fp: Footprints, tmp_path: Path) -> None:
    gdf = gpd.read_file(write_geojson(fp, tmp_path / "u.geojson", lonlat=False))
    assert gdf.crs.to_epsg() == 32737
    for a, b in zip(gdf.geometry, fp.geometries, strict=True):
        assert a.equals_exact(b, 1e-6)


@pytest.mark.parametrize("lonlat", [True, False])
def test_geoparquet_read_by_geopandas(fp: Footprints, tmp_path: Path, lonlat: bool) -> None:
    path = write_geoparquet(fp, tmp_path / "b.parquet", lonlat=lonlat)
    meta = json.loads(pq.read_schema(path).metadata[b"geo"])
    col = meta["columns"]["geometry"]
    assert meta["version"] == "1.1.0" and meta["primary_column"] == "geometry" and col["encoding"] == "WKB"
    assert col["geometry_types"] == ["Polygon"]
    gdf = gpd.read_parquet(path)
    want_geoms = to_lonlat(fp.geometries, fp.crs) if lonlat else fp.geometries
    assert gdf.crs == pyproj.CRS("EPSG:4326" if lonlat else UTM)
    assert col["bbox"] == pytest.approx(list(shapely.total_bounds(np.asarray(want_geoms, dtype=object))))
    assert list(gdf.columns) == [
        "latitude",
        "longitude",
        "area_in_meters",
        "confidence",
        "full_plus_code",
        "stratum",
        "geometry",
    ]
    for a, b in zip(gdf.geometry, want_geoms, strict=True):
        assert a.equals_exact(b, 0)  # WKB is exact
    t = to_open_buildings_table(fp)
    assert gdf["full_plus_code"].tolist() == t["full_plus_code"]
    np.testing.assert_array_equal(gdf["area_in_meters"], t["area_in_meters"])


def test_empty_footprints_write_everywhere(tmp_path: Path) -> None:
    empty = Footprints.empty(UTM)
    assert to_open_buildings_table(empty)["full_plus_code"] == []
    assert read_open_buildings_csv(write_open_buildings_csv(empty, tmp_path / "e.csv")).geometries == []
    assert len(gpd.read_file(write_geojson(empty, tmp_path / "e.geojson"))) == 0
    assert len(gpd.read_parquet(write_geoparquet(empty, tmp_path / "e.parquet"))) == 0


def test_writers_replace_atomically(fp: Footprints, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("old")
    write_open_buildings_csv(fp, path)
    assert path.read_text().startswith("latitude,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]  # no temporary left behind
    with pytest.raises(TypeError, match="Footprints"):
        write_geojson([box(0, 0, 1, 1)], tmp_path / "y.geojson")  # type: ignore[arg-type]
    assert not (tmp_path / "y.geojson").exists()
