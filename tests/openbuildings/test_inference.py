"""Streaming tiled inference: tiling + blending reproduce an untiled prediction, nodata is kept,
instances are seam-safe, and detect() writes every output format."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from labworks.openbuildings.config import DetectConfig
from labworks.openbuildings.inference import blend_window, detect, footprints_from_probability, predict_raster
from labworks.openbuildings.instances import extract_footprints
from labworks.openbuildings.raster import RasterError, normalize

CRS = "EPSG:32636"
TRANSFORM = from_origin(500_000.0, 100_000.0, 0.5, 0.5)


class Pointwise(torch.nn.Module):
    """A per-pixel model: tiling and blending must not change its output at all."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[[[1.5]], [[-0.7]], [[0.4]]]]))
            self.conv.bias.fill_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _write(path: Path, data: np.ndarray, crs: str | None = CRS, nodata: float | None = None) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=data.shape[1],
        width=data.shape[2],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=TRANSFORM,
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return path


def test_blend_window_positive_and_symmetric() -> None:
    for kind in ("hann", "gaussian", "none"):
        w = blend_window(64, kind)
        assert w.shape == (64, 64) and (w > 0).all()
        np.testing.assert_allclose(w, w[::-1, ::-1])
    with pytest.raises(ValueError, match="unknown blend"):
        blend_window(64, "box")


@pytest.mark.parametrize(
    ("tile", "overlap", "blend", "tta"),
    [(128, 32, "hann", "none"), (64, 16, "gaussian", "flips"), (256, 0, "none", "none")],
)
def test_tiled_prediction_equals_untiled(
    tmp_path: Path, tile: int, overlap: int, blend: str, tta: str
) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(3, 300, 470), dtype=np.uint8)  # not a multiple of the tile
    src = _write(tmp_path / "img.tif", image)
    model = Pointwise()
    cfg = DetectConfig(tile=tile, overlap=overlap, blend=blend, batch_size=3, tta=tta)
    out = predict_raster(model, src, tmp_path / "prob.tif", cfg=cfg)
    with rasterio.open(out) as ds:
        prob = ds.read(1)
        assert ds.crs == rasterio.crs.CRS.from_string(CRS) and ds.transform == TRANSFORM
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(normalize(image))[None]))[0, 0].numpy()
    np.testing.assert_allclose(prob, expected, atol=2e-6)


def test_nodata_and_nan_regions_are_marked(tmp_path: Path) -> None:
    image = np.full((3, 100, 90), 120.0, np.float32)
    image[:, 10:30, 20:40] = np.nan
    src = _write(tmp_path / "nan.tif", image)
    out = predict_raster(Pointwise(), src, tmp_path / "prob.tif", cfg=DetectConfig(tile=64, overlap=16))
    with rasterio.open(out) as ds:
        prob = ds.read(1)
        assert ds.nodata == -1
    assert (prob[10:30, 20:40] == -1).all()
    assert ((prob >= 0) & (prob <= 1)).sum() == 100 * 90 - 400


def test_raster_without_crs_is_rejected(tmp_path: Path) -> None:
    src = _write(tmp_path / "nocrs.tif", np.zeros((3, 64, 64), np.uint8), crs=None)
    with pytest.raises(RasterError, match="CRS"):
        predict_raster(Pointwise(), src, tmp_path / "p.tif")
    assert not (tmp_path / "p.tif").exists()


@pytest.mark.parametrize("seed", [None, 0.8])
def test_footprints_are_seam_safe(tmp_path: Path, seed: float | None) -> None:
    """Buildings straddling block edges are found once and whole, exactly as on the full map."""
    rng = np.random.default_rng(3)
    prob = np.zeros((1, 200, 200), np.float32)
    for _ in range(40):
        r, c = rng.integers(0, 190, 2)
        h, w = rng.integers(3, 12, 2)
        prob[0, r : r + h, c : c + w] = rng.uniform(0.6, 0.99)
    src = _write(tmp_path / "prob.tif", prob, nodata=-1.0)
    whole = extract_footprints(
        prob[0], TRANSFORM, CRS, min_area=0.0, simplify_tolerance=0.0, seed_threshold=seed
    )
    blocks = footprints_from_probability(
        src, cfg=DetectConfig(block=64, halo=24, min_area=0.0, simplify_tolerance=0.0, seed_threshold=seed)
    )
    assert len(blocks) == len(whole) > 10
    key = lambda g: (round(g.centroid.x, 6), round(g.centroid.y, 6))  # noqa: E731
    a = sorted(whole.geometries, key=key)
    b = sorted(blocks.geometries, key=key)
    for ga, gb in zip(a, b, strict=True):
        assert ga.symmetric_difference(gb).area == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(np.sort(whole.confidence), np.sort(blocks.confidence), rtol=1e-6)


def test_detect_writes_open_buildings_outputs(tmp_path: Path) -> None:
    image = np.zeros((3, 128, 128), np.uint8)
    image[0, 20:40, 30:60] = 255  # red roof -> high logit under the pointwise model
    image[0, 80:90, 80:100] = 255
    src = _write(tmp_path / "scene.tif", image)
    det = detect(Pointwise(), src, tmp_path / "out", cfg=DetectConfig(tile=64, overlap=16, min_area=1.0))
    assert len(det.footprints) == 2
    with open(det.files["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "latitude",
        "longitude",
        "area_in_meters",
        "confidence",
        "geometry",
        "full_plus_code",
    ]
    areas = sorted(float(r["area_in_meters"]) for r in rows)
    assert areas == pytest.approx([50.0, 150.0], rel=0.02)  # 200 px and 600 px at 0.25 m²
    assert all(len(r["full_plus_code"].replace("+", "")) == 12 for r in rows)
    assert det.files["geojson"].is_file() and det.files["parquet"].is_file()


def test_raster_smaller_than_a_tile_and_the_stride(tmp_path: Path) -> None:
    """A 20 x 13 px raster (smaller than the 32-px U-Net stride): padded, masked, same grid out."""
    from labworks.openbuildings.model import UNet

    image = np.random.default_rng(1).integers(0, 256, size=(3, 20, 13), dtype=np.uint8)
    src = _write(tmp_path / "tiny.tif", image)
    out = predict_raster(
        UNet("small", base_width=4), src, tmp_path / "p.tif", cfg=DetectConfig(tile=64, overlap=0)
    )
    with rasterio.open(out) as ds:
        prob = ds.read(1)
    assert prob.shape == (20, 13) and ((prob >= 0) & (prob <= 1)).all()


class Brightness(torch.nn.Module):
    """p = 0.4 on bright pixels (channel 0 above ``cut``), 0.05 elsewhere: under-confident on purpose."""

    def __init__(self, cut: float) -> None:
        super().__init__()
        self.cut = cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.where(x[:, :1] > self.cut, 0.4, 0.05)
        return torch.log(p / (1 - p))


def test_fit_pixel_threshold_picks_the_threshold_that_finds_the_buildings(tmp_path: Path) -> None:
    import json

    from shapely.geometry import box, mapping

    from labworks.openbuildings.workflow import fit_pixel_threshold

    image = np.zeros((3, 128, 128), np.uint8)
    squares = [(10, 10), (40, 70), (90, 30)]  # (row, col) of 12 x 12 px buildings
    feats = []
    for i, (r, c) in enumerate(squares):
        image[0, r : r + 12, c : c + 12] = 200
        x0, y0 = TRANSFORM @ (c, r + 12)
        x1, y1 = TRANSFORM @ (c + 12, r)
        feats.append({"type": "Feature", "properties": {"id": i}, "geometry": mapping(box(x0, y0, x1, y1))})
    src = _write(tmp_path / "val.tif", image)
    labels = tmp_path / "val.geojson"
    labels.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32636"}},
                "features": feats,
            }
        )
    )
    cut = float(normalize(np.full((3, 1, 1), 100, np.uint8))[0, 0, 0])
    cfg = DetectConfig(tile=64, overlap=16, seed_threshold=None, min_area=1.0)
    best, by_t = fit_pixel_threshold(
        Brightness(cut), [{"image": src, "labels": labels}], tmp_path / "fit", cfg=cfg, candidates=(0.5, 0.3)
    )
    assert by_t[0.5] == 0.0  # nothing above 0.5: no detections
    assert by_t[0.3] == pytest.approx(1.0)  # every square found exactly
    assert best.threshold == 0.3 and best.seed_threshold is None and best.tile == 64
    with pytest.raises(ValueError, match="labelled scenes"):
        fit_pixel_threshold(Brightness(cut), [{"image": src}], tmp_path / "x", cfg=cfg)
    with pytest.raises(ValueError, match="candidates"):
        fit_pixel_threshold(
            Brightness(cut), [{"image": src, "labels": labels}], tmp_path / "x", candidates=(1.2,)
        )


def test_detect_config_stored_with_the_model_then_overrides() -> None:
    from labworks.core import ConfigError
    from labworks.openbuildings.train import LoadedModel

    def loaded(extra: dict) -> LoadedModel:
        return LoadedModel(model=None, config=None, stats=None, thresholds=None, extra=extra)  # type: ignore[arg-type]

    assert loaded({}).detect_config() == DetectConfig()
    fitted = loaded({"detect": {"threshold": 0.3, "seed_threshold": 0.6}})
    assert fitted.detect_config().threshold == 0.3 and fitted.detect_config().seed_threshold == 0.6
    assert fitted.detect_config(["threshold=0.4", "tile=256"]).threshold == 0.4
    with pytest.raises(ConfigError, match="threshold"):
        loaded({"detect": {"threshold": 2.0}}).detect_config()
