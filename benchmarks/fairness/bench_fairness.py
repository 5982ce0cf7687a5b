"""Benchmark: labworks.fairness vs fairlearn MetricFrame — group metrics and bootstrap intervals.

Usage: python benchmarks/fairness/bench_fairness.py [--rows 1000000] [--boot 1000] [--fairlearn-boot 3]

Both libraries compute selection rate, TPR and FPR for every intersectional group of 3 sensitive features,
plus demographic parity and equalized odds differences. Bootstrap: ours draws ``--boot`` replicates; fairlearn's
``MetricFrame(n_boot=k)`` is timed with k = ``--fairlearn-boot`` replicates and extrapolated linearly to
``--boot`` (its cost is one full MetricFrame per replicate), which the output states.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import labworks.fairness as lf
from labworks.fairness.bootstrap import bootstrap


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sf = pd.DataFrame(
        {
            "race": rng.choice(["a", "b", "c", "d", "e"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "sex": rng.choice(["F", "M"], n),
            "age": rng.choice(["<25", "25-45", ">45"], n),
        }
    )
    base = 0.3 + 0.05 * pd.factorize(sf["race"], sort=True)[0]
    y = (rng.random(n) < base).astype(np.int64)
    p = np.where(rng.random(n) < 0.75, y, 1 - y).astype(np.int64)
    return y, p, sf


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument(
        "--fairlearn-boot",
        type=int,
        default=3,
        help="replicates actually run by fairlearn (then extrapolated)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import fairlearn
    import fairlearn.metrics as fm

    warnings.simplefilter("ignore")
    y, p, sf = make_data(args.rows, args.seed)
    print(
        f"data: {args.rows:,} rows x 3 sensitive features -> {sf.groupby(list(sf.columns)).ngroups} intersectional groups"
    )
    print(f"fairlearn {fairlearn.__version__}, labworks-fairness {lf.__version__}\n")

    # ---- metrics -------------------------------------------------------------------------------
    def ours_metrics():
        gm = lf.group_metrics(y, p, sensitive_features=sf)
        return (
            gm.frame(["selection_rate", "tpr", "fpr"]),
            gm.difference("selection_rate"),
            gm.equalized_odds(),
        )

    def fl_metrics():
        mf = fm.MetricFrame(
            metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate, "fpr": fm.false_positive_rate},
            y_true=y, y_pred=p, sensitive_features=sf,
        )  # fmt: skip
        by = mf.by_group
        d = mf.difference()
        return by, d["selection_rate"], max(d["tpr"], d["fpr"])

    t_ours, (by_o, dp_o, eo_o) = timed(ours_metrics, repeat=3)
    t_fl, (by_f, dp_f, eo_f) = timed(fl_metrics, repeat=1)
    err = max(float(np.nanmax(np.abs(by_o.to_numpy() - by_f.to_numpy()))), abs(dp_o - dp_f), abs(eo_o - eo_f))
    print("group metrics (SR, TPR, FPR by group + DP and EO differences)")
    print(f"  labworks : {t_ours * 1e3:9.1f} ms")
    print(f"  fairlearn: {t_fl * 1e3:9.1f} ms")
    print(f"  ratio    : {t_fl / t_ours:9.1f}x faster   (max |difference| of values: {err:.1e})\n")

    # ---- bootstrap -----------------------------------------------------------------------------
    def ours_boot():
        gm = lf.group_metrics(y, p, sensitive_features=sf)
        res = bootstrap(gm, n_boot=args.boot, seed=args.seed)
        ivs = [res.interval(m) for m in ("selection_rate", "tpr", "fpr")]
        return ivs, res.comparison_interval("selection_rate"), res.equalized_odds_interval()

    t_ob, _ = timed(ours_boot, repeat=3)
    k = args.fairlearn_boot

    def fl_boot():
        mf = fm.MetricFrame(
            metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate, "fpr": fm.false_positive_rate},
            y_true=y, y_pred=p, sensitive_features=sf, n_boot=k, ci_quantiles=[0.025, 0.975], random_state=args.seed,
        )  # fmt: skip
        return mf.by_group_ci, mf.difference_ci()

    t_fb, _ = timed(fl_boot, repeat=1)
    per_rep = max(t_fb - t_fl, 1e-9) / k
    t_fb_full = t_fl + per_rep * args.boot
    print(f"bootstrap intervals, B = {args.boot} (per-group SR/TPR/FPR + DP and EO difference intervals)")
    print(f"  labworks : {t_ob * 1e3:9.1f} ms  (B = {args.boot}, measured)")
    print(f"  fairlearn: {t_fb:9.2f} s   measured with n_boot={k}; {per_rep:.2f} s per replicate")
    print(f"             {t_fb_full:9.1f} s   extrapolated linearly to n_boot={args.boot}")
    print(f"  ratio    : {t_fb_full / t_ob:9.0f}x faster (vs extrapolated fairlearn)")
    per_rep_ours = t_ob / args.boot
    print(f"  per replicate: labworks {per_rep_ours * 1e6:.1f} us vs fairlearn {per_rep * 1e3:.0f} ms\n")

    # ---- weighted bootstrap (every row its own atom: chunked Poisson matmul) -----------------
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    b_w = min(args.boot, 200)

    def ours_weighted():
        gm = lf.group_metrics(y, p, sensitive_features=sf, sample_weight=w)
        return bootstrap(gm, n_boot=b_w, seed=args.seed).interval("tpr")

    t_w, _ = timed(ours_weighted)
    print(
        f"weighted bootstrap (continuous weights: exact per-replicate row counts, CPU), B = {b_w}: {t_w:.2f} s"
    )


if __name__ == "__main__":
    main()
