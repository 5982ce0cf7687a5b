"""``torch.distributed`` helpers for trainers launched with ``torchrun``.

Single-process runs need no special casing: every helper is a no-op (or the identity) when no
process group is initialised.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "barrier",
    "cleanup_distributed",
    "gather_shards",
    "get_logger",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "shard_indices",
    "shard_sequence",
    "wrap_ddp",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def init_distributed(backend: str | None = None, device: str | torch.device | None = "auto") -> DistInfo:
    """Initialise the process group from the ``torchrun`` environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``). Without
    them, or with ``WORLD_SIZE=1``, nothing is initialised and a single-process ``DistInfo`` comes
    back. The backend defaults to NCCL when the job runs on CUDA, else gloo. Each rank gets
    ``cuda:LOCAL_RANK`` on GPU machines. Calling it twice returns the existing setup.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if device == "auto" or device is None:
        use_cuda = torch.cuda.is_available()
        dev = (
            torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
            if use_cuda
            else torch.device("cpu")
        )
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size <= 1:
        return DistInfo(0, 1, 0, dev, None)
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend not in {"gloo", "nccl", "mpi"}:
        raise ValueError(f"backend must be 'gloo', 'nccl' or 'mpi', got {backend!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())


def cleanup_distributed() -> None:
    """Destroy the process group if one exists."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (a new tensor; the input is left alone)."""
    out = tensor.detach().clone()
    if get_world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= get_world_size()
    return out


def shard_indices(n: int, rank: int | None = None, world_size: int | None = None) -> range:
    """Contiguous block of ``range(n)`` owned by ``rank``; blocks differ in size by at most one.

    Unlike ``DistributedSampler`` nothing is padded or repeated, so per-item results (batch
    inference, evaluation) can be gathered back into exactly ``n`` rows in order.
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def shard_sequence(items: Sequence[T], rank: int | None = None, world_size: int | None = None) -> Sequence[T]:
    """This rank's contiguous slice of ``items`` (see :func:`shard_indices`)."""
    r = shard_indices(len(items), rank, world_size)
    return items[r.start : r.stop]


def gather_shards(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``local`` rows in rank order: the inverse of :func:`shard_indices`.

    ``local`` is ``(n_local, ...)``; ranks may hold different ``n_local``. Every rank receives the
    full ``(n, ...)`` tensor. Works with gloo (CPU) and NCCL (CUDA).
    """
    world = get_world_size()
    if world == 1:
        return local
    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.long, device=local.device))
    max_n = int(max(s.item() for s in sizes))
    padded = torch.zeros((max_n, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    buffers = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(buffers, padded.contiguous())
    return torch.cat([b[: int(s.item())] for b, s in zip(buffers, sizes, strict=True)])


class _RankFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = get_rank()
        return True


def get_logger(name: str, level: int | str = logging.INFO, *, all_ranks: bool = False) -> logging.Logger:
    """A logger whose lines carry ``[rank N]``; other ranks log warnings and above only.

    Pass ``all_ranks=True`` to let every rank log at ``level``.
    """
    logger = logging.getLogger(name)
    if not any(getattr(h, "_labworks", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._labworks = True  # type: ignore[attr-defined]
        handler.addFilter(_RankFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s [rank %(rank)s] %(name)s %(levelname)s: %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False
    lvl = logging.getLevelName(level.upper()) if isinstance(level, str) else int(level)
    if not isinstance(lvl, int):
        raise ValueError(f"unknown logging level {level!r}")
    logger.setLevel(lvl if (all_ranks or is_main_process()) else max(lvl, logging.WARNING))
    return logger


def wrap_ddp(model: torch.nn.Module, info: DistInfo, **kwargs: object) -> torch.nn.Module:
    """Move ``model`` to ``info.device`` and wrap it in ``DistributedDataParallel`` when distributed."""
    model = model.to(info.device)
    if not info.is_distributed:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **kwargs)  # type: ignore[arg-type]
