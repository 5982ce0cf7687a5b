"""``labworks openbuildings``: synth, train, detect, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import click

_set_opt = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set epochs=20 --set model.encoder=resnet18 (repeatable).",
)


@click.group(help="Building footprints from satellite imagery (Open Buildings).")
def cli() -> None:
    from labworks.core import retain_freed_memory

    retain_freed_memory()  # a training iteration allocates tens of MB: reuse it instead of page-faulting


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scenes", "n_scenes", default=8, show_default=True, help="Number of scenes.")
@click.option("--size", default=512, show_default=True, help="Scene size in pixels (0.5 m).")
@click.option("--seed", default=0, show_default=True)
@click.option("--terrain", "terrains", multiple=True, help="Terrains to cycle (default: all four).")
@click.option("--density", default=1.0, show_default=True)
def synth(
    out_dir: Path, n_scenes: int, size: int, seed: int, terrains: tuple[str, ...], density: float
) -> None:
    """Write synthetic georeferenced scenes (GeoTIFF + GeoJSON + manifest.json)."""
    from labworks.openbuildings.synthetic import TERRAINS, make_scene_set

    rows = make_scene_set(
        out_dir, n_scenes, size=size, seed=seed, terrains=terrains or TERRAINS, density=density
    )
    click.echo(f"wrote {len(rows)} scenes to {out_dir / 'manifest.json'}")


@cli.command()
@click.option(
    "--data",
    "manifest",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="manifest.json of labelled scenes (from `synth` or your own).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML/JSON TrainConfig.",
)
@_set_opt
@click.option("--val-fraction", default=0.2, show_default=True)
@click.option(
    "--unlabelled",
    type=click.Path(exists=True, path_type=Path),
    help="manifest.json of unlabelled scenes: run Noisy Student self-training.",
)
@click.option("--rounds", default=1, show_default=True, help="Noisy Student rounds.")
@click.option("--no-resume", is_flag=True, help="Start fresh even if checkpoints exist.")
def train(
    manifest: Path,
    out_dir: Path,
    config_path: Path | None,
    overrides: tuple[str, ...],
    val_fraction: float,
    unlabelled: Path | None,
    rounds: int,
    no_resume: bool,
) -> None:
    """Train a U-Net (resumes from OUT/checkpoints); works under torchrun."""
    from labworks.core import is_main_process
    from labworks.openbuildings.config import SelfTrainConfig, TrainConfig
    from labworks.openbuildings.synthetic import load_manifest
    from labworks.openbuildings.train import self_train, split_scenes
    from labworks.openbuildings.train import train as run_train

    cfg = TrainConfig.from_file(config_path) if config_path else TrainConfig()
    if overrides:
        cfg = cfg.with_overrides(list(overrides))
    tr, va = split_scenes(load_manifest(manifest), val_fraction, cfg.seed)
    if unlabelled is not None:
        unl = [(Path(r["image"]), None) for r in load_manifest(unlabelled)]
        results = self_train(
            SelfTrainConfig(rounds=rounds, student=cfg), tr, unl, va, out_dir, resume=not no_resume
        )
        final = results[-1]
    else:
        final = run_train(cfg, tr, va, out_dir, resume=not no_resume)
    if is_main_process():
        from labworks.openbuildings.plots import plot_training_curves

        plot_training_curves(final.history, out_dir / "training_curves.png")
        click.echo(json.dumps({"model": str(final.model_path), "best_epoch": final.best_epoch + 1}, indent=2))


@cli.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument(
    "rasters", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@_set_opt
@click.option("--precision", type=float, help="Apply the model's fitted threshold for this precision level.")
@click.option("--stratum", default="all", show_default=True, help="Stratum (e.g. terrain) of the thresholds.")
def detect(
    model_path: Path,
    rasters: tuple[Path, ...],
    out_dir: Path,
    overrides: tuple[str, ...],
    precision: float | None,
    stratum: str,
) -> None:
    """Detect buildings on GeoTIFFs: probability GeoTIFF + footprints (Open Buildings CSV, GeoJSON,
    GeoParquet). Under torchrun the rasters are sharded across ranks. Settings: the defaults, then those
    stored with the model (``evaluate --fit-pixel-threshold``), then ``--set``."""
    from labworks.openbuildings.inference import detect_many
    from labworks.openbuildings.train import load_model

    loaded = load_model(model_path)
    cfg = loaded.detect_config(overrides)
    for det in detect_many(
        loaded.model,
        list(rasters),
        out_dir,
        cfg=cfg,
        stats=loaded.stats,
        thresholds=loaded.thresholds,
        precision=precision,
        stratum=stratum,
    ):
        click.echo(f"{det.source}: {len(det.footprints)} buildings -> {det.files.get('csv')}")


@cli.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "manifest",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="manifest.json of labelled held-out scenes.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@_set_opt
@click.option(
    "--fit-thresholds",
    "precisions",
    default="",
    help="Comma-separated precision levels, e.g. 0.8,0.85,0.9: fit per-terrain thresholds and "
    "store them in the model file.",
)
@click.option(
    "--fit-pixel-threshold",
    "pixel_candidates",
    default="",
    help="Comma-separated pixel thresholds, e.g. 0.3,0.4,0.5,0.6: keep the one with the best mAP on these "
    "scenes, store it in the model file (detect then uses it) and evaluate with it.",
)
def evaluate(
    model_path: Path,
    manifest: Path,
    out_dir: Path,
    overrides: tuple[str, ...],
    precisions: str,
    pixel_candidates: str,
) -> None:
    """AP/mAP, SpaceNet F1, pixel IoU per terrain; PR curves, size histogram, overlays."""
    from labworks.openbuildings.synthetic import load_manifest
    from labworks.openbuildings.train import load_model, save_model
    from labworks.openbuildings.workflow import evaluate_model, fit_pixel_threshold

    loaded = load_model(model_path)
    cfg = loaded.detect_config(overrides)
    scenes = load_manifest(manifest)
    extra = dict(loaded.extra)
    candidates = [float(t) for t in pixel_candidates.split(",") if t.strip()]
    if candidates:
        cfg, by_threshold = fit_pixel_threshold(
            loaded.model,
            scenes,
            out_dir / "pixel-threshold",
            cfg=cfg,
            stats=loaded.stats,
            candidates=candidates,
        )
        extra["detect"] = {"threshold": cfg.threshold, "seed_threshold": cfg.seed_threshold}
        click.echo(
            f"validation mAP by pixel threshold: {by_threshold}; stored {extra['detect']} in {model_path}"
        )
    levels = [float(p) for p in precisions.split(",") if p.strip()]
    report, table, _ = evaluate_model(
        loaded.model, scenes, out_dir, cfg=cfg, stats=loaded.stats, precisions=levels or None
    )
    if table is not None or candidates:
        kept = table if table is not None else loaded.thresholds
        save_model(model_path, loaded.model, loaded.config, thresholds=kept, extra=extra)
    if table is not None:
        click.echo(f"stored thresholds for precisions {levels} in {model_path}")
    click.echo(json.dumps(report.to_dict(), indent=2, default=str))
