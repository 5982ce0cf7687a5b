"""PNG plots: reward curves, throughput scaling, conservation drift, trajectories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from labworks.core import atomic_path

__all__ = ["plot_reward_curves", "plot_scaling"]


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_reward_curves(
    runs: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, title: str = "", x: str = "steps"
) -> Path:
    """runs: label -> history with ``eval_steps``/``eval_return`` (and ``steps``/``train_return``)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, h in runs.items():
        xs = h.get("eval_seconds" if x == "seconds" else "eval_steps", [])
        if xs:
            ax.plot(xs, h["eval_return"], marker="o", ms=3, label=f"{label} (eval)")
        if h.get("train_return") and x == "steps":
            ax.plot(h["steps"], h["train_return"], alpha=0.5, label=f"{label} (train)")
    ax.set_xlabel("environment steps" if x == "steps" else "seconds")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_scaling(
    series: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    path: str | Path,
    title: str = "",
    hlines: Mapping[str, float] | None = None,
) -> Path:
    """series: label -> (batch sizes, steps/s); hlines: label -> constant steps/s."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.loglog(xs, ys, marker="o", label=label)
    for label, y in (hlines or {}).items():
        ax.axhline(y, ls="--", color="gray")
        ax.text(ax.get_xlim()[0], y * 1.05, label, fontsize=8)
    ax.set_xlabel("parallel environments")
    ax.set_ylabel("physics steps / s")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_conservation(results: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path) -> Path:
    """Drift of linear/angular momentum and energy against time step, one line per engine/integrator."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key, title in zip(
        axes,
        ("linear", "angular", "energy"),
        ("linear momentum drift", "angular momentum drift", "relative energy drift"),
        strict=True,
    ):
        for label, r in results.items():
            ys = [max(v, 1e-17) for v in r[key]]
            ax.loglog(r["dt"], ys, marker="o", ls="-" if label.startswith("rigidsim") else "--", label=label)
        ax.set_xlabel("time step (s)")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    return _save(fig, path)
