"""The command line end to end: synth -> train -> evaluate (fit thresholds and the pixel threshold) -> detect
with a precision level and the stored pixel threshold."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from labworks.core.cli import main as labworks_cli
from labworks.openbuildings.synthetic import load_manifest
from labworks.openbuildings.train import load_model


def test_cli_end_to_end(tmp_path: Path) -> None:
    run = CliRunner().invoke
    r = run(
        labworks_cli, ["openbuildings", "synth", str(tmp_path / "data"), "--scenes", "3", "--size", "128"]
    )
    assert r.exit_code == 0, r.output
    r = run(
        labworks_cli,
        ["openbuildings", "synth", str(tmp_path / "test"), "--scenes", "2", "--size", "128", "--seed", "99"],
    )
    assert r.exit_code == 0, r.output
    r = run(
        labworks_cli,
        [
            "openbuildings",
            "train",
            "--data",
            str(tmp_path / "data" / "manifest.json"),
            "--out",
            str(tmp_path / "m"),
            "--val-fraction",
            "0.34",
            "--set",
            "model.base_width=4",
            "--set",
            "tile=64",
            "--set",
            "epochs=1",
            "--set",
            "steps_per_epoch=2",
            "--set",
            "batch_size=2",
        ],
    )
    assert r.exit_code == 0, r.output
    model = tmp_path / "m" / "model.safetensors"
    assert (tmp_path / "m" / "training_curves.png").is_file()
    r = run(
        labworks_cli,
        [
            "openbuildings",
            "evaluate",
            str(model),
            "--data",
            str(tmp_path / "test" / "manifest.json"),
            "--out",
            str(tmp_path / "ev"),
            "--set",
            "tile=64",
            "--set",
            "overlap=16",
            "--fit-thresholds",
            "0.5,0.9",
            "--fit-pixel-threshold",
            "0.3,0.5",
        ],
    )
    assert r.exit_code == 0, r.output
    stored = load_model(model)
    assert stored.detect_config().threshold in (0.3, 0.5) and stored.thresholds is not None
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert "ap50" in report and (tmp_path / "ev" / "pr_curves.png").is_file()
    r = run(
        labworks_cli,
        [
            "openbuildings",
            "detect",
            str(model),
            str(load_manifest(tmp_path / "test" / "manifest.json")[0]["image"]),
            "--out",
            str(tmp_path / "det"),
            "--set",
            "tile=64",
            "--set",
            "overlap=16",
            "--precision",
            "0.5",
        ],
    )
    assert r.exit_code == 0, r.output
    csvs = list((tmp_path / "det").glob("*.buildings.csv"))
    assert len(csvs) == 1
    with open(csvs[0], newline="") as f:
        assert next(csv.reader(f)) == [
            "latitude",
            "longitude",
            "area_in_meters",
            "confidence",
            "geometry",
            "full_plus_code",
        ]


def test_cli_bad_override_names_field(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        labworks_cli,
        [
            "openbuildings",
            "train",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--set",
            "tile=100",
        ],
    )
    assert r.exit_code != 0
