"""``labworks demo`` entry: the report on COMPAS when the shared file is present, else on synthetic data."""

from __future__ import annotations

from pathlib import Path

from labworks.fairness.data import find_compas, load_compas, make_synthetic
from labworks.fairness.report import ReportConfig, run_report

__all__ = ["demo"]


def demo(out_dir: Path, seed: int = 0) -> Path:
    """Run the fairness report; returns the report path.

    Looks for ``../shared/data/fairness/compas-scores-two-years.csv`` (from the working directory or the repo
    root) or $LABWORKS_FAIRNESS_DATA; falls back to seeded synthetic data with known disparities.
    """
    out_dir = Path(out_dir)
    path = find_compas()
    if path is not None:
        df = load_compas(path)
        cfg = ReportConfig(label="y_true", pred="y_pred", score="score", groups=("race",), reference="Caucasian",
                           seed=seed, worldview="wysiwyg", title="COMPAS (ProPublica filter, decile ≥ 5)")  # fmt: skip
    else:
        df = make_synthetic(20_000, seed=seed)
        cfg = ReportConfig(label="y_true", pred="y_pred", score="score", groups=("race", "sex"), weight="weight",
                           reference="a & F", seed=seed, title="Synthetic data with known disparities")  # fmt: skip
    return run_report(df, cfg, out_dir)
