from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from pydantic import Field

from labworks.core import (
    CheckpointError,
    CheckpointManager,
    Config,
    ConfigError,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)


class TinyConfig(Config):
    hidden: int = Field(4, ge=1)
    lr: float = Field(0.05, gt=0)


def _model(cfg: TinyConfig) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(3, cfg.hidden), torch.nn.Tanh(), torch.nn.Dropout(0.2), torch.nn.Linear(cfg.hidden, 1)
    )


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: range) -> None:
    for _ in steps:
        x = torch.randn(16, 3)  # draws from the global RNG, so resume must restore it
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_round_trip_model_optimizer_config(tmp_path: Path) -> None:
    cfg = TinyConfig(hidden=5)
    model = _model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    _train(model, opt, range(3))
    path = save_checkpoint(
        tmp_path / "a.safetensors", model, config=cfg, step=3, optimizer=opt, extra={"epoch": 1}
    )
    ckpt = load_checkpoint(path, config_cls=TinyConfig)
    assert ckpt.config == cfg and ckpt.step == 3 and ckpt.extra == {"epoch": 1}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ckpt.model[k], v, rtol=0, atol=0)
    opt2 = torch.optim.AdamW(_model(cfg).parameters(), lr=1.0)
    opt2.load_state_dict(ckpt.optimizer)
    assert opt2.param_groups[0]["lr"] == cfg.lr
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for pid in s1:
        for key in s1[pid]:
            torch.testing.assert_close(s2[pid][key], s1[pid][key], rtol=0, atol=0)
    # the header is plain JSON any safetensors reader can see
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert '"hidden": 5' in f.metadata()["config"]


def test_tied_weights_are_saved_and_restored(tmp_path: Path) -> None:
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    save_checkpoint(tmp_path / "tied.safetensors", model)
    fresh = torch.nn.ModuleDict(
        {"emb": torch.nn.Embedding(10, 4), "head": torch.nn.Linear(4, 10, bias=False)}
    )
    fresh["head"].weight = fresh["emb"].weight
    fresh.load_state_dict(load_checkpoint(tmp_path / "tied.safetensors").model)
    assert torch.equal(fresh["emb"].weight, emb.weight)


def test_resume_matches_uninterrupted_training(tmp_path: Path) -> None:
    cfg = TinyConfig()
    seed_everything(0)
    straight = _model(cfg)
    opt = torch.optim.Adam(straight.parameters(), lr=cfg.lr)
    _train(straight, opt, range(10))

    seed_everything(0)
    first = _model(cfg)
    opt1 = torch.optim.Adam(first.parameters(), lr=cfg.lr)
    _train(first, opt1, range(5))
    manager = CheckpointManager(tmp_path / "run", keep=2)
    manager.save(5, first, opt1, config=cfg)
    torch.randn(100)  # the "crash": any RNG use after the save must not matter

    seed_everything(999)
    second = _model(cfg)
    opt2 = torch.optim.Adam(second.parameters(), lr=123.0)
    ckpt = manager.resume(second, opt2, config_cls=TinyConfig)
    assert ckpt is not None and ckpt.step == 5
    _train(second, opt2, range(ckpt.step, 10))
    for a, b in zip(straight.parameters(), second.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_manager_keeps_last_n_and_fresh_run(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep=2)
    model = torch.nn.Linear(2, 2)
    assert manager.resume(model) is None
    for step in (1, 20, 300):
        manager.save(step, model)
    assert [p.name for p in manager.checkpoints()] == [
        "step-000000020.safetensors",
        "step-000000300.safetensors",
    ]
    with pytest.raises(ValueError, match="keep"):
        CheckpointManager(tmp_path, keep=0)


def test_injected_failure_mid_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ckpt.safetensors"
    model = torch.nn.Linear(4, 4)
    save_checkpoint(path, model, step=1)
    before = path.read_bytes()

    class Boom(RuntimeError):
        pass

    import labworks.core.checkpoint as ck

    real_save = ck.save_file

    def failing_save(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]) -> None:
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:  # half written, then the disk fills up
            f.truncate(Path(filename).stat().st_size // 2)
        raise Boom("disk full")

    monkeypatch.setattr(ck, "save_file", failing_save)
    with pytest.raises(Boom):
        save_checkpoint(path, torch.nn.Linear(4, 4), step=2)
    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"], "temporary file left behind"


_CHILD = textwrap.dedent(
    """
    import os, sys, torch
    import labworks.core.checkpoint as ck
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "exit-mid-write":
        real_save = ck.save_file
        def dying_save(tensors, filename, metadata):
            real_save(tensors, filename, metadata=metadata)
            with open(filename, "r+b") as f:
                f.truncate(os.path.getsize(filename) // 3)
            os._exit(9)  # the process dies mid-write: no cleanup, no rename
        ck.save_file = dying_save
        ck.save_checkpoint(path, {"w": torch.full((1000,), 2.0)}, step=2)
    else:  # "loop": overwrite the same file forever until killed
        step = 2
        big = {"w": torch.randn(4_000_000)}
        while True:
            ck.save_checkpoint(path, big, step=step)
            step += 1
    """
)


def test_process_death_mid_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.ones(1000)}, step=1)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), "exit-mid-write"], check=False)
    assert proc.returncode == 9
    ckpt = load_checkpoint(path)
    assert ckpt.step == 1 and torch.equal(ckpt.model["w"], torch.ones(1000))
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir()), "the dead writer's partial file"
    manager = CheckpointManager(tmp_path)
    assert manager.checkpoints() == []  # partial files never count as checkpoints


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_during_repeated_writes_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.zeros(4_000_000)}, step=1)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), "loop"])
    try:
        deadline = time.monotonic() + 60
        while load_checkpoint(path).step < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.13)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    ckpt = load_checkpoint(path)  # whatever version it is, it is whole
    assert ckpt.step >= 3 and ckpt.model["w"].shape == (4_000_000,)


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ok.safetensors", torch.nn.Linear(2, 2), config=TinyConfig(), step=7)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(truncated)
    from safetensors.torch import save_file

    save_file({"x": torch.ones(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a labworks checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.safetensors")

    class Stricter(Config):
        hidden: int = Field(4, ge=10)
        lr: float = 0.1

    with pytest.raises(ConfigError, match="field 'hidden'"):
        load_checkpoint(path, config_cls=Stricter)
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "x.safetensors", torch.nn.Linear(2, 2), extra={"bad": object()})
