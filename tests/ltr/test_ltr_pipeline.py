from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from labworks.core.cli import main as labworks_cli
from labworks.ltr.config import DataConfig, ModelConfig, RankingConfig, TrainConfig
from labworks.ltr.data import write_libsvm
from labworks.ltr.pipeline import DatasetBuilder, Pipeline, evaluate_scores
from labworks.ltr.synthetic import make_mslr_like

SMALL = DataConfig(synthetic_queries=120, synthetic_max_list_size=40, batch_size=16, max_list_size=40)


def _cfg(tmp: Path, kind: str = "dasalc", epochs: int = 3, **train: object) -> RankingConfig:
    return RankingConfig(
        out_dir=str(tmp),
        data=SMALL,
        model=ModelConfig(
            kind=kind,
            hidden=32,
            n_dnn_layers=2,
            n_attention_layers=1,
            head_size=8,
            noise_std=0.1,
            dropout=0.1,
        ),
        train=TrainConfig(epochs=epochs, patience=10, lr=3e-3, **train),
    )


def test_fit_learns_and_writes_artifacts(tmp_path: Path) -> None:
    pipe = Pipeline(_cfg(tmp_path, epochs=4))
    history = pipe.fit()
    assert len(history.loss) == 4 and history.loss[-1] < history.loss[0]
    test = pipe.test
    assert test is not None
    ours = pipe.evaluate(test)["ndcg@5"]
    rng = np.random.default_rng(0)
    random = evaluate_scores(test, rng.normal(size=test.n_docs), [5])["ndcg@5"]
    assert ours > random + 0.05
    assert (tmp_path / "best.safetensors").is_file()
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "checkpoints").glob("step-*.safetensors"))) == 2  # keep=2
    again = Pipeline.from_checkpoint(tmp_path / "best.safetensors")
    np.testing.assert_allclose(again.predict(test), pipe.predict(test), rtol=1e-5, atol=1e-6)


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    straight = Pipeline(_cfg(tmp_path / "a", epochs=4))
    straight.fit()
    first = Pipeline(_cfg(tmp_path / "b", epochs=2))
    first.fit()
    resumed = Pipeline(_cfg(tmp_path / "b", epochs=4))
    history = resumed.fit(resume=True)
    assert len(history.loss) == 4
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_resume_refuses_checkpoints_of_another_model(tmp_path: Path) -> None:
    from labworks.core import CheckpointError

    Pipeline(_cfg(tmp_path, epochs=1)).fit()
    other = _cfg(tmp_path, epochs=2).with_overrides({"model.hidden": 16})
    with pytest.raises(CheckpointError, match="another model"):
        Pipeline(other).fit()
    assert len(Pipeline(other).fit(resume=False).loss) == 2


def test_packed_layout_trains_like_padded(tmp_path: Path) -> None:
    losses = {}
    for layout in ("packed", "padded"):
        cfg = _cfg(tmp_path / layout, kind="dnn", epochs=1).with_overrides(
            {"data.layout": layout, "model.dropout": 0.0}
        )
        losses[layout] = Pipeline(cfg).fit().loss[0]
    assert losses["packed"] == pytest.approx(losses["padded"], rel=1e-4)
    with pytest.raises(ValueError, match="padded layout"):
        Pipeline(_cfg(tmp_path / "x", kind="dasalc").with_overrides({"data.layout": "packed"})).fit()


def test_dataset_builder_uses_files(tmp_path: Path) -> None:
    ds = make_mslr_like(40, max_list_size=20, seed=0)
    train, valid = ds.split([0.7, 0.3])
    write_libsvm(train, tmp_path / "train.svm")
    write_libsvm(valid, tmp_path / "valid.svm")
    cfg = DataConfig(train=str(tmp_path / "train.svm"), valid=str(tmp_path / "valid.svm"), test_fraction=0.2)
    tr, va, te = DatasetBuilder(cfg).build()
    assert (
        va.n_queries == valid.n_queries and te is not None and tr.n_queries + te.n_queries == train.n_queries
    )


def _run_cli(args: list[str]) -> str:
    result = CliRunner().invoke(labworks_cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_train_evaluate_predict_explain(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "run", kind="gam", epochs=2)
    cfg.to_file(tmp_path / "cfg.yaml")
    out = _run_cli(["ltr", "train", "--config", str(tmp_path / "cfg.yaml"), "--set", "train.lr=0.01"])
    assert "ndcg@5" in out
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 < report["test"]["ndcg@5"] <= 1
    _run_cli(["ltr", "synth", "--queries", "15", "--max-list-size", "20", "--out", str(tmp_path / "d.svm")])
    ckpt = str(tmp_path / "run" / "best.safetensors")
    metrics = json.loads(
        _run_cli(["ltr", "evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "d.svm"), "--k", "3"])
    )
    assert set(metrics) == {"ndcg@3"}
    _run_cli(
        [
            "ltr",
            "predict",
            "--checkpoint",
            ckpt,
            "--data",
            str(tmp_path / "d.svm"),
            "--out",
            str(tmp_path / "s.csv"),
        ]
    )
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "qid,doc,label,score"
    _run_cli(
        [
            "ltr",
            "explain",
            "--checkpoint",
            ckpt,
            "--data",
            str(tmp_path / "d.svm"),
            "--out",
            str(tmp_path / "gam"),
        ]
    )
    assert (tmp_path / "gam" / "shape_functions.png").is_file()


def test_cli_rejects_bad_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(labworks_cli, ["ltr", "train", "--set", "train.lr=-1"])
    assert result.exit_code != 0
    assert "train.lr" in str(result.exception) or "train.lr" in result.output


@pytest.mark.distributed
def test_torchrun_two_process_training(tmp_path: Path) -> None:
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
        "ltr",
        "train",
        "--set",
        f"out_dir={tmp_path}",
        "--set",
        "data.synthetic_queries=60",
        "--set",
        "data.synthetic_max_list_size=20",
        "--set",
        "model.kind=dnn",
        "--set",
        "model.hidden=16",
        "--set",
        "train.epochs=2",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < report["test"]["ndcg@5"] <= 1
    assert len(list((tmp_path / "checkpoints").glob("step-*.safetensors"))) == 2
