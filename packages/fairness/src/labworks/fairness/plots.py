"""PNG plots (matplotlib's Agg canvas; no global backend change): per-group rates with intervals, ROC by group."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labworks.core import atomic_write_bytes

__all__ = ["plot_curves_by_group", "plot_group_rates"]


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def plot_group_rates(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    metrics: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One panel per metric: each group's rate as a point with its interval; the overall value as a line.

    Args:
        table: tidy table from ``GroupMetrics.table(ci=...)`` (columns group, metric, value[, lower, upper], estimable).
        path: output PNG path (written atomically).
    """
    metrics = list(metrics) if metrics is not None else list(dict.fromkeys(table["metric"]))
    if not metrics:
        raise ValueError("no metrics to plot")
    groups = [g for g in dict.fromkeys(table["group"]) if g != "overall"]
    fig = Figure(figsize=(3.2 * len(metrics), 0.45 * len(groups) + 1.6))
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    ypos = np.arange(len(groups))
    for ax, m in zip(axes, metrics, strict=True):
        t = table[table["metric"] == m].set_index("group")
        vals = t.reindex(groups)["value"].to_numpy(dtype=float)
        if {"lower", "upper"} <= set(t.columns):
            lo = t.reindex(groups)["lower"].to_numpy(dtype=float)
            hi = t.reindex(groups)["upper"].to_numpy(dtype=float)
            err = np.clip(np.vstack([vals - lo, hi - vals]), 0, None)  # rounding at p = 0 or 1
            ax.errorbar(vals, ypos, xerr=np.nan_to_num(err), fmt="o", color="C0", ecolor="C0", capsize=3)
        else:
            ax.plot(vals, ypos, "o", color="C0")
        est = t.reindex(groups)["estimable"].fillna(False).to_numpy(dtype=bool)
        for y in ypos[~est]:
            ax.text(
                0.02,
                y,
                "not estimable",
                va="center",
                fontsize=7,
                color="C3",
                transform=ax.get_yaxis_transform(),
            )
        if "overall" in t.index:
            ax.axvline(float(t.loc["overall", "value"]), color="0.5", ls="--", lw=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(m.replace("_", " "), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, groups, fontsize=8)
    axes[0].invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_curves_by_group(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    xlabel: str,
    ylabel: str,
    title: str,
    diagonal: bool = False,
) -> Path:
    """Overlay one curve (x, y) per group (ROC or precision–recall)."""
    fig = Figure(figsize=(5, 4.2))
    ax = fig.subplots()
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name, lw=1.4)
    if diagonal:
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)
