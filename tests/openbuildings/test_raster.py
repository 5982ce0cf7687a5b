"""Raster/label I/O: windows, masks, CRS checks, label repair, GeoParquet, normalization, TileDataset."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import pytest
import rasterio
import rasterio.features
import shapely
import torch
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import MultiPolygon, Polygon, mapping

from labworks.openbuildings.raster import (
    LabelError,
    LabelWarning,
    NormStats,
    RasterError,
    TileDataset,
    check_labels_overlap,
    normalize,
    raster_info,
    rasterize_instances,
    read_labels,
    read_window,
    tile_windows,
    write_geotiff,
)
from labworks.openbuildings.synthetic import Scene, SceneConfig, make_scene, write_scene

UTM = "EPSG:32636"


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene(SceneConfig(terrain="urban", seed=2, size=200))


@pytest.fixture(scope="module")
def scene_files(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_scene(scene, tmp_path_factory.mktemp("scene"), "urban")


def _write_geojson(path: Path, polys: list, crs: str | None = None, props: list | None = None) -> Path:
    doc: dict = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": None if g is None else mapping(g),
                "properties": (props or [{}] * len(polys))[i],
            }
            for i, g in enumerate(polys)
        ],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc))
    return path


# ---- tile_windows


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap"),
    [(10, 10, 4, 1), (11, 13, 4, 1), (256, 300, 128, 32), (50, 20, 64, 8), (64, 64, 64, 0), (1, 7, 3, 2)],
)
def test_tile_windows_cover_every_pixel(h: int, w: int, tile: int, overlap: int) -> None:
    wins = tile_windows(h, w, tile, overlap)
    cover = np.zeros((h, w), int)
    for win in wins:
        r, c, wh, ww = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
        assert r >= 0 and c >= 0 and r + wh <= h and c + ww <= w  # never outside
        assert wh == min(tile, h) and ww == min(tile, w)
        cover[r : r + wh, c : c + ww] += 1
    assert cover.min() >= 1
    stride = tile - overlap
    rows = sorted({int(x.row_off) for x in wins})
    cols = sorted({int(x.col_off) for x in wins})
    for offs, n in ((rows, h), (cols, w)):
        if n > tile:
            assert offs[-1] == n - tile  # snapped to the edge
            assert all(b - a == stride for a, b in itertools.pairwise(offs[:-1]))
            assert 0 < offs[-1] - offs[-2] <= stride
        else:
            assert offs == [0]
    assert len(wins) == len(rows) * len(cols)


def test_tile_windows_closed_form() -> None:
    assert [(int(w.row_off), int(w.col_off)) for w in tile_windows(10, 11, 4, 1)] == [
        (r, c) for r in (0, 3, 6) for c in (0, 3, 6, 7)
    ]
    with pytest.raises(ValueError, match="overlap"):
        tile_windows(10, 10, 4, 4)
    with pytest.raises(ValueError, match="overlap"):
        tile_windows(10, 10, 4, -1)
    with pytest.raises(ValueError, match="tile"):
        tile_windows(10, 10, 0, 0)


# ---- raster_info / read_window / write_geotiff


def test_write_geotiff_round_trip(tmp_path: Path) -> None:
    data = np.arange(2 * 40 * 30, dtype=np.uint16).reshape(2, 40, 30)
    t = Affine(0.5, 0, 600000.0, 0, -0.5, 200000.0)
    path = write_geotiff(tmp_path / "x.tif", data, transform=t, crs=UTM, nodata=0)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.crs.to_epsg() == 32636 and src.transform == t and src.nodata == 0
        assert src.block_shapes[0] == (256, 256) and src.compression.name.lower() == "deflate"
    info = raster_info(path)
    assert (info.height, info.width, info.count, info.dtype, info.res) == (40, 30, 2, "uint16", (0.5, 0.5))
    assert info.bounds == (600000.0, 200000.0 - 20.0, 600015.0, 200000.0)
    single = write_geotiff(
        tmp_path / "y.tif", data[0].astype(np.float32), transform=t, crs=UTM, dtype="float64"
    )
    assert raster_info(single).count == 1 and raster_info(single).dtype == "float64"
    with pytest.raises(ValueError, match="shape"):
        write_geotiff(tmp_path / "z.tif", np.zeros((1, 2, 3, 4)), transform=t, crs=UTM)


def test_raster_without_crs_or_rotated_or_unreadable(tmp_path: Path) -> None:
    t = Affine(0.5, 0, 600000.0, 0, -0.5, 200000.0)
    nocrs = write_geotiff(tmp_path / "nocrs.tif", np.zeros((8, 8), np.uint8), transform=t, crs=None)
    with pytest.raises(RasterError, match="has no CRS"):
        raster_info(nocrs)
    assert raster_info(nocrs, require_crs=False).crs is None
    rotated = write_geotiff(
        tmp_path / "rot.tif",
        np.zeros((8, 8), np.uint8),
        transform=Affine(0.5, 0.1, 6e5, 0.1, -0.5, 2e5),
        crs=UTM,
    )
    with pytest.raises(RasterError, match="rotated or sheared"):
        raster_info(rotated)
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(RasterError, match="cannot read raster"):
        raster_info(tmp_path / "junk.tif")
    with pytest.raises(RasterError, match="cannot read raster"):
        raster_info(tmp_path / "missing.tif")


def test_read_window_masks_nodata_and_nan(tmp_path: Path) -> None:
    data = np.full((3, 6, 7), 5.0, np.float32)
    data[:, 1, 1] = -9999.0  # nodata in all bands -> invalid
    data[0, 2, 2] = -9999.0  # nodata in one band only -> still valid
    data[1, 3, 3] = np.nan  # NaN in any band -> invalid, replaced by 0
    data[2, 4, 4] = np.inf
    path = write_geotiff(
        tmp_path / "f.tif", data, transform=Affine(1, 0, 1000, 0, -1, 5000), crs=UTM, nodata=-9999.0
    )
    got, valid = read_window(path, Window(0, 0, 7, 6))
    assert got.dtype == np.float32 and got.shape == (3, 6, 7)
    expected = np.ones((6, 7), bool)
    expected[1, 1] = expected[3, 3] = expected[4, 4] = False
    np.testing.assert_array_equal(valid, expected)
    assert got[1, 3, 3] == 0 and got[2, 4, 4] == 0 and got[0, 2, 2] == -9999.0
    assert np.isfinite(got).all()
    # sub-window, band subset and padding
    got, valid = read_window(path, Window(5, 2, 2, 4), bands=[2], pad_to=8)
    assert got.shape == (1, 8, 8) and valid.shape == (8, 8)
    np.testing.assert_array_equal(valid[:4, :2], np.ones((4, 2), bool))
    assert not valid[4:].any() and not valid[:, 2:].any() and (got[:, 4:] == 0).all()
    with rasterio.open(path) as src:
        with pytest.raises(RasterError, match="not inside"):
            read_window(src, Window(5, 2, 4, 4))
        with pytest.raises(RasterError, match="bands"):
            read_window(src, Window(0, 0, 2, 2), bands=[4])
        with pytest.raises(RasterError, match="pad_to"):
            read_window(src, Window(0, 0, 7, 6), pad_to=4)


def test_read_window_uint8_nodata(tmp_path: Path) -> None:
    data = np.full((3, 4, 4), 9, np.uint8)
    data[:, 0, :] = 0
    data[1, 2, 2] = 0
    path = write_geotiff(
        tmp_path / "u.tif", data, transform=Affine(1, 0, 1000, 0, -1, 5000), crs=UTM, nodata=0
    )
    got, valid = read_window(path, Window(0, 0, 4, 4))
    np.testing.assert_array_equal(got, data)
    assert not valid[0].any() and valid[1:].all()


# ---- normalization


def test_normalize_and_stats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (3, 5, 4)).astype(np.uint8)
    out = normalize(img)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(
        out, (img / 255.0 - mean[:, None, None]) / std[:, None, None], rtol=1e-5, atol=1e-5
    )
    assert out.dtype == np.float32
    st = NormStats(mean=(100.0,), std=(50.0,), scale=1.0)
    np.testing.assert_allclose(normalize(np.full((1, 2, 2), 200, np.uint16), st), 2.0)
    with pytest.raises(ValueError, match="channels"):
        normalize(img[:2])
    with pytest.raises(ValueError, match="mean and std"):
        NormStats(mean=(0.1, 0.2), std=(0.1,))
    with pytest.raises(ValueError, match="std must be > 0"):
        NormStats(mean=(0.1,), std=(0.0,))

    # dataset statistics: exact with a full sample, close with a strided one, nodata excluded
    t = Affine(1, 0, 1000, 0, -1, 5000)
    a = rng.integers(1, 256, (3, 300, 200)).astype(np.uint8)
    b = rng.integers(1, 128, (3, 100, 150)).astype(np.uint8)
    b[:, :10] = 0  # nodata rows
    pa_, pb = (
        write_geotiff(tmp_path / f"{n}.tif", x, transform=t, crs=UTM, nodata=0)
        for n, x in (("a", a), ("b", b))
    )
    pixels = np.concatenate([a.reshape(3, -1), b[:, 10:].reshape(3, -1)], axis=1) / 255.0
    full = NormStats.from_rasters([pa_, pb], max_pixels=10**7, strip=64)
    np.testing.assert_allclose(full.mean, pixels.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(full.std, pixels.std(axis=1), rtol=1e-9)
    sub = NormStats.from_rasters([pa_, pb], max_pixels=5000)
    np.testing.assert_allclose(sub.mean, pixels.mean(axis=1), atol=0.03)
    np.testing.assert_allclose(sub.std, pixels.std(axis=1), atol=0.03)
    assert NormStats.model_validate(full.to_dict()) == full  # serialisable in configs


# ---- labels


def test_geojson_labels_round_trip(scene: Scene, scene_files: tuple[Path, Path]) -> None:
    _, gj = scene_files
    polys, props, crs = read_labels(gj)
    assert crs == UTM
    assert all(
        shapely.equals_exact(p, b["geometry"], 0.0) for p, b in zip(polys, scene.buildings, strict=True)
    )
    assert [p["kind"] for p in props] == [b["kind"] for b in scene.buildings]
    # reading "into" the same CRS changes nothing
    same, _, crs2 = read_labels(gj, crs=rasterio.crs.CRS.from_epsg(32636))
    assert crs2 == UTM and all(shapely.equals_exact(p, q, 0.0) for p, q in zip(same, polys, strict=True))
    info = raster_info(scene_files[0])
    np.testing.assert_array_equal(
        rasterize_instances(polys, info.transform, (info.height, info.width)), scene.instances
    )


def test_rasterize_instances_closed_form() -> None:
    t = Affine(2.0, 0, 100.0, 0, -2.0, 50.0)  # 2 m pixels
    # square x 100..106, y 44..50 covers pixel centres of rows 0-2, cols 0-2; the second square shares its wall
    a = shapely.box(100.0, 44.0, 106.0, 50.0)
    b = shapely.box(106.0, 44.0, 110.0, 50.0)
    out = rasterize_instances([a, None, b], t, (4, 6))
    expected = np.zeros((4, 6), np.int32)
    expected[:3, :3] = 1
    expected[:3, 3:5] = 3
    np.testing.assert_array_equal(out, expected)
    assert rasterize_instances([], t, (2, 2)).sum() == 0


def test_labels_in_lonlat_reproject_to_raster_grid(
    scene: Scene, scene_files: tuple[Path, Path], tmp_path: Path
) -> None:
    tr = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lonlat = [
        shapely.transform(b["geometry"], lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        for b in scene.buildings
    ]
    assert 32.9 < lonlat[0].centroid.x < 33.1  # UTM 36N central meridian is 33°E
    path = _write_geojson(tmp_path / "ll.geojson", lonlat)  # RFC 7946: no crs member
    info = raster_info(scene_files[0])
    polys, _, crs = read_labels(path, crs=info.crs)
    assert crs == UTM
    check_labels_overlap(polys, info)
    inst = rasterize_instances(polys, info.transform, (info.height, info.width))
    building = (inst > 0) | (scene.instances > 0)
    agree = (inst == scene.instances)[building].mean()
    assert agree > 0.995
    assert set(np.unique(inst)) == set(np.unique(scene.instances))


def test_labels_far_away_raise_crs_mismatch(scene_files: tuple[Path, Path], tmp_path: Path) -> None:
    path = _write_geojson(tmp_path / "far.geojson", [shapely.box(-100.0, 40.0, -99.999, 40.001)])
    info = raster_info(scene_files[0])
    polys, _, crs = read_labels(path, crs=info.crs)
    assert crs == UTM  # reprojected, but nowhere near the raster
    with pytest.raises(RasterError, match="EPSG:32636") as err:
        check_labels_overlap(polys, info, labels_crs="EPSG:4326")
    assert "EPSG:4326" in str(err.value) and "none of the 1 labels" in str(err.value)
    check_labels_overlap([], info)  # no labels: nothing to check
    # metre coordinates in a GeoJSON without crs member are caught
    utm = _write_geojson(tmp_path / "utm.geojson", [shapely.box(500000.0, 99900.0, 500010.0, 99910.0)])
    with pytest.raises(LabelError, match="not lon/lat"):
        read_labels(utm, crs=UTM)
    # ... unless the caller names their CRS
    polys, _, _ = read_labels(utm, crs=UTM, source_crs=UTM)
    assert polys[0].equals(shapely.box(500000.0, 99900.0, 500010.0, 99910.0))


def test_empty_invalid_and_non_polygon_labels(tmp_path: Path) -> None:
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    assert not bowtie.is_valid
    ok = shapely.box(5, 5, 7, 8)
    multi = MultiPolygon([shapely.box(10, 10, 11, 11), shapely.box(12, 10, 13, 11)])
    path = _write_geojson(
        tmp_path / "messy.geojson",
        [ok, bowtie, None, Polygon(), shapely.Point(1, 1), shapely.LineString([(0, 0), (1, 1)]), multi],
        crs=UTM,
        props=[{"n": i} for i in range(7)],
    )
    with pytest.warns(LabelWarning, match="dropped 2 empty and 2 non-polygon geometries, repaired 1 invalid"):
        polys, props, _ = read_labels(path)
    assert [p["n"] for p in props] == [0, 1, 6]
    assert polys[0].equals(ok)
    fixed = polys[1]
    assert fixed.is_valid and isinstance(fixed, MultiPolygon) and len(fixed.geoms) == 2
    assert fixed.area == pytest.approx(2.0)  # two triangles of area 1
    assert isinstance(polys[2], MultiPolygon) and polys[2].equals(multi)  # one building, not split
    # clean files do not warn
    clean = _write_geojson(tmp_path / "clean.geojson", [ok], crs=UTM)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_labels(clean)
    shp = tmp_path / "labels.shp"
    shp.write_bytes(b"x")
    with pytest.raises(LabelError, match="unsupported label format"):
        read_labels(shp)
    with pytest.raises(FileNotFoundError, match="label file not found"):
        read_labels(tmp_path / "none.geojson")


def _write_geoparquet(path: Path, polys: list, ids: list[int], crs: dict | str | None = "absent") -> Path:
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "geometry": pa.array([None if g is None else shapely.to_wkb(g) for g in polys], pa.binary()),
        }
    )
    col: dict = {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"]}
    if crs != "absent":
        col["crs"] = crs
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": col}}
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    pq.write_table(table, path)
    return path


def test_geoparquet_labels(scene: Scene, tmp_path: Path) -> None:
    polys = scene.polygons
    ids = [b["id"] for b in scene.buildings]
    path = _write_geoparquet(
        tmp_path / "l.parquet", polys, ids, crs=pyproj.CRS.from_epsg(32636).to_json_dict()
    )
    got, props, crs = read_labels(path)
    assert crs == UTM
    assert all(shapely.equals_exact(a, b, 0.0) for a, b in zip(got, polys, strict=True))
    assert [p["id"] for p in props] == ids
    # no "crs" key -> OGC:CRS84 (lon/lat) per the GeoParquet spec
    tr = pyproj.Transformer.from_crs(UTM, "OGC:CRS84", always_xy=True)
    ll = [
        shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))) for g in polys[:5]
    ]
    p84 = _write_geoparquet(tmp_path / "ll.parquet", [*ll, None], [*ids[:5], 0])
    with pytest.warns(LabelWarning, match="dropped 1 empty"):
        back, _, crs84 = read_labels(p84, crs=UTM)
    assert crs84 == UTM
    for a, b in zip(back, polys[:5], strict=True):
        assert shapely.hausdorff_distance(a, b) < 1e-6
    with pytest.warns(LabelWarning):
        assert read_labels(p84, crs=None)[2] == "OGC:CRS84"
    # not GeoParquet at all
    pq.write_table(pa.table({"a": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(LabelError, match="not a GeoParquet"):
        read_labels(tmp_path / "plain.parquet")


def test_geoparquet_written_by_geopandas(scene: Scene, tmp_path: Path) -> None:
    gpd = pytest.importorskip("geopandas")  # an independent GeoParquet writer
    df = gpd.GeoDataFrame({"id": [b["id"] for b in scene.buildings]}, geometry=scene.polygons, crs=UTM)
    df.to_parquet(tmp_path / "g.parquet")
    got, props, crs = read_labels(tmp_path / "g.parquet")
    assert crs == UTM and [p["id"] for p in props] == list(df["id"])
    assert all(shapely.equals_exact(a, b, 0.0) for a, b in zip(got, scene.polygons, strict=True))


# ---- TileDataset


def test_tile_dataset_matches_scene(scene: Scene, scene_files: tuple[Path, Path], tmp_path: Path) -> None:
    tif, gj = scene_files
    ds = TileDataset([(tif, gj), (tif, None)], tile=96, overlap=16)
    wins = tile_windows(200, 200, 96, 16)
    assert len(ds) == 2 * len(wins)
    for i in range(len(ds)):
        item = ds[i]
        r, c = item["window"]
        assert item["image"].shape == (3, 96, 96) and item["image"].dtype == torch.float32
        assert item["instances"].shape == (96, 96) and item["instances"].dtype == torch.int64
        assert item["valid"].shape == (96, 96) and item["valid"].all()
        expected_img = normalize(scene.image[:, r : r + 96, c : c + 96])
        np.testing.assert_allclose(item["image"].numpy(), expected_img, rtol=1e-6, atol=1e-6)
        if item["scene"] == 0:
            assert item["labelled"] is True
            np.testing.assert_array_equal(item["instances"].numpy(), scene.instances[r : r + 96, c : c + 96])
        else:
            assert item["labelled"] is False and item["instances"].sum() == 0
    # cached items are identical and independent copies
    a, b = ds[0], ds[0]
    assert torch.equal(a["image"], b["image"]) and a["image"].data_ptr() != b["image"].data_ptr()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 96, 96) and batch["labelled"].dtype == torch.bool
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_tile_dataset_pads_small_scenes_and_checks_bands(tmp_path: Path) -> None:
    sc = make_scene(SceneConfig(terrain="savannah", seed=5, size=80))
    tif, gj = write_scene(sc, tmp_path, "small")
    ds = TileDataset([(tif, gj)], tile=128, cache=False)
    assert len(ds) == 1
    item = ds[0]
    assert item["image"].shape == (3, 128, 128)
    assert item["valid"][:80, :80].all() and not item["valid"][80:].any() and not item["valid"][:, 80:].any()
    assert (item["image"][:, 80:] == 0).all()
    np.testing.assert_array_equal(item["instances"][:80, :80].numpy(), sc.instances)
    assert item["instances"][80:].sum() == 0
    with pytest.raises(RasterError, match="channels"):
        TileDataset([(tif, gj)], tile=64, stats=NormStats(mean=(0.5,), std=(0.2,)))
    one = TileDataset([(tif, gj)], tile=64, stats=NormStats(mean=(0.5,), std=(0.2,)), bands=[2])
    assert one[0]["image"].shape == (1, 64, 64)


def test_tile_dataset_rejects_labels_elsewhere(scene_files: tuple[Path, Path], tmp_path: Path) -> None:
    far = _write_geojson(tmp_path / "far.geojson", [shapely.box(-100.0, 40.0, -99.999, 40.001)])
    with pytest.raises(RasterError, match="Check the labels' CRS"):
        TileDataset([(scene_files[0], far)], tile=64)
