"""Training: supervised U-Net (weighted BCE, mixup, joint augmentation) and Noisy Student
self-training, with checkpoints + resume and DDP under ``torchrun``.

    result = train(TrainConfig(), train_scenes, val_scenes, out_dir="runs/ob")
    model = load_model(result.model_path).model
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from labworks.core import (
    CheckpointManager,
    all_reduce_mean,
    atomic_write_text,
    get_device,
    get_logger,
    init_distributed,
    is_main_process,
    load_checkpoint,
    make_generator,
    progress,
    save_checkpoint,
    seed_everything,
    wrap_ddp,
)
from labworks.openbuildings.augment import AugmentConfig, mixup, random_augment
from labworks.openbuildings.config import DetectConfig, ModelConfig, SelfTrainConfig, TrainConfig
from labworks.openbuildings.evaluate import evaluate
from labworks.openbuildings.instances import find_instances
from labworks.openbuildings.losses import dice_loss, soft_kl, weighted_bce
from labworks.openbuildings.model import UNet
from labworks.openbuildings.ops import instance_stats
from labworks.openbuildings.raster import NormStats, TileDataset
from labworks.openbuildings.thresholds import ThresholdTable
from labworks.openbuildings.weights import segmentation_target, weight_map

log = get_logger("labworks.openbuildings")

Scenes = Sequence[tuple[Path, Path | None]]


@dataclass
class TrainResult:
    """What :func:`train` produced: the final model file and per-epoch history."""

    model_path: Path
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0


@dataclass
class LoadedModel:
    """A model file read back: the network (eval mode), its config, normalisation and thresholds."""

    model: UNet
    config: TrainConfig
    stats: NormStats
    thresholds: ThresholdTable | None
    extra: dict[str, Any]

    def detect_config(self, overrides: Sequence[str] = ()) -> DetectConfig:
        """Detection settings: the defaults, then those stored with the model (a pixel threshold fitted by
        :func:`~labworks.openbuildings.workflow.fit_pixel_threshold`), then ``overrides``
        (``["threshold=0.4"]``)."""
        cfg = DetectConfig.from_dict(self.extra.get("detect", {}), source="model file")
        return cfg.with_overrides(list(overrides)) if overrides else cfg


def build_model(cfg: ModelConfig) -> UNet:
    """The U-Net described by ``cfg`` (encoder weights only from a local file)."""
    return UNet(
        cfg.encoder,
        in_channels=cfg.in_channels,
        encoder_weights=cfg.encoder_weights,
        base_width=cfg.base_width,
    )


def save_model(
    path: str | Path,
    model: torch.nn.Module,
    cfg: TrainConfig,
    *,
    thresholds: ThresholdTable | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing model file (safetensors; config, stats and thresholds in the header)."""
    meta = dict(extra or {})
    if thresholds is not None:
        meta["thresholds"] = thresholds.to_dict()
    return save_checkpoint(path, model, config=cfg, extra=meta)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Read a model file written by :func:`save_model` / :func:`train` (no pickle)."""
    ckpt = load_checkpoint(path, config_cls=TrainConfig, map_location="cpu")
    cfg: TrainConfig = ckpt.config
    model = build_model(cfg.model.model_copy(update={"encoder_weights": None}))
    model.load_state_dict(ckpt.model)
    model.to(device).eval()
    table = ckpt.extra.get("thresholds")
    return LoadedModel(
        model=model,
        config=cfg,
        stats=cfg.stats,
        thresholds=ThresholdTable.from_dict(table) if table else None,
        extra=ckpt.extra,
    )


def _epoch_batches(
    ds: TileDataset, cfg: TrainConfig, seed: int, epoch: int, distributed: bool
) -> Iterator[dict[str, Any]]:
    """Endless batches for one epoch, shuffled from (seed, epoch) alone, so a resumed run sees exactly
    the batches an uninterrupted run would."""
    sampler: Any
    rnd = 0
    while True:
        if distributed:
            sampler = DistributedSampler(ds, shuffle=True, seed=seed, drop_last=True)
            sampler.set_epoch(epoch * 1000 + rnd)
        else:
            sampler = RandomSampler(ds, generator=make_generator(seed * 100_003 + epoch * 1000 + rnd))
        loader = DataLoader(
            ds,
            batch_size=cfg.batch_size,
            sampler=sampler,
            drop_last=len(ds) >= cfg.batch_size,
            num_workers=cfg.num_workers,
        )
        yield from loader
        rnd += 1


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def supervised_loss(
    model: torch.nn.Module,
    batch: dict[str, Any],
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
    *,
    augment: AugmentConfig | None = None,
) -> torch.Tensor:
    """One labelled batch -> loss: augment jointly, build the weight map *after* augmentation,
    mixup (soft targets, never thresholded), weighted BCE (+ optional Dice)."""
    image = batch["image"].to(device)
    inst = batch["instances"].to(device)
    valid = batch["valid"].to(device).float()
    image, inst, (valid,) = random_augment(
        image, inst, cfg=augment or cfg.augment, generator=gen, extra=[valid]
    )
    valid_b = valid > 0.5
    target = segmentation_target(inst, open_contacts=cfg.open_contacts)
    # weights from the instance map as the target sees it (opened walls are background gaps)
    opened = torch.where(target > 0.5, inst, torch.zeros_like(inst))
    weight = weight_map(
        opened, kind=cfg.weighting, w0=cfg.w0, sigma=cfg.sigma, class_balance=cfg.class_balance
    ).to(device)
    if cfg.mixup_alpha > 0:
        image, target, mixed_w, mixed_v, _ = mixup(
            image, target, weight, alpha=cfg.mixup_alpha, generator=gen, valid=valid_b
        )
        assert mixed_w is not None and mixed_v is not None
        weight, valid_b = mixed_w, mixed_v
    with _autocast(device, cfg.amp):
        logits = model(image)
    logits = logits.float()
    loss = weighted_bce(logits, target, weight, valid_b)
    if cfg.dice_weight > 0:
        loss = loss + cfg.dice_weight * dice_loss(logits, target, valid_b)
    return loss


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    ds: TileDataset,
    device: torch.device,
    batch_size: int = 8,
    *,
    instances: bool = False,
) -> dict[str, float]:
    """Pixel IoU/F1 at p > 0.5 and mean BCE on un-augmented tiles; with ``instances`` also the
    instance ``val_ap50`` and ``val_map`` (IoU 0.50:0.95, VOC interpolation) of the tiles' buildings,
    found as :func:`detect` finds them (default :class:`DetectConfig`), pooled over tiles."""
    model.eval()
    tp = fp = fn = 0.0
    bce = 0.0
    n = 0
    items: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    det_cfg = DetectConfig()
    for batch in DataLoader(ds, batch_size=batch_size):
        image = batch["image"].to(device)
        target = segmentation_target(batch["instances"].to(device), open_contacts=True)
        valid = batch["valid"].to(device)
        logits = model(image).float()[:, 0]
        bce += float(weighted_bce(logits, target, None, valid)) * image.shape[0]
        n += image.shape[0]
        pred = (logits > 0) & valid
        gt = (target > 0.5) & valid
        tp += float((pred & gt).sum())
        fp += float((pred & ~gt).sum())
        fn += float((~pred & gt).sum())
        if instances:
            probs = torch.sigmoid(logits).cpu().numpy()
            valid_np = batch["valid"].numpy()
            for prob, gt_ids, ok in zip(probs, batch["instances"].numpy(), valid_np, strict=True):
                labels, n_inst = find_instances(
                    prob,
                    threshold=det_cfg.threshold,
                    connectivity=det_cfg.connectivity,
                    valid=ok,
                    seed_threshold=det_cfg.seed_threshold,
                    min_seed_area=det_cfg.min_seed_area,
                )
                stats = instance_stats(torch.from_numpy(labels), torch.from_numpy(prob), n_inst)
                items.append((np.where(ok, gt_ids, 0), labels, stats["confidence"].numpy()))
    model.train()
    out = {
        "val_bce": bce / max(n, 1),
        "val_iou": tp / max(tp + fp + fn, 1.0),
        "val_f1": 2 * tp / max(2 * tp + fp + fn, 1.0),
    }
    if instances:
        report = evaluate(items)
        out["val_ap50"], out["val_map"] = report.ap50, report.map
    return out


def _select_score(cfg: TrainConfig, metrics: dict[str, float], train_loss: float) -> float:
    """Higher is better; without validation scenes, the training loss decides."""
    if cfg.select == "val_bce" and "val_bce" in metrics:
        return -metrics["val_bce"]
    return metrics.get(cfg.select, -train_loss)


def train(
    cfg: TrainConfig,
    train_scenes: Scenes,
    val_scenes: Scenes | None,
    out_dir: str | Path,
    *,
    resume: bool = True,
    teacher: torch.nn.Module | None = None,
    unlabelled_scenes: Scenes | None = None,
    self_cfg: SelfTrainConfig | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train a U-Net; with ``teacher`` and ``unlabelled_scenes`` this is one Noisy Student round.

    Writes ``out_dir/checkpoints/step-*.safetensors`` every epoch (resumable: rerunning the same
    command continues from the latest), ``out_dir/model.safetensors`` (the epoch ``cfg.select`` picks),
    ``out_dir/history.json``. Under ``torchrun`` every rank trains on its shard (DDP, gloo/NCCL).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    info = init_distributed()
    device = info.device if info.is_distributed else get_device(cfg.device)
    seed_everything(cfg.seed + info.rank)
    model = build_model(cfg.model).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    ddp = wrap_ddp(model, info)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    train_ds = TileDataset(train_scenes, tile=cfg.tile, stats=cfg.stats)
    if len(train_ds) == 0:
        raise ValueError("no training tiles: check the scenes and the tile size")
    steps = cfg.steps_per_epoch or max(1, len(train_ds) // (cfg.batch_size * info.world_size))
    total = steps * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
    val_ds = TileDataset(val_scenes, tile=cfg.tile, stats=cfg.stats) if val_scenes else None

    ckpts = CheckpointManager(out / "checkpoints", keep=cfg.keep_checkpoints)
    val_keys = ["val_iou", "val_f1", "val_bce"] + (["val_ap50", "val_map"] if cfg.select == "val_map" else [])
    history: dict[str, list[float]] = {"loss": [], **{k: [] for k in val_keys}}
    start_epoch, best_score, best_epoch = 0, -math.inf, 0
    best_state: dict[str, torch.Tensor] | None = None
    if resume:
        last = ckpts.resume(model, opt, config_cls=TrainConfig, map_location=device)
        if last is not None:
            if last.config != cfg:
                raise ValueError(
                    f"{ckpts.directory} holds checkpoints of a different config; "
                    "use a fresh out_dir or resume=False"
                )
            sched.load_state_dict(last.extra["scheduler"])
            history = last.extra["history"]
            for k in val_keys:  # a metric this run records but the checkpoint's run did not
                history.setdefault(k, [math.nan] * len(history["loss"]))
            start_epoch = int(last.extra["epoch"]) + 1
            # "best_iou" is the key of checkpoints written before `select` existed
            legacy = "best_score" not in last.extra
            saved = last.extra.get("best_score", last.extra.get("best_iou"))
            best_score = -math.inf if saved is None else float(saved)
            best_epoch = int(last.extra["best_epoch"])
            best_file = out / "best.safetensors"
            if best_file.is_file():
                best_state = load_checkpoint(best_file).model
            if legacy and cfg.select not in ("val_iou", "last"):
                # the saved score is a pixel IoU: re-score the kept weights by this run's rule
                best_score = _rescore(cfg, best_state, val_ds, device)
                log.info("checkpoint predates `select`: kept weights re-scored by %s", cfg.select)
            log.info("resumed from %s (epoch %d)", ckpts.latest(), start_epoch)

    unl_ds = None
    if teacher is not None and unlabelled_scenes:
        unl_ds = TileDataset(unlabelled_scenes, tile=cfg.tile, stats=cfg.stats)
        teacher.to(device).eval()
    strong = self_cfg.strong_augment if self_cfg else None
    unl_weight = self_cfg.unlabelled_weight if self_cfg else 1.0

    patience_left = cfg.patience
    for epoch in range(start_epoch, cfg.epochs):
        ddp.train()
        gen = make_generator((cfg.seed * 1000 + epoch) * 1000 + info.rank, device=device)
        batches = _epoch_batches(train_ds, cfg, cfg.seed, epoch, info.is_distributed)
        unl = _epoch_batches(unl_ds, cfg, cfg.seed + 7, epoch, info.is_distributed) if unl_ds else None
        running = 0.0
        bar = progress(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for _ in bar:
            loss = supervised_loss(ddp, next(batches), cfg, gen, device, augment=strong)
            if unl is not None and teacher is not None:
                loss = loss + unl_weight * _student_loss(ddp, teacher, next(unl), cfg, strong, gen, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            running += float(loss.detach())
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss.item():.4f}")
        mean_loss = float(all_reduce_mean(torch.tensor(running / steps)))
        history["loss"].append(mean_loss)
        metrics = {}
        if val_ds is not None:
            metrics = validate(model, val_ds, device, instances=cfg.select == "val_map")
        for k in val_keys:
            history[k].append(metrics.get(k, math.nan))
        if cfg.select == "last":
            best_epoch = epoch
        else:
            score = _select_score(cfg, metrics, mean_loss)
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if is_main_process():
                    save_checkpoint(out / "best.safetensors", best_state, config=cfg)
                if cfg.patience:
                    patience_left = cfg.patience
            elif patience_left is not None:
                patience_left -= 1
        log.info("epoch %d loss %.4f %s", epoch + 1, mean_loss, {k: round(v, 4) for k, v in metrics.items()})
        ckpts.save(
            epoch,
            model,
            opt,
            config=cfg,
            extra={
                "epoch": epoch,
                "scheduler": _jsonable(sched.state_dict()),
                "history": history,
                "best_score": best_score if math.isfinite(best_score) else None,
                "best_epoch": best_epoch,
            },
        )
        if patience_left is not None and patience_left <= 0:
            log.info("early stop at epoch %d (best %d)", epoch + 1, best_epoch + 1)
            break

    if best_state is not None and cfg.select != "last":
        model.load_state_dict(best_state)
    model_path = out / "model.safetensors"
    if is_main_process():
        save_model(model_path, model, cfg, extra={"history": history, "best_epoch": best_epoch})
        atomic_write_text(out / "history.json", json.dumps(history, indent=1))
    return TrainResult(model_path, history, best_epoch, time.perf_counter() - t0)


def _rescore(
    cfg: TrainConfig,
    state: dict[str, torch.Tensor] | None,
    val_ds: TileDataset | None,
    device: torch.device,
) -> float:
    """``cfg.select``'s validation score of the weights ``state`` (-inf when there is nothing to score)."""
    if state is None or val_ds is None:
        return -math.inf
    scratch = build_model(cfg.model).to(device)
    scratch.load_state_dict(state)
    metrics = validate(scratch, val_ds, device, instances=cfg.select == "val_map")
    return _select_score(cfg, metrics, math.inf)


def _jsonable(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, default=float))


def _student_loss(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    batch: dict[str, Any],
    cfg: TrainConfig,
    strong: AugmentConfig | None,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Soft KL(p_teacher || p_student) on unlabelled tiles: the teacher sees the clean tile, the
    student the strongly augmented (noised) one; the teacher's map follows the same geometry."""
    image = batch["image"].to(device)
    valid = batch["valid"].to(device).float()
    with torch.no_grad():
        p_t = torch.sigmoid(teacher(image).float()[:, 0])
    dummy = torch.zeros(image.shape[0], *image.shape[-2:], dtype=torch.long, device=device)
    image, _, (p_t, valid) = random_augment(
        image, dummy, cfg=strong or cfg.augment, generator=gen, extra=[p_t, valid]
    )
    logits = student(image).float()
    return soft_kl(logits[:, 0], p_t.clamp(0, 1), None, valid > 0.5)


def self_train(
    cfg: SelfTrainConfig,
    labelled: Scenes,
    unlabelled: Scenes,
    val_scenes: Scenes | None,
    out_dir: str | Path,
    *,
    teacher_path: str | Path | None = None,
    resume: bool = True,
) -> list[TrainResult]:
    """Noisy Student: train (or load) a teacher, then ``rounds`` times train a fresh noised student on
    labelled + teacher-labelled tiles; the student becomes the next teacher. Each round is resumable."""
    out = Path(out_dir)
    results: list[TrainResult] = []
    if teacher_path is None:
        res = train(cfg.student, labelled, val_scenes, out / "teacher", resume=resume)
        results.append(res)
        teacher_path = res.model_path
    for r in range(cfg.rounds):
        teacher = load_model(teacher_path).model
        res = train(
            cfg.student,
            labelled,
            val_scenes,
            out / f"student-{r + 1}",
            resume=resume,
            teacher=teacher,
            unlabelled_scenes=unlabelled,
            self_cfg=cfg,
        )
        results.append(res)
        teacher_path = res.model_path
    return results


def split_scenes(items: Sequence[dict[str, Any]], val_fraction: float, seed: int) -> tuple[Scenes, Scenes]:
    """Manifest rows -> (train, val) lists of (image, labels) by a seeded shuffle of scenes."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = round(len(items) * val_fraction)
    pairs = [
        (Path(items[i]["image"]), Path(items[i]["labels"]) if items[i].get("labels") else None) for i in order
    ]
    return pairs[n_val:], pairs[:n_val]
