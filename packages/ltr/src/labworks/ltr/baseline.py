"""The DASALC protocol in a box: LightGBM ``LGBMRanker`` (the "λMART_GBM" baseline) and our
ranker trained on the same split, evaluated with identical metric settings, with a paired
bootstrap 95% interval on the per-query differences. Needs the optional ``lightgbm`` dependency.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labworks.core import atomic_write_text
from labworks.ltr.config import RankingConfig
from labworks.ltr.data import RankingDataset
from labworks.ltr.pipeline import DatasetBuilder, Ensemble, evaluate_scores

__all__ = ["ComparisonResult", "compare_with_lightgbm", "fit_lightgbm", "paired_bootstrap"]

#: grid searched on the validation set (a CPU-sized subset of the DASALC paper's grid)
DEFAULT_GRID: dict[str, list[Any]] = {
    "num_leaves": [15, 31, 63],
    "learning_rate": [0.05, 0.1],
    "min_child_samples": [10, 50],
}


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a − b`` over queries and its 95% percentile bootstrap interval (queries resampled)."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    diff = diff[~np.isnan(diff)]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[idx].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def fit_lightgbm(train: RankingDataset, valid: RankingDataset, params: dict[str, Any], seed: int = 0) -> Any:
    """``LGBMRanker`` with early stopping on the validation NDCG."""
    try:
        import lightgbm as lgb
    except ImportError as err:
        raise ImportError(
            "the LightGBM baseline needs lightgbm: pip install 'labworks-ltr[lightgbm]'"
        ) from err

    model = lgb.LGBMRanker(n_estimators=1000, random_state=seed, verbose=-1, **params)
    if "eval_X" in inspect.signature(model.fit).parameters:  # lightgbm >= 4.7
        evals: dict[str, Any] = {"eval_X": (valid.features,), "eval_y": (valid.labels,)}
    else:
        evals = {"eval_set": [(valid.features, valid.labels)]}
    model.fit(
        train.features,
        train.labels,
        group=train.list_sizes,
        **evals,
        eval_group=[valid.list_sizes],
        eval_at=[5],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    return model


@dataclass
class ComparisonResult:
    """Test metrics of both rankers and the paired difference (ours − LightGBM) with its 95% CI."""

    rows: list[dict[str, Any]]
    lightgbm_params: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_markdown(self) -> str:
        lines = [
            "| metric | LGBMRanker | labworks | difference (95% CI) | verdict |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r['metric']} | {r['lightgbm']:.4f} | {r['labworks']:.4f} | "
                f"{r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {r['verdict']} |"
            )
        lines.append("")
        lines.append(f"LightGBM parameters (tuned on validation): `{json.dumps(self.lightgbm_params)}`")
        lines.append("Training time: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items()))
        return "\n".join(lines)


def compare_with_lightgbm(
    cfg: RankingConfig,
    *,
    seeds: list[int] | None = None,
    ks: list[int] | None = None,
    grid: dict[str, list[Any]] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    train: RankingDataset | None = None,
    valid: RankingDataset | None = None,
    test: RankingDataset | None = None,
) -> ComparisonResult:
    """Train both rankers on the same split and compare them on the test set.

    LightGBM is tuned over ``grid`` on validation NDCG@5 (early stopping inside each fit); our
    ranker is an ensemble over ``seeds`` of the model in ``cfg``. Metric conventions are
    ``cfg.train.metric_preset`` for both.
    """
    seeds = seeds or [0]
    ks = ks or cfg.train.eval_k
    if train is None:
        train, valid, test = DatasetBuilder(cfg.data, cfg.seed).build()
    if valid is None or test is None:
        raise ValueError("compare_with_lightgbm needs validation and test sets")
    preset = cfg.train.metric_preset

    t0 = time.perf_counter()
    best, best_params = -np.inf, {}
    grid = grid or DEFAULT_GRID
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid.keys(), values, strict=True))
        model = fit_lightgbm(train, valid, params, seed=cfg.seed)
        score = evaluate_scores(valid, model.predict(valid.features), [5], preset)["ndcg@5"]
        if score > best:
            best, best_params, best_model = score, params, model
    lgb_scores = best_model.predict(test.features)
    t1 = time.perf_counter()
    ens = Ensemble.train(cfg, seeds, train=train, valid=valid, test=test)
    our_scores = ens.predict(test)
    t2 = time.perf_counter()

    ours = evaluate_scores(test, our_scores, ks, preset, per_query=True)
    theirs = evaluate_scores(test, lgb_scores, ks, preset, per_query=True)
    rows = []
    for name in ours:
        d, lo, hi = paired_bootstrap(ours[name], theirs[name], seed=cfg.seed)
        verdict = "labworks better" if lo > 0 else ("LightGBM better" if hi < 0 else "tie (within 95% CI)")
        rows.append(
            {
                "metric": name,
                "lightgbm": float(np.nanmean(theirs[name])),
                "labworks": float(np.nanmean(ours[name])),
                "diff": d,
                "ci_low": lo,
                "ci_high": hi,
                "verdict": verdict,
            }
        )
    result = ComparisonResult(
        rows, best_params, {"lightgbm (grid)": t1 - t0, f"labworks ({len(seeds)} seeds)": t2 - t1}
    )
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_text(
            out / "comparison.md",
            f"# LGBMRanker vs labworks ({cfg.model.kind})\n\n" + result.to_markdown() + "\n",
        )
        atomic_write_text(
            out / "comparison.json",
            json.dumps({"rows": rows, "lightgbm_params": best_params, "seconds": result.seconds}, indent=2),
        )
    return result
