"""Checkpoints: tensors in safetensors, the config and training state as JSON in its header.

One file per checkpoint, written atomically, so a crash mid-write leaves the previous file intact.
Nothing is unpickled on load: a checkpoint from an untrusted source can only hold tensors and JSON.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from labworks.core.config import Config
from labworks.core.io import atomic_path

__all__ = ["Checkpoint", "CheckpointError", "CheckpointManager", "load_checkpoint", "save_checkpoint"]

FORMAT = "labworks-checkpoint/1"
C = TypeVar("C", bound=Config)


class CheckpointError(RuntimeError):
    """A checkpoint could not be read, or does not match what the caller expects."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        model: the model's ``state_dict`` (tensors on ``map_location``).
        config: the validated config when a class was given, else the stored dict (or ``None``).
        step: training step at which it was written.
        optimizer: an optimizer ``state_dict`` ready for ``optimizer.load_state_dict``, or ``None``.
        extra: any JSON the writer added (scheduler state, metrics, epoch...).
        rng: generator states as captured by :func:`labworks.core.seeding.rng_state`, or ``None``.
    """

    path: Path
    model: dict[str, torch.Tensor]
    config: Any
    step: int = 0
    optimizer: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] | None = None


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def _prepare(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, and no two entries sharing storage (safetensors forbids it; ties reload fine)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"checkpoint entry {name!r} must be a tensor, got {type(t).__name__}")
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def _split_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    meta_state: dict[str, dict[str, Any]] = {}
    for pid, pstate in state["state"].items():
        meta_state[str(pid)] = {}
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value
                meta_state[str(pid)][key] = {"__tensor__": f"optimizer.{pid}.{key}"}
            else:
                meta_state[str(pid)][key] = value
    return tensors, {"state": meta_state, "param_groups": state["param_groups"]}


def _join_optimizer(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for pid, pstate in meta["state"].items():
        state[int(pid)] = {
            k: tensors[v["__tensor__"]] if isinstance(v, dict) and "__tensor__" in v else v
            for k, v in pstate.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


def _split_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    py = random.getstate()
    np_state = cast("tuple[Any, ...]", np.random.get_state(legacy=True))
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
    }
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    meta = {"python": [py[0], list(py[1]), py[2]], "numpy": [np_state[0], *np_state[2:]]}
    return tensors, meta


def _join_rng(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    py = meta["python"]
    npm = meta["numpy"]
    rng: dict[str, Any] = {
        "python": (py[0], tuple(py[1]), py[2]),
        "numpy": (npm[0], tensors["rng.numpy"].numpy().astype(np.uint32), *npm[1:]),
        "torch": tensors["rng.torch"],
    }
    cuda = [
        tensors[k]
        for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))
    ]
    if cuda:
        rng["cuda"] = cuda
    return rng


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module | Mapping[str, torch.Tensor],
    *,
    config: Config | Mapping[str, Any] | None = None,
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    extra: Mapping[str, Any] | None = None,
    save_rng: bool = False,
) -> Path:
    """Write one checkpoint file atomically.

    Args:
        path: destination, conventionally ``*.safetensors``.
        model: a module (DDP wrappers are unwrapped) or a ``state_dict``.
        config: the run's config, stored as JSON so the checkpoint is self-describing.
        step: the training step (used to order checkpoints when resuming).
        optimizer: its state is stored so training resumes exactly.
        extra: JSON-serialisable state (scheduler ``state_dict``, epoch, best metric...).
        save_rng: also store Python/NumPy/torch generator states.
    """
    state = _unwrap(model).state_dict() if isinstance(model, torch.nn.Module) else dict(model)
    tensors = {f"model.{k}": v for k, v in state.items()}
    meta: dict[str, str] = {"format": FORMAT, "step": str(int(step))}
    if config is not None:
        if isinstance(config, Config):
            meta["config"] = config.to_json()
            meta["config_class"] = f"{type(config).__module__}:{type(config).__qualname__}"
        else:
            meta["config"] = json.dumps(dict(config), sort_keys=True)
    if optimizer is not None:
        opt_tensors, opt_meta = _split_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
        meta["optimizer"] = json.dumps(opt_meta)
    if save_rng:
        rng_tensors, rng_meta = _split_rng()
        tensors.update(rng_tensors)
        meta["rng"] = json.dumps(rng_meta)
    try:
        meta["extra"] = json.dumps(dict(extra or {}))
    except TypeError as err:
        raise TypeError(f"checkpoint 'extra' must be JSON-serialisable: {err}") from None
    with atomic_path(path) as tmp:
        save_file(_prepare(tensors), str(tmp), metadata=meta)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    config_cls: type[C] | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, not a labworks checkpoint, or its config does not
            validate against ``config_cls``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        with safe_open(str(p), "pt") as f:
            meta: dict[str, str] = f.metadata() or {}
        if meta.get("format") == FORMAT:
            tensors = load_file(str(p), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{p} is not a readable safetensors checkpoint: {err}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{p} is not a labworks checkpoint (format={meta.get('format')!r}, expected {FORMAT!r})"
        )
    config: Any = json.loads(meta["config"]) if "config" in meta else None
    if config_cls is not None:
        if config is None:
            raise CheckpointError(f"{p} carries no config, but a {config_cls.__name__} was expected")
        config = config_cls.from_dict(config, source=f"checkpoint {p}")
    return Checkpoint(
        path=p,
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        config=config,
        step=int(meta.get("step", 0)),
        optimizer=_join_optimizer(json.loads(meta["optimizer"]), tensors) if "optimizer" in meta else None,
        extra=json.loads(meta.get("extra", "{}")),
        rng=_join_rng(json.loads(meta["rng"]), tensors) if "rng" in meta else None,
    )


class CheckpointManager:
    """Numbered checkpoints in one folder, the newest ``keep`` kept; resume from the latest.

    Only the main process writes (under ``torchrun`` the others wait at a barrier), so a DDP
    trainer calls :meth:`save` on every rank unchanged.

    Example::

        ckpts = CheckpointManager("runs/exp1", keep=3)
        start = ckpts.resume(model, optimizer, config_cls=TrainConfig)  # 0 on a fresh run
        for step in range(start, total):
            ...
            if step % 100 == 0:
                ckpts.save(step, model, optimizer, config=cfg)
    """

    _PATTERN = re.compile(r"^step-(\d+)\.safetensors$")

    def __init__(self, directory: str | os.PathLike[str], *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.directory / f"step-{int(step):09d}.safetensors"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporary files of interrupted writes are ignored)."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := self._PATTERN.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def save(
        self,
        step: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        config: Config | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        from labworks.core.distributed import barrier, is_main_process

        path = self.path_for(step)
        if is_main_process():
            save_checkpoint(
                path, model, config=config, step=step, optimizer=optimizer, extra=extra, save_rng=True
            )
            for old in self.checkpoints()[: -self.keep]:
                old.unlink(missing_ok=True)
            for stale in self.directory.glob(".step-*.tmp"):
                stale.unlink(missing_ok=True)
        barrier()
        return path

    def resume(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        config_cls: type[C] | None = None,
        map_location: str | torch.device = "cpu",
    ) -> Checkpoint | None:
        """Load the latest checkpoint into ``model`` (and ``optimizer``), restore RNG state.

        Returns the checkpoint (``ckpt.step`` is where to continue), or ``None`` on a fresh run.
        """
        from labworks.core.seeding import set_rng_state

        path = self.latest()
        if path is None:
            return None
        ckpt = load_checkpoint(path, config_cls=config_cls, map_location=map_location)
        _unwrap(model).load_state_dict(ckpt.model)
        if optimizer is not None:
            if ckpt.optimizer is None:
                raise CheckpointError(f"{path} holds no optimizer state to resume from")
            optimizer.load_state_dict(ckpt.optimizer)
        if ckpt.rng is not None:
            set_rng_state(ckpt.rng)
        return ckpt
