"""Figures: each writer produces a valid, non-trivial PNG; overlays land where the polygons are."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from rasterio.transform import Affine
from shapely.affinity import affine_transform
from shapely.geometry import box

from labworks.openbuildings.evaluate import average_precision, pr_curve
from labworks.openbuildings.plots import (
    _area_under_envelope,
    plot_ablation,
    plot_overlay,
    plot_pr_curves,
    plot_size_histogram,
    plot_training_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_bytes: int = 3000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temporary file left behind


def red_fraction(path: Path) -> float:
    img = matplotlib.image.imread(path)[..., :3]
    red = img[..., 0] - np.maximum(img[..., 1], img[..., 2]) > 0.3
    return float(red.mean())


def test_pr_curves(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    curves = {}
    for name in ("urban", "rural"):
        s = rng.random(80)
        tp = rng.random(80) < s
        p, r, _ = pr_curve(s, tp, 60)
        curves[name] = (p, r)
        assert _area_under_envelope(p, r) == pytest.approx(
            average_precision(s, tp, 60), abs=1e-12
        )  # legend AP
    out = plot_pr_curves(curves, tmp_path / "figs" / "pr.png", title="PR")
    assert out == tmp_path / "figs" / "pr.png"
    assert_png(out)
    with pytest.raises(ValueError, match="empty"):
        plot_pr_curves({}, tmp_path / "x.png")


def test_overlay_pixel_and_crs_coordinates(tmp_path: Path) -> None:
    image = np.zeros((3, 100, 100), np.uint8)
    poly_px = [box(30, 30, 70, 70)]
    a = plot_overlay(image, tmp_path / "px.png", pred=poly_px, legend=False)
    assert_png(a, 1000)
    assert red_fraction(a) > 0.002
    # the same polygon in CRS coordinates: drawn only if converted with the inverse transform
    transform = Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_000_000.0)
    poly_crs = [affine_transform(poly_px[0], transform.to_shapely())]
    b = plot_overlay(image, tmp_path / "crs.png", pred=poly_crs, transform=transform, legend=False)
    assert red_fraction(b) == pytest.approx(red_fraction(a), rel=0.05)
    c = plot_overlay(image, tmp_path / "crs_no_transform.png", pred=poly_crs, legend=False)
    assert red_fraction(c) == 0.0
    prob = np.tile(np.linspace(0, 1, 100, dtype=np.float32), (100, 1))
    rgb = np.random.default_rng(0).integers(0, 255, (3, 100, 100), dtype=np.uint8)
    d = plot_overlay(rgb, tmp_path / "full.png", pred=poly_px, gt=[box(10, 10, 20, 25)], prob=prob, title="t")
    assert_png(d)
    with pytest.raises(ValueError, match="prob"):
        plot_overlay(image, tmp_path / "bad.png", prob=prob[:50])
    with pytest.raises(TypeError, match="uint8"):
        plot_overlay(image.astype(np.float32), tmp_path / "bad.png")


def test_size_histogram_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    areas = rng.lognormal(4, 1, 500)
    out = plot_size_histogram(
        areas, tmp_path / "sizes.png", reference={"ground truth": rng.lognormal(4.2, 1, 300)}
    )
    assert_png(out)


def test_training_curves_and_ablation(tmp_path: Path) -> None:
    hist = {
        "train_loss": [1.0, 0.7, 0.5, 0.45],
        "val_loss": [1.1, 0.8, 0.7, float("nan")],
        "val_map": [0.1, 0.2, 0.3, 0.33],
    }
    assert_png(plot_training_curves(hist, tmp_path / "curves.png"))
    assert_png(plot_training_curves({"val_map": [0.1, 0.2]}, tmp_path / "metric_only.png"))
    with pytest.raises(ValueError, match="no non-empty"):
        plot_training_curves({"a": []}, tmp_path / "x.png")
    res = {"full": [0.52, 0.55, 0.53], "no mixup": [0.41, 0.44, 0.40], "no self-training": [0.47]}
    assert_png(plot_ablation(res, tmp_path / "ablation.png", metric="mAP", baseline="full"))
    with pytest.raises(ValueError, match="no results"):
        plot_ablation({"a": []}, tmp_path / "x.png")
