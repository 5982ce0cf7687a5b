from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import Field

from labworks.core import Config, ConfigError


class Optim(Config):
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)


class TrainConfig(Config):
    name: str = "run"
    epochs: int = Field(3, ge=1)
    optim: Optim = Optim()
    layers: list[int] = [8, 8]


def test_round_trip_yaml_and_json(tmp_path: Path) -> None:
    cfg = TrainConfig(name="x", epochs=5, optim=Optim(lr=0.1))
    for suffix in (".yaml", ".json"):
        path = cfg.to_file(tmp_path / f"cfg{suffix}")
        assert TrainConfig.from_file(path) == cfg
    assert json.loads((tmp_path / "cfg.json").read_text())["optim"]["lr"] == 0.1


def test_validation_error_names_nested_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 0\noptim:\n  lr: -1\n")
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_file(path)
    msg = str(info.value)
    assert "field 'epochs'" in msg and "(got 0)" in msg
    assert "field 'optim.lr'" in msg and "(got -1)" in msg
    assert str(path) in msg


def test_unknown_key_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(ConfigError, match="field 'epoch'"):
        TrainConfig.from_dict({"epoch": 3})


def test_list_index_in_field_path() -> None:
    with pytest.raises(ConfigError, match=r"field 'layers\[1\]'"):
        TrainConfig.from_dict({"layers": [1, "wide"]})


def test_overrides_cli_style_and_mapping() -> None:
    cfg = TrainConfig().with_overrides(["optim.lr=0.5", "layers=[1, 2, 3]", "name=exp"])
    assert cfg.optim.lr == 0.5 and cfg.layers == [1, 2, 3] and cfg.name == "exp"
    assert TrainConfig().with_overrides({"epochs": 9}).epochs == 9
    with pytest.raises(ConfigError, match="unknown config field 'optim.momentum'"):
        TrainConfig().with_overrides(["optim.momentum=0.9"])
    with pytest.raises(ConfigError, match="field 'epochs'"):
        TrainConfig().with_overrides(["epochs=-2"])
    with pytest.raises(ConfigError, match="key=value"):
        TrainConfig().with_overrides(["epochs"])


def test_frozen_and_bad_files(tmp_path: Path) -> None:
    cfg = TrainConfig()
    with pytest.raises(Exception, match="frozen"):
        cfg.epochs = 4  # type: ignore[misc]
    with pytest.raises(FileNotFoundError):
        TrainConfig.from_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot parse"):
        TrainConfig.from_file(broken)
    with pytest.raises(ValueError, match=".toml"):
        cfg.to_file(tmp_path / "cfg.toml")
