"""Wilson / Newcombe intervals and the vectorised bootstrap against independent references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import labworks.fairness as lf
from labworks.fairness.bootstrap import bootstrap, bootstrap_ci
from labworks.fairness.intervals import difference_interval, newcombe_interval, wilson_interval
from labworks.fairness.plots import plot_group_rates

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize(("x", "n"), [(81, 263), (0, 10), (10, 10), (3, 7), (500, 1000)])
@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(x, n, conf):
    ref = stats.binomtest(x, n).proportion_ci(confidence_level=conf, method="wilson")
    lo, hi = wilson_interval(x, n, conf)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_wilson_empty_denominator_is_nan():
    lo, hi = wilson_interval(np.array([0, 1]), np.array([0, 2]))
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and not np.isnan(lo[1])


def test_newcombe_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10
    lo, hi = newcombe_interval(56, 70, 48, 80)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.0524, 0.3339)
    lo, hi = newcombe_interval(9, 10, 3, 10)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.1705, 0.8090)


def test_newcombe_difference_interval_from_group_metrics(synth):
    gm = lf.group_metrics(synth["y_true"], synth["y_pred"], sensitive_features=synth["race"])
    est, lo, hi = difference_interval(gm, "selection_rate", "c", "a")
    sr = gm.by_group("selection_rate")
    assert est == pytest.approx(sr[2] - sr[0])
    n = gm.n
    x = sr * n
    rlo, rhi = newcombe_interval(x[2], n[2], x[0], n[0])
    assert (lo, hi) == (pytest.approx(float(rlo)), pytest.approx(float(rhi)))
    assert lo < est < hi


def test_wilson_table_columns(synth):
    gm = lf.group_metrics(synth["y_true"], synth["y_pred"], sensitive_features=synth["race"])
    tab = gm.table(["tpr", "selection_rate"], ci="wilson")
    r = tab[(tab.group == "a") & (tab.metric == "true_positive_rate")].iloc[0]
    ref = stats.binomtest(round(r.numerator), int(r.denominator)).proportion_ci(method="wilson")
    assert (r.lower, r.upper) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    assert (tab.lower <= tab.value).all() and (tab.value <= tab.upper).all()


def test_bootstrap_is_seeded_and_conserves_rows(synth):
    gm = lf.group_metrics(synth["y_true"], synth["y_pred"], sensitive_features=synth[["race", "sex"]])
    a, b = bootstrap(gm, 200, seed=5), bootstrap(gm, 200, seed=5)
    np.testing.assert_array_equal(a.cells, b.cells)
    assert not np.array_equal(a.cells, bootstrap(gm, 200, seed=6).cells)
    np.testing.assert_array_equal(a.cells.sum((1, 2)), len(synth))  # multinomial: n rows per replicate
    s = bootstrap(gm, 200, seed=1, stratify=True)
    np.testing.assert_array_equal(s.cells.sum(2), np.broadcast_to(gm.n, (200, gm.n_groups)))


def test_bootstrap_spread_matches_binomial_theory(synth):
    gm = lf.group_metrics(synth["y_true"], synth["y_pred"], sensitive_features=synth["race"])
    res = bootstrap(gm, 4000, seed=0)
    p = gm.by_group("selection_rate")
    sd_theory = np.sqrt(p * (1 - p) / gm.n)
    sd_boot = np.nanstd(res.samples("selection_rate"), axis=0)
    np.testing.assert_allclose(sd_boot, sd_theory, rtol=0.08)
    assert np.all(
        np.abs(np.nanmean(res.samples("selection_rate"), axis=0) - p) < 4 * sd_theory / np.sqrt(4000) + 1e-4
    )


def test_bootstrap_matches_explicit_row_resampling():
    """Atom counts × one-hot equals explicitly resampled rows: same replicate distribution of every cell."""
    rng = np.random.default_rng(0)
    n = 400
    y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    g = rng.choice(["u", "v", "w"], n)
    w = rng.choice([0.5, 1.0, 2.0], n)
    gm = lf.group_metrics(y, p, sensitive_features=g, sample_weight=w)
    res = bootstrap(gm, 6000, seed=2)
    idx = rng.integers(0, n, size=(6000, n))
    naive = np.stack([np.bincount(gm.row_index[i], weights=w[i], minlength=12) for i in idx[:, :]]).reshape(
        6000, 3, 4
    )
    np.testing.assert_allclose(res.cells.mean(0), naive.mean(0), rtol=0.03, atol=0.3)
    np.testing.assert_allclose(res.cells.std(0), naive.std(0), rtol=0.06)


def test_weighted_many_atom_paths_agree_with_exact(synth):
    d = synth.iloc[:3000]
    gm = lf.group_metrics(d["y_true"], d["y_pred"], sensitive_features=d["race"], sample_weight=d["weight"])
    exact = bootstrap(gm, 1000, seed=0)  # (B × atoms) multinomial matrix
    gather = bootstrap(gm, 1000, seed=0, max_matrix=0)  # per-replicate index gather
    poisson = bootstrap(gm, 1000, seed=0, chunk_atoms=512, scheme="poisson", max_matrix=0)
    strat = bootstrap(gm, 1000, seed=0, stratify=True, max_matrix=0)
    assert exact.cells.shape == gather.cells.shape == poisson.cells.shape == strat.cells.shape
    for r in (gather, poisson, strat):
        np.testing.assert_allclose(
            np.nanstd(r.samples("tpr"), 0), np.nanstd(exact.samples("tpr"), 0), rtol=0.15
        )
        np.testing.assert_allclose(r.cells.mean(0), gm.cells, rtol=0.02)
    np.testing.assert_allclose(gather.cells.sum((1, 2)).mean(), gm.cells.sum(), rtol=0.01)
    # stratified resampling keeps each group's row count, so group totals vary far less than unstratified
    assert (np.std(strat.cells.sum(2), 0) < 0.5 * np.std(gather.cells.sum(2), 0)).all()
    for st in (False, True):  # the torch implementation of the same paths (used for GPUs), run on the CPU
        tr = bootstrap(gm, 400, seed=0, stratify=st, max_matrix=0, device="cpu")
        np.testing.assert_allclose(tr.cells.mean(0), gm.cells, rtol=0.03)
        np.testing.assert_allclose(
            np.nanstd(tr.samples("tpr"), 0), np.nanstd(exact.samples("tpr"), 0), rtol=0.2
        )
    with pytest.raises(ValueError, match="stratify"):
        bootstrap(gm, 10, scheme="poisson", stratify=True, max_matrix=0)


def test_bootstrap_close_to_fairlearn_intervals(synth):
    fm = pytest.importorskip("fairlearn.metrics")
    d = synth.iloc[:2000]
    y, p, sf = d["y_true"], d["y_pred"], d["race"]
    ref = fm.MetricFrame(
        metrics={"sr": fm.selection_rate, "tpr": fm.true_positive_rate},
        y_true=y, y_pred=p, sensitive_features=sf, n_boot=200, ci_quantiles=[0.025, 0.975], random_state=0,
    )  # fmt: skip
    ours = bootstrap_ci(y, p, sensitive_features=sf, n_boot=4000, seed=0)
    for key, m in (("sr", "selection_rate"), ("tpr", "true_positive_rate")):
        iv = ours.interval(m, 0.95)[:-1]
        lo, hi = ref.by_group_ci[0][key].to_numpy(), ref.by_group_ci[1][key].to_numpy()
        np.testing.assert_allclose(iv[:, 0], lo, atol=0.02)
        np.testing.assert_allclose(iv[:, 1], hi, atol=0.02)
    lo, hi = ours.comparison_interval("selection_rate")
    assert lo == pytest.approx(ref.difference_ci()[0]["sr"], abs=0.02)
    assert hi == pytest.approx(ref.difference_ci()[1]["sr"], abs=0.02)


def test_equalized_odds_interval_and_disparity_table(synth):
    res = bootstrap_ci(
        synth["y_true"], synth["y_pred"], sensitive_features=synth[["race", "sex"]], n_boot=500, seed=0
    )
    est = lf.equalized_odds_difference(
        synth["y_true"], synth["y_pred"], sensitive_features=synth[["race", "sex"]]
    )
    lo, hi = res.equalized_odds_interval()
    assert lo <= est <= hi and hi - lo < 0.2
    tab = res.disparity_table(reference=("a", "F"))
    assert set(tab["method"]) == {"between_groups", "to_overall", "vs_reference"}
    assert ((tab.lower <= tab.value + 1e-12) | tab.value.isna()).all()


def test_metric_frame_bootstrap_fast_path(synth):
    d = synth.iloc[:1500]
    mf = lf.MetricFrame(
        metrics=lf.selection_rate, y_true=d["y_true"], y_pred=d["y_pred"], sensitive_features=d["race"],
        n_boot=50, ci_quantiles=[0.05, 0.5, 0.95], random_state=1,
    )  # fmt: skip
    lo, mid, hi = mf.by_group_ci
    assert ((lo <= mid) & (mid <= hi)).all()
    assert isinstance(mf.difference_ci()[0], float)
    assert mf.difference_ci()[0] <= mf.difference() <= mf.difference_ci()[2]
    # a generic callable takes the row-resampling loop; both give intervals of similar width
    from sklearn.metrics import recall_score

    loop = lf.MetricFrame(
        metrics={"tpr": recall_score}, y_true=d["y_true"], y_pred=d["y_pred"], sensitive_features=d["race"],
        n_boot=200, ci_quantiles=[0.05, 0.95], random_state=1,
    )  # fmt: skip
    vec = lf.MetricFrame(
        metrics={"tpr": lf.true_positive_rate}, y_true=d["y_true"], y_pred=d["y_pred"], sensitive_features=d["race"],
        n_boot=2000, ci_quantiles=[0.05, 0.95], random_state=1,
    )  # fmt: skip
    w_loop = loop.by_group_ci[1]["tpr"] - loop.by_group_ci[0]["tpr"]
    w_vec = vec.by_group_ci[1]["tpr"] - vec.by_group_ci[0]["tpr"]
    np.testing.assert_allclose(w_vec, w_loop, rtol=0.25)


def test_plot_writes_png(tmp_path, synth):
    gm = lf.group_metrics(synth["y_true"], synth["y_pred"], sensitive_features=synth[["race", "sex"]])
    out = plot_group_rates(gm.table(ci="wilson"), tmp_path / "rates.png", title="synthetic")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert isinstance(pd.read_csv, object)


def test_plot_handles_degenerate_rates(tmp_path):
    # TPR = 1 in every group and FPR = 0: interval ends coincide with the estimate (no negative error bars)
    y = np.array([1, 1, 0, 0] * 30)
    gm = lf.group_metrics(y, y, sensitive_features=np.repeat(["a", "b", "c"], 40))
    tab = gm.table(["tpr", "fpr"], ci="wilson")
    assert (tab.lower <= tab.value).all() and (tab.value <= tab.upper).all()
    assert plot_group_rates(tab, tmp_path / "deg.png").stat().st_size > 1000


@pytest.mark.slow
def test_bootstrap_one_million_rows_is_fast_and_calibrated():
    import time

    rng = np.random.default_rng(0)
    n = 1_000_000
    g = rng.integers(0, 30, n)
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.7, y, 1 - y)
    gm = lf.group_metrics(y, p, sensitive_features=g)
    t = time.perf_counter()
    res = bootstrap(gm, 1000, seed=0)
    lo, hi = res.comparison_interval("selection_rate")
    assert time.perf_counter() - t < 5.0
    sr = gm.by_group("selection_rate")
    sd = np.nanstd(res.samples("selection_rate"), 0)
    np.testing.assert_allclose(sd, np.sqrt(sr * (1 - sr) / gm.n), rtol=0.1)
    assert lo < gm.difference("selection_rate") < hi


def test_bootstrap_statistic_of_a_mean_matches_normal_theory():
    from labworks.fairness.bootstrap import bootstrap_statistic

    x = np.random.default_rng(0).normal(size=2000)
    est, lo, hi = bootstrap_statistic(lambda r: x[r].mean(), len(x), n_boot=1000, seed=1)
    se = x.std() / np.sqrt(len(x))
    assert est == pytest.approx(x.mean())
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert lo < x.mean() < hi
    with pytest.raises(ValueError):
        bootstrap_statistic(lambda r: 0.0, 0)
