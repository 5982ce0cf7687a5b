"""``labworks fairness``: the command-line face of the package."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["cli"]


@click.group(name="fairness", context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Group-fairness reports: per-group rates with intervals, disparities, impossibility check."""


@cli.command()
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", required=True, help="Column with the true binary label.")
@click.option("--pred", default=None, help="Column with the binary prediction.")
@click.option(
    "--score",
    default=None,
    help="Column with a score (ROC, calibration, sweeps; thresholded if --pred is absent).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    required=True,
    help="Sensitive-feature column (repeat for intersectional groups).",
)
@click.option("--weight", default=None, help="Column with sample weights.")
@click.option(
    "--reference",
    default=None,
    help="Privileged group for AIF360-style signed comparisons ('a & b' for several groups).",
)
@click.option("--pos-label", default="1", show_default=True, help="Positive label value.")
@click.option(
    "--threshold", type=float, default=0.5, show_default=True, help="Score threshold when --pred is absent."
)
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--min-count",
    type=int,
    default=10,
    show_default=True,
    help="Rows a rate's denominator needs to be estimable.",
)
@click.option(
    "--worldview",
    type=click.Choice(["wysiwyg", "wae"]),
    default=None,
    help="Friedler et al. preset of criteria to emphasise.",
)
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("fairness-report"),
    show_default=True,
)
@click.option("--title", default="Fairness report", show_default=True)
def report(data: Path, label: str, pred: str | None, score: str | None, groups: tuple[str, ...], weight: str | None, reference: str | None,
           pos_label: str, threshold: float, n_boot: int, confidence: float, seed: int, min_count: int, worldview: str | None,
           fmt: str, out_dir: Path, title: str) -> None:  # fmt: skip
    """Write a fairness report (Markdown or HTML + PNG plots + tidy CSVs) for DATA.csv."""
    from labworks.core import ConfigError
    from labworks.fairness.report import ReportConfig, run_report

    try:
        cfg = ReportConfig.from_dict(
            {"label": label, "pred": pred, "score": score, "groups": groups, "weight": weight, "reference": reference,
             "pos_label": pos_label, "threshold": threshold, "n_boot": n_boot, "confidence": confidence, "seed": seed,
             "min_count": min_count, "format": fmt, "worldview": worldview, "title": title},
            source="command line",
        )  # fmt: skip
        path = run_report(data, cfg, out_dir)
    except (ConfigError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"report written to {path}")
