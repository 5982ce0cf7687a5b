"""``labworks ltr``: train, evaluate, predict, explain, compare, synth."""

from __future__ import annotations

import json
from pathlib import Path

import click

from labworks.ltr.config import RankingConfig


def _config(path: Path | None, overrides: tuple[str, ...]) -> RankingConfig:
    cfg = RankingConfig.from_file(path) if path else RankingConfig()
    return cfg.with_overrides(list(overrides)) if overrides else cfg


_config_opt = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML/JSON RankingConfig.",
)
_set_opt = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set train.lr=3e-4 (repeatable).",
)


@click.group(help="Learning to rank: losses, exact metrics, DASALC, ranking GAMs.")
def cli() -> None:
    pass


@cli.command()
@_config_opt
@_set_opt
@click.option("--no-resume", is_flag=True, help="Start fresh even if checkpoints exist.")
def train(config_path: Path | None, overrides: tuple[str, ...], no_resume: bool) -> None:
    """Train a ranker (resumes from OUT_DIR/checkpoints); works under torchrun."""
    from labworks.core import is_main_process
    from labworks.ltr.pipeline import Pipeline

    cfg = _config(config_path, overrides)
    pipe = Pipeline(cfg)
    history = pipe.fit(resume=not no_resume)
    if is_main_process():
        out = Path(cfg.out_dir)
        cfg.to_file(out / "config.yaml")
        report = {
            "best_epoch": history.best_epoch + 1,
            "valid": history.valid[history.best_epoch] if history.valid else {},
        }
        if pipe.test is not None:
            report["test"] = pipe.evaluate(pipe.test)
        (out / "metrics.json").write_text(json.dumps(report, indent=2))
        click.echo(json.dumps(report, indent=2))
        click.echo(f"model: {out / 'best.safetensors'}  curves: {out / 'training_curves.png'}")


@cli.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option("--k", "ks", type=int, multiple=True, default=(1, 5, 10), show_default=True)
@click.option(
    "--preset", default=None, help="Metric conventions: lightgbm, trec_eval, sklearn, tfr, paper ..."
)
def evaluate(checkpoint: Path, data_path: Path, ks: tuple[int, ...], preset: str | None) -> None:
    """NDCG@k of a trained model on a LibSVM/Parquet file."""
    from labworks.ltr.pipeline import Pipeline, load_dataset

    pipe = Pipeline.from_checkpoint(checkpoint)
    ds = load_dataset(data_path, pipe.train_data.n_features)
    click.echo(json.dumps(pipe.evaluate(ds, list(ks), preset), indent=2))


@cli.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV: qid, doc, label, score.",
)
def predict(checkpoint: Path, data_path: Path, out: Path) -> None:
    """Score every document of a file and export the scores as CSV."""
    from labworks.ltr.pipeline import Pipeline, load_dataset, write_scores

    pipe = Pipeline.from_checkpoint(checkpoint)
    ds = load_dataset(data_path, pipe.train_data.n_features)
    write_scores(ds, pipe.predict(ds), out)
    click.echo(f"scores for {ds.n_docs} documents in {ds.n_queries} queries: {out}")


@cli.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Data whose quantiles form the grid.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def explain(checkpoint: Path, data_path: Path, out: Path) -> None:
    """Export a ranking GAM's shape functions (CSV + PNG)."""
    from labworks.ltr.models import RankingGAM
    from labworks.ltr.pipeline import Pipeline, load_dataset

    pipe = Pipeline.from_checkpoint(checkpoint)
    if not isinstance(pipe.model, RankingGAM):
        raise click.ClickException(
            f"explain needs a GAM checkpoint (model.kind='gam'), got {pipe.cfg.model.kind!r}"
        )
    ds = load_dataset(data_path, pipe.train_data.n_features)
    folder = pipe.model.export_shape_functions(ds.features, out, names=ds.feature_names)
    click.echo(f"shape functions: {folder / 'shape_functions.csv'} and {folder / 'shape_functions.png'}")


@cli.command()
@_config_opt
@_set_opt
@click.option("--seeds", type=int, default=3, show_default=True, help="Ensemble members (DASALC-ens).")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("ltr-compare"), show_default=True
)
def compare(config_path: Path | None, overrides: tuple[str, ...], seeds: int, out: Path) -> None:
    """Train LightGBM LGBMRanker and our ranker on the same split; report both (needs lightgbm)."""
    from labworks.ltr.baseline import compare_with_lightgbm

    cfg = _config(config_path, overrides)
    result = compare_with_lightgbm(cfg, seeds=list(range(seeds)), out_dir=out)
    click.echo(result.to_markdown())
    click.echo(f"report: {out / 'comparison.md'}")


@cli.command()
@click.option("--queries", type=int, default=1000, show_default=True)
@click.option("--max-list-size", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="LibSVM (or .parquet) file."
)
def synth(queries: int, max_list_size: int, seed: int, out: Path) -> None:
    """Generate MSLR-like synthetic data (136 features, graded labels 0-4)."""
    from labworks.ltr.data import write_libsvm, write_parquet
    from labworks.ltr.synthetic import make_mslr_like

    ds = make_mslr_like(queries, max_list_size=max_list_size, seed=seed)
    (write_parquet if out.suffix == ".parquet" else write_libsvm)(ds, out)
    click.echo(f"{ds} -> {out}")
