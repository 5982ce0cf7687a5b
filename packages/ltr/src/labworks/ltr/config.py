"""Pydantic configs for the ranking pipeline (YAML/JSON files, CLI ``--set key=value`` overrides)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from labworks.core import Config

__all__ = ["DataConfig", "ModelConfig", "RankingConfig", "TrainConfig"]


class DataConfig(Config):
    """Where the lists come from and how they are batched."""

    train: str | None = Field(
        None, description="LibSVM or Parquet file; None = built-in synthetic MSLR-like data"
    )
    valid: str | None = Field(None, description="validation file; None = split off the training queries")
    test: str | None = Field(None, description="test file; None = split off the training queries")
    synthetic_queries: int = Field(600, ge=10)
    synthetic_max_list_size: int = Field(300, ge=1)
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, ge=0, lt=0.5)
    max_list_size: int | None = Field(
        200, ge=1, description="training cap: shuffle, keep positives, truncate"
    )
    batch_size: int = Field(32, ge=1, description="queries per batch")
    layout: Literal["auto", "padded", "packed"] = "auto"


class ModelConfig(Config):
    """Which scorer to build and its size (see :mod:`labworks.ltr.models`)."""

    kind: Literal["dnn", "dasalc", "gam"] = "dasalc"
    hidden: int = Field(256, ge=1)
    n_dnn_layers: int = Field(3, ge=1)
    n_attention_layers: int = Field(2, ge=0)
    n_heads: int = Field(2, ge=1)
    head_size: int = Field(32, ge=1)
    noise_std: float = Field(1.5, ge=0)
    dropout: float = Field(0.3, ge=0, lt=1)
    list_norm: bool = Field(False, description="DASALC: also feed features standardised within each list")
    gam_hidden: list[int] = Field(default_factory=lambda: [16, 8])


class TrainConfig(Config):
    """Optimisation, early stopping and evaluation settings."""

    loss: str = "softmax"
    loss_kwargs: dict[str, Any] = Field(default_factory=dict)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(30, ge=1)
    patience: int = Field(6, ge=1, description="epochs without validation improvement before stopping")
    grad_clip: float | None = Field(5.0, gt=0)
    eval_k: list[int] = Field(default_factory=lambda: [1, 5, 10])
    select_k: int = Field(5, ge=1, description="NDCG@k used for early stopping and model selection")
    metric_preset: str = "lightgbm"

    @field_validator("eval_k")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError(f"eval_k must be a non-empty list of positive integers, got {v}")
        return v


class RankingConfig(Config):
    """Everything a ranking run needs; saved inside every checkpoint."""

    seed: int = Field(0, ge=0)
    device: str = "auto"
    out_dir: str = "runs/ltr"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
