"""Quality: tuned LightGBM LGBMRanker vs a labworks DASALC ensemble, same split, same metrics
(the DASALC protocol), with a paired bootstrap 95% interval of the per-query difference.

    python benchmarks/ltr/bench_quality.py lightgbm-example [--seeds 5]
    python benchmarks/ltr/bench_quality.py synthetic [--queries 10000] [--seeds 3]

`lightgbm-example` reads ../shared/data/ltr/lightgbm-lambdarank (201 train / 50 test queries;
validation = 20% of the training queries). Metric preset: lightgbm (exp gain, empty -> 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labworks.ltr.baseline import compare_with_lightgbm
from labworks.ltr.config import DataConfig, ModelConfig, RankingConfig, TrainConfig
from labworks.ltr.data import read_libsvm
from labworks.ltr.synthetic import make_mslr_like

ROOT = Path(__file__).resolve().parents[2]
SMALL_GRID: dict[str, list[object]] = {
    "num_leaves": [31, 63],
    "learning_rate": [0.05, 0.1],
    "min_child_samples": [10],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "dataset", choices=["lightgbm-example", "synthetic"], nargs="?", default="lightgbm-example"
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("bench-output/ltr"))
    parser.add_argument(
        "--lgbm-grid", choices=["full", "small"], default="full", help="small: 4 LightGBM configurations"
    )
    args = parser.parse_args()

    if args.dataset == "lightgbm-example":
        folder = ROOT.parent / "shared" / "data" / "ltr" / "lightgbm-lambdarank"
        full = read_libsvm(folder / "rank.train")
        test = read_libsvm(folder / "rank.test", n_features=full.n_features)
        train, valid = full.split([0.8, 0.2], seed=0)
        model = ModelConfig(
            kind="dasalc",
            hidden=128,
            n_dnn_layers=2,
            n_attention_layers=2,
            head_size=32,
            noise_std=0.5,
            dropout=0.4,
        )
        data = DataConfig(batch_size=8, max_list_size=None)
        train_cfg = TrainConfig(epochs=args.epochs, patience=12, lr=1e-3)
    else:
        full = make_mslr_like(args.queries, max_list_size=300, seed=0)
        train, valid, test = full.split([0.7, 0.15, 0.15], seed=0)
        model = ModelConfig(
            kind="dasalc",
            hidden=256,
            n_dnn_layers=3,
            n_attention_layers=2,
            head_size=32,
            noise_std=0.5,
            list_norm=True,
        )
        data = DataConfig(batch_size=32, max_list_size=200)
        train_cfg = TrainConfig(epochs=min(args.epochs, 20), patience=4, lr=1e-3)
    cfg = RankingConfig(
        out_dir=str(args.out / args.dataset / "runs"), data=data, model=model, train=train_cfg
    )
    print(f"{args.dataset}: train {train}, valid {valid}, test {test}")
    result = compare_with_lightgbm(
        cfg,
        seeds=list(range(args.seeds)),
        train=train,
        valid=valid,
        test=test,
        grid=SMALL_GRID if args.lgbm_grid == "small" else None,
        out_dir=args.out / args.dataset,
    )
    print(result.to_markdown())


if __name__ == "__main__":
    main()
