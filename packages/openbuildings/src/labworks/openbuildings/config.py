"""Pydantic configs for training, self-training and detection (validated at the API boundary)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from labworks.core import Config
from labworks.openbuildings.augment import AugmentConfig
from labworks.openbuildings.raster import NormStats


class ModelConfig(Config):
    """The U-Net: encoder name, width of the small encoder, optional *local* encoder weights."""

    encoder: Literal["small", "resnet18", "resnet34", "resnet50"] = "small"
    base_width: int = Field(16, ge=4, le=128)
    in_channels: int = Field(3, ge=1)
    encoder_weights: str | None = None


class TrainConfig(Config):
    """Supervised training of the building segmenter (the Open Buildings recipe by default:
    Gaussian-of-edges weighted BCE + mixup + joint random augmentation)."""

    model: ModelConfig = ModelConfig()
    stats: NormStats = NormStats()
    tile: int = Field(256, ge=32)
    batch_size: int = Field(8, ge=1)
    epochs: int = Field(12, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    weighting: Literal["none", "unet", "gaussian"] = "gaussian"
    w0: float = Field(10.0, ge=0)
    sigma: float = Field(5.0, gt=0)
    class_balance: bool = Field(
        False, description="add the U-Net class-frequency map w_c (over-predicts buildings on sparse scenes)"
    )
    open_contacts: bool = Field(
        True, description="walls shared by touching buildings become a 2-px background gap in the target"
    )
    mixup_alpha: float = Field(0.2, ge=0, description="Beta(alpha, alpha); 0 disables mixup")
    augment: AugmentConfig = AugmentConfig()
    dice_weight: float = Field(0.0, ge=0)
    select: Literal["val_iou", "val_map", "val_bce", "last"] = Field(
        "val_map",
        description=(
            "which epoch's weights become the model: best validation mAP (instances of the tiles, "
            "IoU 0.50:0.95), best validation pixel IoU, lowest validation BCE, or the last epoch"
        ),
    )
    patience: int | None = Field(
        None, ge=1, description="early stopping after this many epochs without a better `select` score"
    )
    seed: int = 0
    device: str = "auto"
    amp: bool = Field(False, description="bf16/fp16 autocast on CUDA")
    num_workers: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _tile_multiple_of_stride(self) -> TrainConfig:
        if self.tile % 32:
            raise ValueError(f"tile must be a multiple of the U-Net stride 32, got {self.tile}")
        if self.select == "last" and self.patience is not None:
            raise ValueError(
                "patience needs a validation score to watch; it cannot be used with select='last'"
            )
        return self


class SelfTrainConfig(Config):
    """Noisy Student: a frozen teacher labels unlabelled tiles with soft probabilities; a noised student
    (strong augmentation + mixup) trains on labelled BCE + soft KL to the teacher; iterate."""

    rounds: int = Field(1, ge=1)
    unlabelled_weight: float = Field(1.0, ge=0)
    student: TrainConfig = TrainConfig()
    strong_augment: AugmentConfig = AugmentConfig(
        brightness=0.3, contrast=0.3, saturation=0.3, noise_std=0.06
    )


class DetectConfig(Config):
    """Streaming tiled detection over a raster, then instances -> footprints."""

    tile: int = Field(512, ge=32)
    overlap: int = Field(64, ge=0)
    batch_size: int = Field(4, ge=1)
    blend: Literal["hann", "gaussian", "none"] = "hann"
    tta: Literal["none", "flips"] = Field("none", description="test-time augmentation: mean over 4 flips")
    threshold: float = Field(0.5, gt=0, lt=1)
    min_area: float = Field(4.0, ge=0, description="m² (CRS units²)")
    simplify_tolerance: float = Field(0.25, ge=0, description="CRS units")
    halo: int = Field(128, ge=0, description="pixels of context around each post-processing block")
    block: int = Field(1024, ge=64, description="post-processing block size in pixels")
    connectivity: Literal[4, 8] = 4
    seed_threshold: float | None = Field(
        0.8, gt=0, lt=1, description="split touching buildings from seeds p > this (None: plain components)"
    )
    min_seed_area: int = Field(6, ge=1)
    min_confidence: float = Field(0.0, ge=0, le=1)
    device: str = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @model_validator(mode="after")
    def _check(self) -> DetectConfig:
        if self.tile % 32:
            raise ValueError(f"tile must be a multiple of the U-Net stride 32, got {self.tile}")
        if self.seed_threshold is not None and self.seed_threshold <= self.threshold:
            raise ValueError(
                f"seed_threshold ({self.seed_threshold}) must be above threshold ({self.threshold})"
            )
        if self.overlap >= self.tile // 2:
            raise ValueError(f"overlap ({self.overlap}) must be less than half the tile ({self.tile})")
        return self
