"""Batched environments: gymnasium's v5 MuJoCo tasks and Brax's 2021 tasks (Fetch, Grasp, UR5e)."""

from __future__ import annotations

from typing import Any

from labworks.rigidsim.envs.base import Env, EnvState, gymnasium_asset
from labworks.rigidsim.envs.locomotion import Ant, HalfCheetah, Humanoid, Reacher
from labworks.rigidsim.envs.tasks import Fetch, Grasp, UR5e, asset_path

ENVS: dict[str, type[Env]] = {
    cls.name: cls for cls in (Reacher, Ant, HalfCheetah, Humanoid, Fetch, Grasp, UR5e)
}


def make(name: str, num_envs: int = 1, **kwargs: Any) -> Env:
    """An environment by name (see ``ENVS``)."""
    if name not in ENVS:
        raise ValueError(f"unknown environment {name!r}; available: {sorted(ENVS)}")
    return ENVS[name](num_envs, **kwargs)


__all__ = [
    "ENVS",
    "Ant",
    "Env",
    "EnvState",
    "Fetch",
    "Grasp",
    "HalfCheetah",
    "Humanoid",
    "Reacher",
    "UR5e",
    "asset_path",
    "gymnasium_asset",
    "make",
]
