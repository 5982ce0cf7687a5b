"""Config → datasets → model → training with early stopping, checkpoints and resume, under DDP.

    cfg = RankingConfig.from_file("ltr.yaml")
    pipe = Pipeline(cfg)
    history = pipe.fit()                 # resumes from cfg.out_dir/checkpoints if present
    print(pipe.evaluate(pipe.test))      # {"ndcg@1": ..., "ndcg@5": ...}
    scores = pipe.predict(pipe.test)     # (n_docs,), in the dataset's document order

Run it on several processes with ``torchrun --nproc-per-node 2 -m labworks.core.cli ltr train ...``:
each rank trains on its shard of the queries, gradients are averaged by DDP, validation is
sharded and gathered, and only rank 0 writes checkpoints and plots.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labworks.core import (
    CheckpointError,
    CheckpointManager,
    atomic_path,
    atomic_write,
    gather_shards,
    get_device,
    get_logger,
    init_distributed,
    is_main_process,
    load_checkpoint,
    progress,
    save_checkpoint,
    seed_everything,
    shard_indices,
    wrap_ddp,
)
from labworks.ltr.config import DataConfig, ModelConfig, RankingConfig
from labworks.ltr.data import RankingDataset, read_libsvm, read_parquet
from labworks.ltr.losses import get_loss
from labworks.ltr.metrics import ndcg
from labworks.ltr.models import DASALC, DNNScorer, RankingGAM
from labworks.ltr.synthetic import make_mslr_like

__all__ = [
    "DatasetBuilder",
    "Ensemble",
    "History",
    "ModelBuilder",
    "Pipeline",
    "evaluate_scores",
    "load_dataset",
]

_log = get_logger("labworks.ltr")


def load_dataset(path: str | os.PathLike[str], n_features: int | None = None) -> RankingDataset:
    """LibSVM (any suffix) or Parquet (``.parquet``) by file name."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        return read_parquet(p)
    return read_libsvm(p, n_features=n_features)


class DatasetBuilder:
    """Builds (train, valid, test) from a :class:`DataConfig`."""

    def __init__(self, cfg: DataConfig, seed: int = 0) -> None:
        self.cfg, self.seed = cfg, seed

    def build(self) -> tuple[RankingDataset, RankingDataset, RankingDataset | None]:
        c = self.cfg
        if c.train is None:
            full = make_mslr_like(
                c.synthetic_queries, max_list_size=c.synthetic_max_list_size, seed=self.seed
            )
        else:
            full = load_dataset(c.train)
        width = full.n_features
        valid = load_dataset(c.valid, width) if c.valid else None
        test = load_dataset(c.test, width) if c.test else None
        fractions = [1.0]
        if valid is None:
            fractions.append(c.valid_fraction)
        if test is None and c.test_fraction > 0:
            fractions.append(c.test_fraction)
        fractions[0] = 1.0 - sum(fractions[1:])
        parts = full.split(fractions, seed=self.seed) if len(fractions) > 1 else [full]
        train = parts.pop(0)
        if valid is None:
            valid = parts.pop(0)
        if test is None and parts:
            test = parts.pop(0)
        for name, ds in (("valid", valid), ("test", test)):
            if ds is not None and ds.n_features != width:
                raise ValueError(f"{name} data has {ds.n_features} features, training data {width}")
        return train, valid, test


class ModelBuilder:
    """Builds the scorer named by a :class:`ModelConfig`."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg

    def build(self, n_features: int, n_context: int = 0) -> nn.Module:
        c = self.cfg
        if c.kind == "dnn":
            return DNNScorer(n_features, [c.hidden] * c.n_dnn_layers, dropout=c.dropout)
        if c.kind == "dasalc":
            return DASALC(
                n_features,
                hidden=c.hidden,
                n_dnn_layers=c.n_dnn_layers,
                n_attention_layers=c.n_attention_layers,
                n_heads=c.n_heads,
                head_size=c.head_size,
                noise_std=c.noise_std,
                dropout=c.dropout,
                list_norm=c.list_norm,
            )
        return RankingGAM(n_features, n_context, c.gam_hidden)


def evaluate_scores(
    dataset: RankingDataset,
    scores: np.ndarray,
    ks: list[int],
    preset: str = "lightgbm",
    per_query: bool = False,
) -> dict[str, Any]:
    """NDCG@k of per-document ``scores: (n_docs,)`` on ``dataset`` (mean, or per-query arrays)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (dataset.n_docs,):
        raise ValueError(f"scores must have shape ({dataset.n_docs},), got {scores.shape}")
    s = [
        torch.from_numpy(scores[a:b]) for a, b in zip(dataset.offsets[:-1], dataset.offsets[1:], strict=True)
    ]
    y = [
        torch.from_numpy(dataset.labels[a:b].astype(np.float64))
        for a, b in zip(dataset.offsets[:-1], dataset.offsets[1:], strict=True)
    ]
    out: dict[str, Any] = {}
    for k in ks:
        vals = ndcg(s, y, k=k, preset=preset, reduction="none")
        out[f"ndcg@{k}"] = vals.numpy() if per_query else float(torch.nanmean(vals))
    return out


@dataclass
class History:
    """Per-epoch training loss and validation metrics."""

    loss: list[float] = field(default_factory=list)
    valid: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "valid": self.valid,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(list(d["loss"]), list(d["valid"]), int(d["best_epoch"]), bool(d["stopped_early"]))


class Pipeline:
    """Trains, validates, checkpoints and scores one ranker described by a :class:`RankingConfig`."""

    def __init__(
        self,
        cfg: RankingConfig,
        *,
        train: RankingDataset | None = None,
        valid: RankingDataset | None = None,
        test: RankingDataset | None = None,
    ) -> None:
        self.cfg = cfg
        seed_everything(cfg.seed)
        if train is None:
            train, built_valid, built_test = DatasetBuilder(cfg.data, cfg.seed).build()
            valid = valid or built_valid
            test = test or built_test
        if valid is None:
            raise ValueError("a validation set is needed for early stopping")
        self.train_data, self.valid, self.test = train, valid, test
        self.device = get_device(cfg.device)
        self.model = ModelBuilder(cfg.model).build(train.n_features, train.n_context).to(self.device)
        self.loss_fn = get_loss(cfg.train.loss, **cfg.train.loss_kwargs)
        self.out_dir = Path(cfg.out_dir)

    # -- training ------------------------------------------------------------------------------
    def _layout(self) -> str:
        c = self.cfg.data.layout
        per_doc = hasattr(self.model, "score_docs")  # scores each document alone, needs no padding
        if c == "auto":
            return "packed" if per_doc else "padded"
        if c == "packed" and not per_doc:
            raise ValueError(
                f"model kind {self.cfg.model.kind!r} needs the padded layout, got layout='packed'"
            )
        return c

    def _batch_loss(self, model: nn.Module, queries: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        d, cap = self.train_data, self.cfg.data.max_list_size
        if self._layout() == "packed":
            pb = d.packed(queries, max_list_size=cap, rng=rng).to(self.device)
            scores, mask = pb.pad(_score_docs(model, pb.features))
            labels, _ = pb.pad(pb.labels)
        else:
            b = d.padded(queries, max_list_size=cap, rng=rng).to(self.device)
            scores, labels, mask = model(b.features, b.mask, b.context), b.labels, b.mask
        return self.loss_fn(scores, labels, mask)

    def fit(self, *, resume: bool = True) -> History:
        """Train with early stopping on validation NDCG@select_k; resumes from the last checkpoint."""
        cfg, tc = self.cfg, self.cfg.train
        info = init_distributed()
        model = wrap_ddp(self.model, info)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        ckpts = CheckpointManager(self.out_dir / "checkpoints", keep=2)
        history, start, bad = History(), 0, 0
        best = -math.inf
        if resume:
            self._check_resumable(ckpts)
            last = ckpts.resume(self.model, opt, map_location=self.device)
            if last is not None:
                history = History.from_dict(last.extra["history"])
                start, bad, best = last.step + 1, int(last.extra["bad_epochs"]), float(last.extra["best"])
                _log.info("resumed from %s (epoch %d)", last.path, last.step)
        key = f"ndcg@{tc.select_k}"
        for epoch in range(start, tc.epochs):
            if bad >= tc.patience:
                break
            model.train()
            rng = np.random.default_rng(cfg.seed * 100_003 + epoch)
            order = rng.permutation(self.train_data.n_queries)
            per_rank = self.train_data.n_queries // info.world_size  # equal step counts on every rank
            mine = order[shard_indices(len(order), info.rank, info.world_size).start :][:per_rank]
            batches = list(self.train_data.batches(cfg.data.batch_size, queries=mine))
            total = 0.0
            bar = progress(batches, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="batch", leave=False)
            for q in bar:
                loss = self._batch_loss(model, q, rng)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tc.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                opt.step()
                total += float(loss.detach())
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            metrics = self._validate()
            history.loss.append(total / max(len(batches), 1))
            history.valid.append(metrics)
            if metrics[key] > best + 1e-6:
                best, bad, history.best_epoch = metrics[key], 0, epoch
                if is_main_process():
                    save_checkpoint(
                        self.out_dir / "best.safetensors",
                        self.model,
                        config=cfg,
                        step=epoch,
                        extra=self._meta(),
                    )
            else:
                bad += 1
            history.stopped_early = bad >= tc.patience and epoch + 1 < tc.epochs
            _log.info("epoch %d loss %.4f valid %s", epoch + 1, history.loss[-1], _fmt(metrics))
            ckpts.save(
                epoch,
                self.model,
                opt,
                config=cfg,
                extra={"history": history.to_dict(), "bad_epochs": bad, "best": best, **self._meta()},
            )
        if (self.out_dir / "best.safetensors").is_file():
            ckpt = load_checkpoint(self.out_dir / "best.safetensors", map_location=self.device)
            self.model.load_state_dict(ckpt.model)
        if is_main_process():
            self.plot_history(history, self.out_dir / "training_curves.png")
        return history

    def _check_resumable(self, ckpts: CheckpointManager) -> None:
        """Refuse to resume from checkpoints of a different model or feature width."""
        path = ckpts.latest()
        if path is None:
            return
        prev = load_checkpoint(path, config_cls=RankingConfig)
        width = int(prev.extra.get("n_features", -1))
        if prev.config.model != self.cfg.model or width != self.train_data.n_features:
            raise CheckpointError(
                f"{path} was written for another model (model {prev.config.model.to_dict()}, {width} features) "
                f"than this run (model {self.cfg.model.to_dict()}, {self.train_data.n_features} features): "
                "use a new out_dir, or resume=False (--no-resume) to start over"
            )

    def _meta(self) -> dict[str, Any]:
        return {"n_features": self.train_data.n_features, "n_context": self.train_data.n_context}

    def _validate(self) -> dict[str, float]:
        """Sharded over ranks, gathered, so every rank takes the same early-stopping decision."""
        d = self.valid
        mine = shard_indices(d.n_queries)
        sub = d.subset(np.arange(mine.start, mine.stop))
        ks = sorted(set(self.cfg.train.eval_k) | {self.cfg.train.select_k})
        per_q = evaluate_scores(sub, self._score(sub), ks, self.cfg.train.metric_preset, per_query=True)
        out = {}
        for name, vals in per_q.items():
            allv = gather_shards(torch.as_tensor(vals, dtype=torch.float64))
            out[name] = float(torch.nanmean(allv))
        return out

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def _score(self, dataset: RankingDataset, batch_size: int = 64) -> np.ndarray:
        model = self.model
        was = model.training
        model.eval()
        out = np.zeros(dataset.n_docs, dtype=np.float64)
        for q in dataset.batches(batch_size, bucket=True):
            b = dataset.padded(q).to(self.device)
            s = model(b.features, b.mask, b.context).double().cpu().numpy()
            for row, qi in enumerate(q):
                a, e = dataset.offsets[qi], dataset.offsets[qi + 1]
                out[a:e] = s[row, : e - a]
        model.train(was)
        return out

    def predict(self, dataset: RankingDataset) -> np.ndarray:
        """Scores ``(n_docs,)`` in the dataset's document order."""
        if dataset.n_features != self.train_data.n_features:
            raise ValueError(
                f"dataset has {dataset.n_features} features, the model expects {self.train_data.n_features}"
            )
        return self._score(dataset)

    def evaluate(
        self, dataset: RankingDataset, ks: list[int] | None = None, preset: str | None = None
    ) -> dict[str, float]:
        return evaluate_scores(
            dataset,
            self.predict(dataset),
            ks or self.cfg.train.eval_k,
            preset or self.cfg.train.metric_preset,
        )

    # -- persistence ---------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], *, device: str = "auto") -> Pipeline:
        """Rebuild a trained pipeline (model only; data come with ``predict``/``evaluate``)."""
        ckpt = load_checkpoint(path, config_cls=RankingConfig)
        self = cls.__new__(cls)
        self.cfg = ckpt.config
        self.device = get_device(device)
        n_features, n_context = int(ckpt.extra["n_features"]), int(ckpt.extra["n_context"])
        self.model = ModelBuilder(self.cfg.model).build(n_features, n_context).to(self.device)
        self.model.load_state_dict(ckpt.model)
        self.train_data = _Shape(n_features, n_context)  # type: ignore[assignment]
        self.valid = self.test = None  # type: ignore[assignment]
        self.loss_fn = get_loss(self.cfg.train.loss, **self.cfg.train.loss_kwargs)
        self.out_dir = Path(path).parent
        return self

    @staticmethod
    def plot_history(history: History, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
        epochs = np.arange(1, len(history.loss) + 1)
        a1.plot(epochs, history.loss, marker="o")
        a1.set(title="training loss", xlabel="epoch")
        for key in history.valid[0] if history.valid else []:
            a2.plot(epochs, [m[key] for m in history.valid], marker="o", label=key)
        if history.best_epoch >= 0:
            a2.axvline(history.best_epoch + 1, color="grey", ls="--", label="best")
        a2.set(title="validation", xlabel="epoch")
        a2.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
        return path


@dataclass
class _Shape:
    n_features: int
    n_context: int


def _score_docs(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    if isinstance(model, DNNScorer):
        return model.score_docs(features)
    # DDP-wrapped: go through its forward so gradients are synchronised
    mask = torch.ones(1, features.shape[0], dtype=torch.bool, device=features.device)
    out: torch.Tensor = model(features.unsqueeze(0), mask).squeeze(0)
    return out


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())


class Ensemble:
    """Averages the scores of several trained pipelines (DASALC-ens: 3–5 seeds)."""

    def __init__(self, members: list[Pipeline]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members

    @classmethod
    def train(cls, cfg: RankingConfig, seeds: list[int], **data: RankingDataset | None) -> Ensemble:
        members = []
        for s in seeds:
            member_cfg = cfg.with_overrides({"seed": s, "out_dir": str(Path(cfg.out_dir) / f"seed{s}")})
            pipe = Pipeline(member_cfg, **data)
            pipe.fit()
            members.append(pipe)
        return cls(members)

    def predict(self, dataset: RankingDataset) -> np.ndarray:
        return np.mean([m.predict(dataset) for m in self.members], axis=0)

    def evaluate(self, dataset: RankingDataset, ks: list[int], preset: str = "lightgbm") -> dict[str, float]:
        return evaluate_scores(dataset, self.predict(dataset), ks, preset)


def write_scores(dataset: RankingDataset, scores: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """CSV ``qid, doc, label, score`` (``doc`` = position within the query's list), atomically."""
    with atomic_write(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["qid", "doc", "label", "score"])
        for q in range(dataset.n_queries):
            a, b = dataset.offsets[q], dataset.offsets[q + 1]
            for i in range(a, b):
                w.writerow([dataset.qids[q], i - a, f"{dataset.labels[i]:g}", f"{scores[i]:.8g}"])
    return Path(path)
