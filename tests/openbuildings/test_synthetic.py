"""Synthetic scenes: determinism, exact labels, non-overlap, touching blocks, confounders, files."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
import rasterio.transform
import shapely
from pydantic import ValidationError

from labworks.core import ConfigError
from labworks.openbuildings.raster import read_labels
from labworks.openbuildings.synthetic import (
    BUILDING_KINDS,
    CONFOUNDER_KINDS,
    TERRAINS,
    Scene,
    SceneConfig,
    load_manifest,
    make_scene,
    make_scene_set,
    write_scene,
)


@pytest.fixture(scope="module")
def scenes() -> dict[str, Scene]:
    """One default-size (512²) scene per terrain, shared by the module's tests."""
    return {t: make_scene(SceneConfig(terrain=t, seed=7)) for t in TERRAINS}


def _reference_instances(scene: Scene) -> np.ndarray:
    """Independent rasterization with rasterio: id = the building's own ``id`` field."""
    shape = scene.instances.shape
    pairs = [(b["geometry"], b["id"]) for b in scene.buildings]
    return rasterio.features.rasterize(
        pairs, out_shape=shape, transform=scene.transform, fill=0, dtype="int32"
    )


def test_deterministic_and_seed_dependent() -> None:
    cfg = SceneConfig(terrain="urban", seed=3, size=256)
    a, b = make_scene(cfg), make_scene(cfg)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.instances.tobytes() == b.instances.tobytes()
    assert [shapely.to_wkb(x["geometry"]) for x in a.buildings] == [
        shapely.to_wkb(x["geometry"]) for x in b.buildings
    ]
    c = make_scene(cfg.model_copy(update={"seed": 4}))
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("terrain", TERRAINS)
def test_types_and_instances_equal_rasterized_buildings(scenes: dict[str, Scene], terrain: str) -> None:
    sc = scenes[terrain]
    assert sc.image.dtype == np.uint8 and sc.image.shape == (3, 512, 512)
    assert sc.instances.dtype == np.int32 and sc.instances.shape == (512, 512)
    assert sc.crs == "EPSG:32636" and sc.terrain == terrain
    assert (sc.transform.a, sc.transform.e, sc.transform.c, sc.transform.f) == (0.5, -0.5, 500000.0, 100000.0)
    assert [b["id"] for b in sc.buildings] == list(range(1, len(sc.buildings) + 1))
    assert all(b["kind"] in BUILDING_KINDS and b["geometry"].is_valid for b in sc.buildings)
    np.testing.assert_array_equal(sc.instances, _reference_instances(sc))
    # every building is visible in the label raster, and lies inside the scene
    assert set(np.unique(sc.instances)) == {0, *range(1, len(sc.buildings) + 1)}
    box = shapely.box(500000.0, 100000.0 - 256.0, 500256.0, 100000.0)
    assert all(box.contains(b["geometry"]) for b in sc.buildings)


@pytest.mark.parametrize("terrain", TERRAINS)
def test_buildings_do_not_overlap(scenes: dict[str, Scene], terrain: str) -> None:
    polys = np.asarray(scenes[terrain].polygons, dtype=object)
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    pairs = a < b
    overlap = shapely.area(shapely.intersection(polys[a[pairs]], polys[b[pairs]]))
    assert overlap.size == 0 or overlap.max() < 1e-9


def test_building_counts_per_terrain(scenes: dict[str, Scene]) -> None:
    counts = {t: len(s.buildings) for t, s in scenes.items()}
    assert all(20 <= n <= 150 for n in counts.values()), counts
    assert counts["urban"] == max(counts.values()), counts
    dense = [
        len(make_scene(SceneConfig(terrain="savannah", seed=1, size=256, density=d)).buildings)
        for d in (0, 0.5, 2)
    ]
    assert dense[0] == 0 and dense[1] < dense[2]


def test_urban_blocks_touch_with_distinct_ids(scenes: dict[str, Scene]) -> None:
    sc = scenes["urban"]
    polys = np.asarray(sc.polygons, dtype=object)
    a, b = shapely.STRtree(polys).query(polys, predicate="touches")
    pairs = a < b
    assert pairs.sum() >= 1
    # they share a wall (a segment, not just a corner)
    shared = shapely.length(shapely.intersection(polys[a[pairs]], polys[b[pairs]]))
    assert shared.max() > 2.0  # metres
    assert {sc.buildings[i]["kind"] for i in a[pairs]} >= {"block"}
    # in the label raster, 4-neighbours of different non-zero ids exist
    inst = sc.instances
    h = (inst[:, :-1] > 0) & (inst[:, 1:] > 0) & (inst[:, :-1] != inst[:, 1:])
    v = (inst[:-1] > 0) & (inst[1:] > 0) & (inst[:-1] != inst[1:])
    assert h.sum() + v.sum() > 0
    # only touching pairs are adjacent in the raster: separate buildings stay separated
    adj = set(zip(inst[:, :-1][h].tolist(), inst[:, 1:][h].tolist(), strict=True)) | set(
        zip(inst[:-1][v].tolist(), inst[1:][v].tolist(), strict=True)
    )
    touching = {(int(i) + 1, int(j) + 1) for i, j in zip(a, b, strict=True) if i != j}
    assert {p for p in adj} <= touching


def test_kinds_sizes_and_confounders(scenes: dict[str, Scene]) -> None:
    kinds = Counter(b["kind"] for s in scenes.values() for b in s.buildings)
    extra = make_scene(SceneConfig(terrain="urban", seed=11))  # industrial sheds are rare
    kinds.update(b["kind"] for b in extra.buildings)
    for seed in range(1, 6):  # tent camps appear in most desert scenes
        kinds.update(
            b["kind"] for b in make_scene(SceneConfig(terrain="desert", seed=seed, size=384)).buildings
        )
    assert set(kinds) == set(BUILDING_KINDS), kinds
    huts = [b["geometry"] for s in scenes.values() for b in s.buildings if b["kind"] == "hut"]
    radii = np.sqrt(shapely.area(np.asarray(huts, dtype=object)) / np.pi)
    assert radii.min() >= 1.9 and radii.max() <= 4.0  # 2-4 m (16-gon area is a little under the circle's)
    conf = Counter(c["kind"] for s in scenes.values() for c in s.confounders)
    assert {"rock", "wall", "tree", "shadow"} <= set(conf) and set(conf) <= set(CONFOUNDER_KINDS)


@pytest.mark.parametrize("terrain", TERRAINS)
def test_confounders_are_not_labelled(scenes: dict[str, Scene], terrain: str) -> None:
    sc = scenes[terrain]
    polys = np.asarray(sc.polygons, dtype=object)
    for c in sc.confounders:
        if c["kind"] in {"tree", "shadow"}:
            continue  # trees may occlude buildings; the label keeps the full footprint
        assert not np.any(shapely.intersects(polys, c["geometry"])) if len(polys) else True, c["kind"]
    # a container's footprint is never labelled as building
    containers = [c["geometry"] for c in sc.confounders if c["kind"] == "container"]
    for g in containers:
        area = g.area
        assert 14.0 < area < 31.0  # 2.44 m x 6.06 m or 12.19 m
        row, col = rasterio.transform.rowcol(sc.transform, g.centroid.x, g.centroid.y)
        assert sc.instances[row, col] == 0


def test_trees_occlude_some_buildings_but_labels_keep_footprint() -> None:
    sc = make_scene(SceneConfig(terrain="forest", seed=2))
    polys = np.asarray(sc.polygons, dtype=object)
    trees = [c["geometry"] for c in sc.confounders if c["kind"] == "tree"]
    hits = [bool(np.any(shapely.intersects(polys, t) & ~shapely.touches(polys, t))) for t in trees]
    assert any(hits)
    # labels cover full polygons regardless of the tree on top
    np.testing.assert_array_equal(sc.instances, _reference_instances(sc))


def test_images_look_like_their_terrain(scenes: dict[str, Scene]) -> None:
    mean = {t: s.image.reshape(3, -1).mean(axis=1) for t, s in scenes.items()}
    assert mean["forest"][1] > mean["forest"][0]  # green canopy
    assert mean["desert"].mean() > mean["savannah"].mean()  # bright sand
    for s in scenes.values():
        bg = s.image[:, s.instances == 0].astype(float)
        assert bg.std(axis=1).min() > 5  # textured, not flat
        roof = s.image[:, s.instances > 0].astype(float)
        assert roof.mean(axis=1).min() > 20 and roof.std(axis=1).max() > 5


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="size"):
        SceneConfig(size=32)
    with pytest.raises(ValidationError, match="not a projected CRS"):
        SceneConfig(epsg=4326)
    with pytest.raises(ConfigError, match="terrain"):
        SceneConfig.from_dict({"terrain": "moon"})
    with pytest.raises(ConfigError, match="Extra inputs"):
        SceneConfig.from_dict({"sizes": 64})


def test_write_scene_geotiff_and_geojson(tmp_path: Path) -> None:
    sc = make_scene(SceneConfig(terrain="urban", seed=1, size=320, origin=(400000.0, 250000.0)))
    tif, gj = write_scene(sc, tmp_path, "s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.geojson", "s.tif"]  # no temp files left
    with rasterio.open(tif) as src:
        np.testing.assert_array_equal(src.read(), sc.image)
        assert src.crs.to_epsg() == 32636
        assert src.transform == sc.transform
        assert src.res == (0.5, 0.5)
        assert src.dtypes == ("uint8",) * 3
        assert src.block_shapes == [(256, 256)] * 3
        assert src.compression.name.lower() == "deflate"
    doc = json.loads(gj.read_text())
    assert doc["type"] == "FeatureCollection"
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32636"
    assert [f["properties"] for f in doc["features"]] == [
        {"id": b["id"], "kind": b["kind"], "terrain": "urban"} for b in sc.buildings
    ]
    polys, props, crs = read_labels(gj)
    assert crs == "EPSG:32636"
    assert len(polys) == len(sc.buildings)
    assert all(shapely.equals_exact(p, b["geometry"], 0.0) for p, b in zip(polys, sc.buildings, strict=True))
    assert [p["id"] for p in props] == [b["id"] for b in sc.buildings]


def test_make_scene_set_and_manifest(tmp_path: Path) -> None:
    rows = make_scene_set(tmp_path / "set", 5, size=96, seed=4, terrains=("desert", "urban"))
    assert [r["terrain"] for r in rows] == ["desert", "urban", "desert", "urban", "desert"]
    assert len({r["seed"] for r in rows}) == 5
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert [set(m) for m in manifest] == [{"name", "image", "labels", "terrain", "seed"}] * 5
    assert all(not Path(m["image"]).is_absolute() for m in manifest)
    loaded = load_manifest(tmp_path / "set" / "manifest.json")
    assert [r["image"] for r in loaded] == [r["image"] for r in rows]
    assert all(Path(r["image"]).is_absolute() and Path(r["labels"]).is_file() for r in loaded)
    origins = set()
    for r in loaded:
        with rasterio.open(r["image"]) as src:
            origins.add((src.transform.c, src.transform.f))
            # the stored seed + terrain regenerate the same pixels
            again = make_scene(SceneConfig(size=96, terrain=r["terrain"], seed=r["seed"]))
            np.testing.assert_array_equal(src.read(), again.image)
    assert len(origins) == 5
    # another seed gives other scenes
    other = make_scene_set(tmp_path / "other", 1, size=96, seed=5, terrains=("desert",))
    assert other[0]["seed"] != rows[0]["seed"]


def test_load_manifest_errors(tmp_path: Path) -> None:
    make_scene_set(tmp_path, 2, size=64, seed=0)
    (tmp_path / "scene_0001_desert.tif").unlink()
    with pytest.raises(FileNotFoundError, match="scene_0001_desert.tif"):
        load_manifest(tmp_path / "manifest.json")
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        load_manifest(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"image": "x"}')
    with pytest.raises(ValueError, match="JSON list"):
        load_manifest(tmp_path / "bad.json")
    # unlabelled manifests (labels null) are fine
    (tmp_path / "unl.json").write_text(json.dumps([{"image": "scene_0000_savannah.tif", "labels": None}]))
    assert load_manifest(tmp_path / "unl.json")[0]["labels"] is None


def test_scene_512_generates_under_one_second() -> None:
    make_scene(SceneConfig(terrain="urban", seed=0, size=128))  # warm imports
    for t in TERRAINS:  # best of two runs per terrain (the CI cores are shared)
        assert min(_timed(SceneConfig(terrain=t, seed=9)) for _ in range(2)) < 1.0, t


@pytest.mark.slow
def test_scene_1024_generates_under_three_seconds() -> None:
    assert max(_timed(SceneConfig(terrain=t, seed=9, size=1024)) for t in TERRAINS) < 3.0


def _timed(cfg: SceneConfig) -> float:
    t0 = time.perf_counter()
    make_scene(cfg)
    return time.perf_counter() - t0
