"""labworks.core: the small, stable foundation every labworks package stands on."""

from labworks.core.__about__ import __version__
from labworks.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    load_checkpoint,
    save_checkpoint,
)
from labworks.core.config import Config, ConfigError
from labworks.core.devices import get_device, get_dtype
from labworks.core.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    cleanup_distributed,
    gather_shards,
    get_logger,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    shard_indices,
    shard_sequence,
    wrap_ddp,
)
from labworks.core.io import atomic_path, atomic_write, atomic_write_bytes, atomic_write_text
from labworks.core.kernels import KernelOp, has_triton, kernels_disabled
from labworks.core.memory import retain_freed_memory
from labworks.core.progress import progress
from labworks.core.seeding import make_generator, rng_state, seed_everything, seed_worker, set_rng_state

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointManager",
    "Config",
    "ConfigError",
    "DistInfo",
    "KernelOp",
    "__version__",
    "all_reduce_mean",
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "barrier",
    "cleanup_distributed",
    "gather_shards",
    "get_device",
    "get_dtype",
    "get_logger",
    "get_rank",
    "get_world_size",
    "has_triton",
    "init_distributed",
    "is_main_process",
    "kernels_disabled",
    "load_checkpoint",
    "make_generator",
    "progress",
    "retain_freed_memory",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "seed_worker",
    "set_rng_state",
    "shard_indices",
    "shard_sequence",
    "wrap_ddp",
]
