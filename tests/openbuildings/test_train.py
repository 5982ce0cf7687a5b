"""Training: loss goes down, model files round-trip, resume is bit-identical, Noisy Student's
unlabelled loss vanishes for a student equal to its teacher, bad configs are named, DDP under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labworks.core import ConfigError
from labworks.openbuildings.augment import AugmentConfig
from labworks.openbuildings.config import ModelConfig, SelfTrainConfig, TrainConfig
from labworks.openbuildings.synthetic import make_scene_set
from labworks.openbuildings.train import (
    _student_loss,
    build_model,
    load_model,
    self_train,
    split_scenes,
    train,
)

TINY = dict(
    model=ModelConfig(base_width=4),
    tile=64,
    batch_size=4,
    epochs=2,
    steps_per_epoch=3,
    lr=3e-3,
)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return make_scene_set(tmp_path_factory.mktemp("scenes"), 3, size=128, seed=5)


def test_train_writes_a_loadable_model(scenes: list[dict], tmp_path: Path) -> None:
    tr, va = split_scenes(scenes, 0.34, 0)
    assert len(tr) == 2 and len(va) == 1
    cfg = TrainConfig(**TINY)
    res = train(cfg, tr, va, tmp_path, resume=False)
    assert res.model_path.is_file() and (tmp_path / "history.json").is_file()
    assert len(res.history["loss"]) == 2 and all(0 <= v <= 1 for v in res.history["val_iou"])
    loaded = load_model(res.model_path)
    assert loaded.config == cfg
    x = torch.randn(1, 3, 64, 64)
    fresh = build_model(cfg.model)
    fresh.load_state_dict(loaded.model.state_dict())
    fresh.eval()
    assert torch.equal(loaded.model(x), fresh(x))


def test_resume_is_bit_identical(scenes: list[dict], tmp_path: Path) -> None:
    tr, va = split_scenes(scenes, 0.34, 0)
    cfg = TrainConfig(**{**TINY, "epochs": 3})
    a = train(cfg, tr, va, tmp_path / "a", resume=False)
    b_dir = tmp_path / "b"
    train(cfg, tr, va, b_dir, resume=False)
    # simulate a crash after epoch 2: drop the last checkpoint and the final files, then rerun
    ckpts = sorted((b_dir / "checkpoints").glob("step-*.safetensors"))
    ckpts[-1].unlink()
    (b_dir / "model.safetensors").unlink()
    b = train(cfg, tr, va, b_dir, resume=True)
    sa, sb = load_model(a.model_path).model.state_dict(), load_model(b.model_path).model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.history == b.history


def test_resume_refuses_another_config(scenes: list[dict], tmp_path: Path) -> None:
    tr, va = split_scenes(scenes, 0.34, 0)
    train(TrainConfig(**{**TINY, "epochs": 1}), tr, va, tmp_path, resume=False)
    with pytest.raises(ValueError, match="different config"):
        train(TrainConfig(**{**TINY, "epochs": 1, "lr": 1e-2}), tr, va, tmp_path, resume=True)


def test_student_equal_to_teacher_has_zero_unlabelled_loss(scenes: list[dict]) -> None:
    from labworks.openbuildings.raster import TileDataset

    cfg = TrainConfig(**TINY)
    teacher = build_model(cfg.model).eval()
    student = build_model(cfg.model).eval()
    student.load_state_dict(teacher.state_dict())
    ds = TileDataset([(scenes[0]["image"], None)], tile=64)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ("image", "valid")}
    none = AugmentConfig(
        flip=False, rot90=False, brightness=0, contrast=0, saturation=0, hue=0, noise_std=0, scale=None
    )
    gen = torch.Generator().manual_seed(0)
    loss = _student_loss(student, teacher, batch, cfg, none, gen, torch.device("cpu"))
    assert float(loss) == pytest.approx(0.0, abs=1e-5)

    class Shifted(torch.nn.Module):  # the student's logits = the teacher's + 1
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return teacher(x) + 1.0

    differ = _student_loss(Shifted(), teacher, batch, cfg, none, gen, torch.device("cpu"))
    p = torch.sigmoid(teacher(batch["image"]))
    q = torch.sigmoid(teacher(batch["image"]) + 1.0)
    kl = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean()
    assert float(differ) == pytest.approx(float(kl), rel=1e-4)


def test_noisy_student_round_runs(scenes: list[dict], tmp_path: Path) -> None:
    tr, va = split_scenes(scenes, 0.34, 0)
    unl = [(Path(scenes[0]["image"]), None)]
    results = self_train(SelfTrainConfig(student=TrainConfig(**{**TINY, "epochs": 1})), tr, unl, va, tmp_path)
    assert len(results) == 2
    assert (tmp_path / "teacher" / "model.safetensors").is_file()
    assert (tmp_path / "student-1" / "model.safetensors").is_file()


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="tile"):
        TrainConfig.from_dict({"tile": 100})
    with pytest.raises(ConfigError, match="model.encoder"):
        TrainConfig.from_dict({"model": {"encoder": "vgg"}})


@pytest.mark.distributed
def test_torchrun_two_process_training(scenes: list[dict], tmp_path: Path) -> None:
    manifest = Path(scenes[0]["image"]).parent / "manifest.json"
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", LABWORKS_NO_PROGRESS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "labworks.core.cli",
        "openbuildings",
        "train",
        "--data",
        str(manifest),
        "--out",
        str(tmp_path),
        "--val-fraction",
        "0.34",
        "--set",
        "model.base_width=4",
        "--set",
        "tile=64",
        "--set",
        "batch_size=2",
        "--set",
        "epochs=2",
        "--set",
        "steps_per_epoch=2",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "model.safetensors").is_file()
    assert len(list((tmp_path / "checkpoints").glob("step-*.safetensors"))) == 2


def test_validate_scores_a_perfect_predictor_with_full_instance_ap(scenes: list[dict]) -> None:
    from labworks.openbuildings.raster import TileDataset
    from labworks.openbuildings.train import validate
    from labworks.openbuildings.weights import segmentation_target

    ds = TileDataset([(scenes[0]["image"], scenes[0]["labels"])], tile=64)
    # an oracle that returns each batch's own target as confident logits, in DataLoader order
    targets = [
        segmentation_target(
            torch.stack([ds[i]["instances"] for i in range(s, min(s + 8, len(ds)))]), open_contacts=True
        )
        for s in range(0, len(ds), 8)
    ]

    class Oracle(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = targets[self.calls]
            self.calls += 1
            return torch.where(t > 0.5, 8.0, -8.0)[:, None]

    m = validate(Oracle(), ds, torch.device("cpu"), instances=True)
    assert m["val_iou"] == pytest.approx(1.0)
    assert m["val_ap50"] == pytest.approx(1.0)  # every building found once, no false positive
    assert 0.8 < m["val_map"] <= 1.0  # the 2-px contact gaps cost IoU only at the strict thresholds


@pytest.mark.parametrize(
    ("select", "expected"), [("val_iou", 0), ("val_map", 1), ("val_bce", 2), ("last", 3)]
)
def test_select_keeps_the_epoch_its_metric_picks(
    scenes: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, select: str, expected: int
) -> None:
    import importlib

    from labworks.core import load_checkpoint

    train_mod = importlib.import_module("labworks.openbuildings.train")  # the package re-exports `train`

    # scripted validation metrics: each criterion prefers a different epoch
    script = iter(
        {"val_iou": iou, "val_f1": 0.0, "val_bce": bce, "val_ap50": 0.0, "val_map": m}
        for iou, m, bce in [(0.5, 0.1, 0.9), (0.1, 0.6, 0.8), (0.2, 0.2, 0.3), (0.3, 0.3, 0.5)]
    )
    calls: list[bool] = []

    def scripted(*args: object, instances: bool = False, **kw: object) -> dict[str, float]:
        calls.append(instances)
        return next(script)

    monkeypatch.setattr(train_mod, "validate", scripted)
    tr, va = split_scenes(scenes, 0.34, 0)
    cfg = TrainConfig(**{**TINY, "epochs": 4, "select": select, "keep_checkpoints": 4})
    res = train(cfg, tr, va, tmp_path, resume=False)
    assert res.best_epoch == expected
    assert calls == [select == "val_map"] * 4  # instance AP only computed when it decides
    assert ("val_map" in res.history) == (select == "val_map")
    kept = load_model(res.model_path).model.state_dict()
    ckpts = sorted((tmp_path / "checkpoints").glob("step-*.safetensors"))
    assert len(ckpts) == 4
    for epoch, path in enumerate(ckpts):
        state = load_checkpoint(path).model
        assert all(torch.equal(kept[k], state[k]) for k in kept) == (epoch == expected)


def test_select_last_refuses_patience() -> None:
    with pytest.raises(ConfigError, match="patience"):
        TrainConfig.from_dict({"select": "last", "patience": 3})


def test_resuming_a_checkpoint_from_before_select_rescores_the_kept_weights(
    scenes: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint written before `select` existed stores the best *pixel IoU* as "best_iou", no
    "select" in its config (so it loads as today's default, val_map) and no instance metrics in its
    history. Resuming must neither fail on the missing history keys nor compare mAP against that IoU:
    the kept weights are re-scored by validation mAP first."""
    import importlib
    import json

    from safetensors.torch import load_file, save_file

    train_mod = importlib.import_module("labworks.openbuildings.train")
    scores = iter([0.1, 0.2, 0.3, 0.4, 0.2, 0.5, 0.3])  # 4 epochs; then re-score, epochs 2 and 3
    calls: list[bool] = []

    def scripted(*args: object, instances: bool = False, **kw: object) -> dict[str, float]:
        calls.append(instances)
        m = next(scores)
        return {"val_iou": 0.0, "val_f1": 0.0, "val_bce": 1.0, "val_ap50": m, "val_map": m}

    monkeypatch.setattr(train_mod, "validate", scripted)
    tr, va = split_scenes(scenes, 0.34, 0)
    cfg = TrainConfig(**{**TINY, "epochs": 4, "keep_checkpoints": 4})
    train(cfg, tr, va, tmp_path, resume=False)
    ckpts = sorted((tmp_path / "checkpoints").glob("step-*.safetensors"))
    for later in ckpts[2:]:  # as if the old run had stopped after epoch 1 ...
        later.unlink()
    # ... with epoch 0's weights kept by a pixel IoU of 0.9, higher than any mAP to come
    save_file(load_file(str(ckpts[0])), str(tmp_path / "best.safetensors"), metadata=_meta(ckpts[0]))
    meta = _meta(ckpts[1])
    config = json.loads(meta["config"])
    del config["select"]
    extra = json.loads(meta["extra"])
    extra["best_iou"], extra["best_epoch"] = 0.9, 0
    del extra["best_score"]
    for k in ("val_ap50", "val_map"):
        del extra["history"][k]
    meta.update(config=json.dumps(config), extra=json.dumps(extra))
    save_file(load_file(str(ckpts[1])), str(ckpts[1]), metadata=meta)

    res = train(cfg, tr, va, tmp_path, resume=True)
    assert len(calls) == 7 and all(calls)
    assert res.best_epoch == 2  # 0.5 beats the kept weights' re-scored 0.2, not the stale 0.9
    assert len(res.history["val_map"]) == 4 and res.history["val_map"][2:] == [0.5, 0.3]


def _meta(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return dict(f.metadata())
