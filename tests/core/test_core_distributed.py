from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labworks.core import gather_shards, get_world_size, init_distributed, shard_indices, shard_sequence

WORKER = Path(__file__).resolve().parent.parent / "fixtures" / "dist_worker.py"


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10, 11, 100])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_cover_every_item_once_in_order(n: int, world: int) -> None:
    shards = [shard_indices(n, r, world) for r in range(world)]
    assert [i for s in shards for i in s] == list(range(n))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert [x for r in range(world) for x in shard_sequence(list("abcdefghijk")[:n], r, world)] == list(
        "abcdefghijk"
    )[:n]


def test_shard_rejects_bad_rank() -> None:
    with pytest.raises(ValueError, match="rank=2"):
        shard_indices(5, 2, 2)


def test_single_process_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed()
    assert (info.rank, info.world_size, info.is_distributed) == (0, 1, False)
    assert get_world_size() == 1
    x = torch.arange(6.0).reshape(3, 2)
    assert gather_shards(x) is x
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        init_distributed()


@pytest.mark.distributed
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"}
    }
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPU, even on a GPU machine
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, res in enumerate(ranks):
        assert res["rank"] == r and res["world_size"] == 2 and res["backend"] == "gloo"
        assert res["all_reduce_sum"] == 3.0  # 1 + 2
        assert res["mean_rank"] == 0.5
        assert res["gathered"] == [[i, i * i] for i in range(11)]  # every rank sees all 11 rows, in order
        assert res["checkpoints"] == ["step-000000001.safetensors"]
    assert ranks[0]["shard"] == [0, 6] and ranks[1]["shard"] == [6, 11]
    # DDP averaged gradients of different data: the replicas stay identical after a step
    assert ranks[0]["weights"] == ranks[1]["weights"]
    # only rank 0 logs at INFO
    assert "[rank 0] dist_worker INFO: started" in proc.stderr
    assert "[rank 1] dist_worker INFO" not in proc.stderr
