"""Configs of the learners (pydantic, validated at the API boundary; stored in every checkpoint)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from labworks.core import Config

__all__ = ["PPOConfig", "SACConfig"]


class PPOConfig(Config):
    """PPO with GAE, clipped objective, observation normalisation; everything on ``device``."""

    env: str = "reacher"
    num_envs: int = Field(256, ge=1)
    unroll: int = Field(16, ge=1, description="steps per environment per iteration")
    total_steps: int = Field(1_000_000, ge=1, description="environment steps over all envs and ranks")
    epochs: int = Field(4, ge=1)
    minibatches: int = Field(4, ge=1)
    lr: float = Field(3e-4, gt=0)
    anneal_lr: bool = True
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip: float = Field(0.2, gt=0)
    entropy_coef: float = Field(0.0, ge=0)
    value_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    reward_scale: float = Field(1.0, gt=0)
    hidden: tuple[int, ...] = (64, 64)
    init_log_std: float = 0.0
    eval_every: int = Field(10, ge=1, description="iterations between evaluation rollouts")
    eval_envs: int = Field(64, ge=1)
    target_return: float | None = Field(None, description="stop once an evaluation reaches this return")
    checkpoint_every: int = Field(50, ge=1)
    seed: int = 0
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    compile: bool = Field(False, description="torch.compile the physics step (minutes to compile on CPU)")
    integrator: Literal["euler", "rk4"] | None = Field(None, description="override the model's integrator")


class SACConfig(Config):
    """Soft actor-critic with a device-resident replay buffer and automatic entropy tuning."""

    env: str = "reacher"
    num_envs: int = Field(64, ge=1)
    total_steps: int = Field(200_000, ge=1)
    buffer_size: int = Field(200_000, ge=1)
    batch_size: int = Field(512, ge=1)
    warmup_steps: int = Field(5_000, ge=0, description="uniform random actions before learning")
    updates_per_step: float = Field(
        0.25, gt=0, description="gradient updates per environment step of one env batch"
    )
    lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    tau: float = Field(0.005, gt=0, le=1)
    hidden: tuple[int, ...] = (256, 256)
    reward_scale: float = Field(1.0, gt=0)
    eval_every: int = Field(20, ge=1, description="environment-batch steps between evaluations")
    eval_envs: int = Field(64, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    seed: int = 0
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    compile: bool = False
    integrator: Literal["euler", "rk4"] | None = None
