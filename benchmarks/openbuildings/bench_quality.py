"""Quality and the paper's ablation direction on held-out synthetic scenes (unseen seeds and terrain
mixes): the Open Buildings recipe (Gaussian-of-edges weighting + mixup) against the same training without
distance weighting, without mixup, and with the original U-Net weight map; optionally one Noisy Student
round. Several seeds per variant; prints AP@0.5 / mAP / F1 as mean ± sd and the training time.
``--last-epoch`` also scores the last-epoch weights (train otherwise keeps the checkpoint ``--select`` picks).
``--train-terrains`` / ``--test-terrains`` hold terrains out of training (distribution shift).
``--label-drop`` / ``--label-shift`` corrupt the training and validation labels (missed buildings,
registration offsets); the test labels stay clean.

    python benchmarks/openbuildings/bench_quality.py --seeds 3 --epochs 12 --out bench-output/openbuildings
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import shapely.affinity
import torch
from shapely.geometry import mapping, shape

from labworks.core import CheckpointManager, atomic_write_text, retain_freed_memory
from labworks.openbuildings.config import DetectConfig, SelfTrainConfig, TrainConfig
from labworks.openbuildings.evaluate import Report
from labworks.openbuildings.plots import plot_ablation
from labworks.openbuildings.synthetic import TERRAINS, make_scene_set
from labworks.openbuildings.train import load_model, self_train, split_scenes, train
from labworks.openbuildings.workflow import evaluate_model, fit_pixel_threshold

VARIANTS: dict[str, dict[str, object]] = {
    "full (gaussian + mixup)": {},
    "no distance weighting": {"weighting": "none"},
    "no mixup": {"mixup_alpha": 0.0},
    "unet weighting + mixup": {"weighting": "unet"},
}


def _mean_sd(values: list[float]) -> str:
    v = np.asarray(values)
    return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"


def _scores(report: Report, train_s: float) -> dict[str, float]:
    """One result row; the intra-op thread count is recorded because it changes float reduction order,
    hence the trained weights."""
    return {
        "ap50": report.ap50,
        "map": report.map,
        "f1": report.f1.f1,
        "train_s": train_s,
        "threads": torch.get_num_threads(),
    }


def corrupt_labels(rows: list[dict], out_dir: Path, drop: float, shift: float, seed: int) -> list[dict]:
    """Copies of the rows whose label GeoJSONs carry the two label errors of hand-labelled building data:
    omissions (each polygon dropped with probability ``drop``) and registration offsets (each polygon
    translated by an isotropic normal offset of ``shift`` metres per axis). Images are unchanged."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    noisy = []
    for row in rows:
        doc = json.loads(Path(row["labels"]).read_text())
        kept = []
        for feat in doc["features"]:
            dx, dy = rng.normal(0.0, shift, 2) if shift > 0 else (0.0, 0.0)
            if rng.random() < drop:
                continue
            geom = shapely.affinity.translate(shape(feat["geometry"]), dx, dy)
            kept.append({**feat, "geometry": mapping(geom)})
        path = out_dir / Path(row["labels"]).name
        atomic_write_text(path, json.dumps({**doc, "features": kept}))
        noisy.append({**row, "labels": str(path)})
    return noisy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--scenes", type=int, default=16, help="labelled training scenes")
    parser.add_argument("--test-scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--base-width", type=int, default=8)
    parser.add_argument(
        "--encoder", default="small", help="U-Net encoder: small (base-width) or a ResNet, e.g. resnet18"
    )
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: one pass)")
    parser.add_argument(
        "--variants", default="all", help="comma-separated subset of variant indices, e.g. 0,1"
    )
    parser.add_argument("--noisy-student", action="store_true", help="also run one Noisy Student round")
    parser.add_argument(
        "--label-drop", type=float, default=0.0, help="training labels: fraction of buildings left unlabelled"
    )
    parser.add_argument(
        "--label-shift", type=float, default=0.0, help="training labels: registration offset sd (metres)"
    )
    parser.add_argument(
        "--fit-pixel-threshold",
        action="store_true",
        help="also report test scores at the pixel threshold fitted on each run's validation scenes",
    )
    parser.add_argument(
        "--last-epoch",
        action="store_true",
        help="also score each run's last-epoch checkpoint (no best-validation checkpoint selection)",
    )
    parser.add_argument(
        "--mixup-alpha",
        type=float,
        default=None,
        help="Beta(alpha, alpha) of the mixup variants (default: TrainConfig's 0.2); runs go to alpha-named folders",
    )
    parser.add_argument(
        "--select",
        default=None,
        choices=["val_iou", "val_map", "val_bce", "last"],
        help="which epoch's weights train keeps (default: TrainConfig.select, val_map)",
    )
    parser.add_argument(
        "--train-terrains",
        default=None,
        help="comma-separated terrains of the labelled scenes (default: all four)",
    )
    parser.add_argument(
        "--test-terrains",
        default=None,
        help="comma-separated terrains of the test scenes (default: all four, in reverse order); "
        "a terrain absent from --train-terrains measures generalisation to an unseen terrain",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench-output/openbuildings/quality"))
    args = parser.parse_args()
    retain_freed_memory()  # as the command line does: no page faults on each iteration's fresh tensors
    if args.threads:
        torch.set_num_threads(args.threads)

    data = args.out / "scenes"
    train_terrains = args.train_terrains.split(",") if args.train_terrains else TERRAINS
    test_terrains = args.test_terrains.split(",") if args.test_terrains else tuple(reversed(TERRAINS))
    train_rows = make_scene_set(data / "train", args.scenes, size=args.size, seed=1, terrains=train_terrains)
    if args.label_drop > 0 or args.label_shift > 0:  # noisy training/validation labels, clean test labels
        train_rows = corrupt_labels(
            train_rows, data / "train-noisy-labels", args.label_drop, args.label_shift, seed=7
        )
    # held out: unseen seeds and different terrain mixes / densities
    test_rows = make_scene_set(
        data / "test",
        args.test_scenes,
        size=args.size,
        seed=90_001,
        terrains=test_terrains,
        density=1.2,
    )
    unl_rows = (
        make_scene_set(data / "unlabelled", args.scenes, size=args.size, seed=50_001)
        if args.noisy_student
        else []
    )
    detect_cfg = DetectConfig(tile=512, overlap=64, tta="flips")
    names = list(VARIANTS)
    if args.variants != "all":
        names = [names[int(i)] for i in args.variants.split(",")]
    results: dict[str, list[dict[str, float]]] = {}
    for name in names:
        mixes = VARIANTS[name].get("mixup_alpha", 1.0) != 0.0
        alpha = {"mixup_alpha": args.mixup_alpha} if args.mixup_alpha is not None and mixes else {}
        label = f"{name} alpha {args.mixup_alpha:g}" if alpha else name
        for seed in range(args.seeds):
            cfg = TrainConfig.from_dict(
                {
                    "epochs": args.epochs,
                    "tile": args.tile,
                    "batch_size": args.batch,
                    "lr": args.lr,
                    "model": {"encoder": args.encoder, "base_width": args.base_width},
                    "seed": seed,
                    "steps_per_epoch": args.steps,
                    **({"select": args.select} if args.select else {}),
                    **VARIANTS[name],
                    **alpha,
                }
            )
            tr, va = split_scenes(train_rows, 0.2, seed)
            tag = f"-alpha{args.mixup_alpha:g}" if alpha else ""
            run = args.out / "runs" / f"{name.split()[0]}-{name.split()[-1]}{tag}-{seed}"
            t0 = time.perf_counter()
            res = train(cfg, tr, va, run, resume=True)
            t_train = time.perf_counter() - t0
            report, _, _ = evaluate_model(
                load_model(res.model_path).model,
                test_rows,
                run / "eval",
                cfg=detect_cfg,
                stats=cfg.stats,
                overlays=1,
            )
            row = _scores(report, t_train)
            results.setdefault(label, []).append(row)
            print(
                f"{label:28s} seed {seed}: AP50 {row['ap50']:.4f} mAP {row['map']:.4f} F1 {row['f1']:.4f} "
                f"({t_train:.0f} s)",
                flush=True,
            )
            if args.last_epoch:
                last = CheckpointManager(run / "checkpoints").latest()
                assert last is not None
                rep_l, _, _ = evaluate_model(
                    load_model(last).model,
                    test_rows,
                    run / "eval-last",
                    cfg=detect_cfg,
                    stats=cfg.stats,
                    overlays=0,
                )
                results.setdefault(f"{label} @ last epoch", []).append(_scores(rep_l, t_train))
                print(
                    f"{label:28s} seed {seed}: last epoch AP50 {rep_l.ap50:.4f} mAP {rep_l.map:.4f}",
                    flush=True,
                )
            if args.fit_pixel_threshold:
                model = load_model(res.model_path).model
                fitted, by_t = fit_pixel_threshold(
                    model,
                    [{"image": img, "labels": lab} for img, lab in va],
                    run / "pixel-threshold",
                    cfg=detect_cfg,
                    stats=cfg.stats,
                )
                rep_t, _, _ = evaluate_model(
                    model, test_rows, run / "eval-fitted", cfg=fitted, stats=cfg.stats, overlays=0
                )
                results.setdefault(f"{label} @ fitted threshold", []).append(_scores(rep_t, t_train))
                print(
                    f"{label:28s} seed {seed}: fitted pixel threshold {fitted.threshold:.2f} "
                    f"(validation mAP {by_t}) -> test AP50 {rep_t.ap50:.4f} mAP {rep_t.map:.4f}",
                    flush=True,
                )
            if args.noisy_student and name == names[0]:
                st = SelfTrainConfig(rounds=1, student=cfg)
                ns = self_train(
                    st,
                    tr,
                    [(r["image"], None) for r in unl_rows],
                    va,
                    run / "noisy-student",
                    teacher_path=res.model_path,
                )
                rep2, _, _ = evaluate_model(
                    load_model(ns[-1].model_path).model,
                    test_rows,
                    run / "ns-eval",
                    cfg=detect_cfg,
                    stats=cfg.stats,
                    overlays=0,
                )
                results.setdefault("full + noisy student", []).append(_scores(rep2, ns[-1].seconds))
                print(
                    f"{'full + noisy student':28s} seed {seed}: AP50 {rep2.ap50:.4f} mAP {rep2.map:.4f}",
                    flush=True,
                )
    print("\n| variant | AP@0.5 (VOC) | mAP@[.5:.95] | F1@0.5 | train s |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        cells = [_mean_sd([r[k] for r in rows]) for k in ("ap50", "map", "f1")]
        print(f"| {name} | {' | '.join(cells)} | {np.mean([r['train_s'] for r in rows]):.0f} |")
    atomic_write_text(args.out / "ablation.json", json.dumps(results, indent=1))
    plot_ablation(
        {k: [r["map"] for r in v] for k, v in results.items()}, args.out / "ablation_map.png", metric="mAP"
    )
    plot_ablation(
        {k: [r["ap50"] for r in v] for k, v in results.items()},
        args.out / "ablation_ap50.png",
        metric="AP@0.5",
    )


if __name__ == "__main__":
    main()
