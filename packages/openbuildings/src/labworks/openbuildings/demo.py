"""``labworks demo`` for openbuildings: synthesize scenes, train briefly, detect on held-out scenes,
evaluate, and write the Open Buildings CSV, plots and overlays (a few minutes on 2 CPU cores)."""

from __future__ import annotations

import json
from pathlib import Path

from labworks.core import atomic_write_text, retain_freed_memory


def demo(out_dir: Path, seed: int = 0, *, epochs: int = 10, scenes: int = 8, size: int = 384) -> Path:
    """Returns the summary file. Training scenes and held-out scenes use disjoint seeds."""
    from labworks.openbuildings.config import DetectConfig, TrainConfig
    from labworks.openbuildings.plots import plot_training_curves
    from labworks.openbuildings.synthetic import make_scene_set
    from labworks.openbuildings.train import load_model, save_model, split_scenes, train
    from labworks.openbuildings.workflow import evaluate_model

    retain_freed_memory()  # as the command line does: training reuses memory instead of page-faulting
    out = Path(out_dir)
    train_rows = make_scene_set(out / "scenes" / "train", scenes, size=size, seed=seed)
    test_rows = make_scene_set(out / "scenes" / "heldout", 4, size=size, seed=seed + 10_000)
    tr, va = split_scenes(train_rows, 0.25, seed)
    cfg = TrainConfig.from_dict(
        {
            "epochs": epochs,
            "steps_per_epoch": 20,
            "batch_size": 16,
            "tile": 128,
            "lr": 5e-3,
            "model": {"base_width": 8},
            "seed": seed,
        }
    )
    result = train(cfg, tr, va, out / "model", resume=False)
    plot_training_curves(result.history, out / "model" / "training_curves.png")
    loaded = load_model(result.model_path)
    report, table, detections = evaluate_model(
        loaded.model,
        test_rows,
        out / "evaluation",
        cfg=DetectConfig(tile=256, overlap=32),
        stats=loaded.stats,
        precisions=(0.8, 0.9),
    )
    save_model(result.model_path, loaded.model, cfg, thresholds=table, extra=loaded.extra)
    summary = {
        "train_seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch + 1,
        "heldout": report.to_dict(),
        "buildings_detected": sum(len(d.footprints) for d in detections),
        "csv": [str(d.files.get("csv")) for d in detections],
    }
    return atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
