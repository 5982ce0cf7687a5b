"""Exactness of group metrics and the fairlearn-compatible API against fairlearn 0.15 (1e-12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import labworks.fairness as lf

fm = pytest.importorskip("fairlearn.metrics")

TOL = 1e-12
FUNCS = [
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
]


def _sf(df: pd.DataFrame, kind: str):
    return {"race": df["race"], "race_sex": df[["race", "sex"]], "three": df[["race", "sex", "age_band"]]}[
        kind
    ]


@pytest.mark.parametrize("kind", ["race", "race_sex", "three"])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("weighted", [False, True])
def test_top_level_functions_match_fairlearn(synth, kind, method, weighted):
    y, p = synth["y_true"].to_numpy(), synth["y_pred"].to_numpy()
    w = synth["weight"].to_numpy() if weighted else None
    sf = _sf(synth, kind)
    for name in FUNCS:
        ours = getattr(lf, name)(y, p, sensitive_features=sf, method=method, sample_weight=w)
        ref = getattr(fm, name)(y, p, sensitive_features=sf, method=method, sample_weight=w)
        assert ours == pytest.approx(ref, abs=TOL), name
    for name in ["equalized_odds_difference", "equalized_odds_ratio"]:
        for agg in ["worst_case", "mean"]:
            ours = getattr(lf, name)(y, p, sensitive_features=sf, method=method, sample_weight=w, agg=agg)
            ref = getattr(fm, name)(y, p, sensitive_features=sf, method=method, sample_weight=w, agg=agg)
            assert ours == pytest.approx(ref, abs=TOL), (name, agg)


def test_scalar_rate_functions_match_fairlearn(synth):
    y, p, w = synth["y_true"], synth["y_pred"], synth["weight"]
    for name in ["true_positive_rate", "false_positive_rate", "true_negative_rate", "false_negative_rate"]:
        assert getattr(lf, name)(y, p, sample_weight=w) == pytest.approx(
            getattr(fm, name)(y, p, sample_weight=w), abs=TOL
        )
    assert lf.selection_rate(y, p, sample_weight=w) == pytest.approx(
        fm.selection_rate(y, p, sample_weight=w), abs=TOL
    )
    assert lf.mean_prediction(y, synth["score"], sample_weight=w) == pytest.approx(
        fm.mean_prediction(y, synth["score"], sample_weight=w), abs=TOL
    )
    assert lf.count(y, p) == fm.count(y, p)


def test_metric_frame_matches_fairlearn(synth):
    y, p, w = synth["y_true"], synth["y_pred"], synth["weight"]
    sf = synth[["race", "sex"]]
    ours_m = {
        "sr": lf.selection_rate,
        "tpr": lf.true_positive_rate,
        "fpr": lf.false_positive_rate,
        "n": lf.count,
    }
    ref_m = {
        "sr": fm.selection_rate,
        "tpr": fm.true_positive_rate,
        "fpr": fm.false_positive_rate,
        "n": fm.count,
    }
    sp = {k: {"sample_weight": w} for k in ["sr", "tpr", "fpr"]}
    ours = lf.MetricFrame(metrics=ours_m, y_true=y, y_pred=p, sensitive_features=sf, sample_params=sp)
    ref = fm.MetricFrame(metrics=ref_m, y_true=y, y_pred=p, sensitive_features=sf, sample_params=sp)
    pd.testing.assert_frame_equal(ours.by_group.astype(float), ref.by_group.astype(float), atol=TOL, rtol=0)
    pd.testing.assert_series_equal(ours.overall.astype(float), ref.overall.astype(float), atol=TOL, rtol=0)
    for method in ["between_groups", "to_overall"]:
        pd.testing.assert_series_equal(
            ours.difference(method=method), ref.difference(method=method), atol=TOL, rtol=0
        )
        pd.testing.assert_series_equal(ours.ratio(method=method), ref.ratio(method=method), atol=TOL, rtol=0)
    pd.testing.assert_series_equal(
        ours.group_min().astype(float), ref.group_min().astype(float), atol=TOL, rtol=0
    )
    pd.testing.assert_series_equal(
        ours.group_max().astype(float), ref.group_max().astype(float), atol=TOL, rtol=0
    )


def test_metric_frame_single_callable_and_generic_metric(synth):
    from sklearn.metrics import recall_score

    y, p, sf = synth["y_true"], synth["y_pred"], synth["race"]
    ours = lf.MetricFrame(metrics=recall_score, y_true=y, y_pred=p, sensitive_features=sf)
    ref = fm.MetricFrame(metrics=recall_score, y_true=y, y_pred=p, sensitive_features=sf)
    pd.testing.assert_series_equal(ours.by_group.astype(float), ref.by_group.astype(float), atol=TOL, rtol=0)
    assert ours.overall == pytest.approx(ref.overall, abs=TOL)
    assert ours.difference() == pytest.approx(ref.difference(), abs=TOL)
    assert ours.ratio(method="to_overall") == pytest.approx(ref.ratio(method="to_overall"), abs=TOL)


def test_empty_intersection_is_nan_with_zero_count():
    y = np.array([1, 0, 1, 0, 1, 1])
    p = np.array([1, 0, 0, 1, 1, 0])
    sf = pd.DataFrame({"a": ["x", "x", "y", "y", "y", "x"], "b": [0, 1, 0, 0, 0, 1]})
    mf = lf.MetricFrame(metrics=lf.selection_rate, y_true=y, y_pred=p, sensitive_features=sf)
    assert np.isnan(mf.by_group.loc[("y", 1)])
    assert mf.counts.loc[("y", 1)] == 0
    ref = fm.MetricFrame(metrics=fm.selection_rate, y_true=y, y_pred=p, sensitive_features=sf)
    pd.testing.assert_series_equal(mf.by_group.astype(float), ref.by_group.astype(float), atol=TOL, rtol=0)


def test_compas_reference_numbers(compas):
    d = compas[compas["race"].isin(["African-American", "Caucasian"])]
    y, p, sf = d["y_true"], d["y_pred"], d["race"]
    assert len(d) == 5278
    gm = lf.group_metrics(y, p, sensitive_features=sf)
    tpr = dict(zip(gm.groups.labels(), gm.by_group("tpr"), strict=True))
    fpr = dict(zip(gm.groups.labels(), gm.by_group("fpr"), strict=True))
    assert tpr["African-American"] == pytest.approx(0.7152, abs=1e-4)
    assert tpr["Caucasian"] == pytest.approx(0.5037, abs=1e-4)
    assert fpr["African-American"] == pytest.approx(0.4234, abs=1e-4)
    assert fpr["Caucasian"] == pytest.approx(0.2201, abs=1e-4)
    assert lf.demographic_parity_difference(y, p, sensitive_features=sf) == pytest.approx(0.245107, abs=1e-6)
    assert lf.demographic_parity_ratio(y, p, sensitive_features=sf) == pytest.approx(0.574513, abs=1e-6)
    assert lf.equalized_odds_difference(y, p, sensitive_features=sf) == pytest.approx(0.211582, abs=1e-6)
    for name in [*FUNCS, "equalized_odds_difference", "equalized_odds_ratio"]:
        assert getattr(lf, name)(y, p, sensitive_features=sf) == pytest.approx(
            getattr(fm, name)(y, p, sensitive_features=sf), abs=TOL
        )


def test_compas_all_races_and_sex_intersection_match_fairlearn(compas):
    y, p = compas["y_true"], compas["y_pred"]
    for sf in (compas["race"], compas[["race", "sex"]]):
        for method in ["between_groups", "to_overall"]:
            for name in FUNCS:
                ours = getattr(lf, name)(y, p, sensitive_features=sf, method=method)
                assert ours == pytest.approx(
                    getattr(fm, name)(y, p, sensitive_features=sf, method=method), abs=TOL
                )
    # three groups: the two conventions genuinely differ (0.2990 max−min vs AIF360's pooled 0.2038)
    d = compas[compas["race"].isin(["African-American", "Caucasian", "Hispanic"])]
    dpd = lf.demographic_parity_difference(d["y_true"], d["y_pred"], sensitive_features=d["race"])
    spd = lf.demographic_parity_difference(
        d["y_true"], d["y_pred"], sensitive_features=d["race"], method="vs_reference", reference="Caucasian"
    )
    assert dpd == pytest.approx(0.2990, abs=1e-4)
    assert spd == pytest.approx(0.2038, abs=1e-4)


def test_torch_inputs_match_numpy(synth):
    y, p, w = synth["y_true"].to_numpy(), synth["y_pred"].to_numpy(), synth["weight"].to_numpy()
    codes = pd.factorize(synth["race"], sort=True)[0]
    ref = lf.equalized_odds_difference(y, p, sensitive_features=codes, sample_weight=w)
    ours = lf.equalized_odds_difference(
        torch.tensor(y),
        torch.tensor(p),
        sensitive_features=torch.tensor(codes),
        sample_weight=torch.tensor(w),
    )
    assert ours == pytest.approx(ref, abs=TOL)
    gm = lf.group_metrics(
        torch.tensor(y), torch.tensor(p), sensitive_features=torch.tensor(np.stack([codes, y], 1))
    )
    assert gm.n_groups == 6


def test_pyarrow_and_list_inputs(synth):
    pa = pytest.importorskip("pyarrow")
    y, p, r = synth["y_true"], synth["y_pred"], synth["race"]
    ref = lf.demographic_parity_difference(y, p, sensitive_features=r)
    assert lf.demographic_parity_difference(
        pa.array(y), pa.array(p), sensitive_features=pa.array(r)
    ) == pytest.approx(ref, abs=TOL)
    assert lf.demographic_parity_difference(list(y), list(p), sensitive_features=list(r)) == pytest.approx(
        ref, abs=TOL
    )


def test_closed_form_rates():
    # group x: TP=2 FP=1 TN=3 FN=4 ; group y: TP=1 FP=0 TN=1 FN=0
    y = [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0]  # last two rows: group y
    p = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    g = ["x"] * 10 + ["y"] * 2
    gm = lf.group_metrics(y, p, sensitive_features=g)
    np.testing.assert_array_equal(gm.cells, [[2, 1, 3, 4], [1, 0, 1, 0]])
    expect = {
        "selection_rate": [0.3, 0.5],
        "tpr": [2 / 6, 1.0],
        "fpr": [0.25, 0.0],
        "tnr": [0.75, 1.0],
        "fnr": [4 / 6, 0.0],
        "ppv": [2 / 3, 1.0],
        "fdr": [1 / 3, 0.0],
        "npv": [3 / 7, 1.0],
        "for": [4 / 7, 0.0],
        "accuracy": [0.5, 1.0],
        "error_rate": [0.5, 0.0],
        "base_rate": [0.6, 0.5],
    }
    for m, v in expect.items():
        np.testing.assert_allclose(gm.by_group(m), v, atol=TOL)
    assert gm.difference("fpr") == pytest.approx(0.25)
    assert gm.ratio("selection_rate") == pytest.approx(0.6)
    assert gm.difference("selection_rate", "vs_reference", reference="y") == pytest.approx(-0.2)
    np.testing.assert_array_equal(gm.positives, [6, 1])
    np.testing.assert_array_equal(gm.negatives, [4, 1])


def test_group_without_positives_is_flagged_not_zero():
    y = np.array([1, 0, 1, 0, 0, 0])
    p = np.array([1, 0, 0, 1, 0, 1])
    g = np.array(["a", "a", "a", "b", "b", "b"])  # group b has no positives
    gm = lf.group_metrics(y, p, sensitive_features=g)
    assert np.isnan(gm.by_group("tpr")[1])
    tab = gm.table(["tpr"])
    row = tab[(tab.group == "b") & (tab.metric == "true_positive_rate")].iloc[0]
    assert not row.estimable and row.positives == 0 and row.n == 3
    with pytest.warns(lf.NotEstimableWarning, match="b"):
        eo = lf.equal_opportunity_difference(y, p, sensitive_features=g)
    assert np.isnan(eo)  # only one estimable group: no comparison, not 0
    # fairlearn reports a silent 0 TPR for b (and hence a gap of 0.5); we do not
    assert (
        fm.MetricFrame(metrics=fm.true_positive_rate, y_true=y, y_pred=p, sensitive_features=g).by_group["b"]
        == 0
    )


def test_min_count_guard():
    rng = np.random.default_rng(1)
    g = np.array(["big"] * 500 + ["tiny"] * 4)
    y = rng.integers(0, 2, 504)
    p = rng.integers(0, 2, 504)
    gm = lf.group_metrics(y, p, sensitive_features=g, min_count=10)
    assert not gm.estimable("selection_rate")[1]
    assert bool(gm.counts_table()["small_group"].iloc[1])
    with pytest.warns(lf.NotEstimableWarning):
        assert np.isnan(gm.difference("selection_rate"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"y_true": [1, 0, 1], "y_pred": [1, 0], "sensitive_features": ["a", "b", "a"]},
            "mismatched lengths",
        ),
        ({"y_true": [1, 0, 1], "y_pred": [1, 0, 1], "sensitive_features": ["a", "b"]}, "mismatched lengths"),
        ({"y_true": [1.0, np.nan, 1.0], "y_pred": [1, 0, 1], "sensitive_features": ["a", "b", "a"]}, "NaN"),
        ({"y_true": [0, 1, 2], "y_pred": [1, 0, 1], "sensitive_features": ["a", "b", "a"]}, "binary"),
        ({"y_true": [0, 1, 1], "y_pred": [1, 0, 1], "sensitive_features": ["a", None, "a"]}, "NaN"),
        (
            {
                "y_true": [0, 1, 1],
                "y_pred": [1, 0, 1],
                "sensitive_features": ["a", "b", "a"],
                "sample_weight": [1, -1, 1],
            },
            "non-negative",
        ),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lf.demographic_parity_difference(**kwargs)


def test_unknown_reference_group():
    with pytest.raises(ValueError, match="unknown reference group 'zz'"):
        lf.demographic_parity_difference(
            [1, 0, 1], [1, 0, 0], sensitive_features=["a", "b", "a"], method="vs_reference", reference="zz"
        )
    with pytest.raises(ValueError, match="unknown comparison method"):
        lf.demographic_parity_difference(
            [1, 0, 1], [1, 0, 0], sensitive_features=["a", "b", "a"], method="pairwise"
        )
    with pytest.raises(ValueError, match="agg"):
        lf.equalized_odds_difference([1, 0, 1], [1, 0, 0], sensitive_features=["a", "b", "a"], agg="max")


def test_tidy_table_layout(synth):
    gm = lf.group_metrics(synth["y_true"], synth["y_pred"], sensitive_features=synth[["race", "sex"]])
    tab = gm.table(["selection_rate", "tpr"])
    assert len(tab) == 2 * (6 + 1)
    assert {"group", "race", "sex", "metric", "value", "n", "positives", "negatives", "estimable"} <= set(
        tab.columns
    )
    overall = tab[(tab.group == "overall") & (tab.metric == "selection_rate")].value.iloc[0]
    assert overall == pytest.approx(synth["y_pred"].mean(), abs=TOL)


def test_predictive_parity_and_error_rate_measures_match_metric_frame(synth):
    from sklearn.metrics import precision_score

    y, p, sf, w = synth["y_true"], synth["y_pred"], synth[["race", "sex"]], synth["weight"]
    ref = fm.MetricFrame(
        metrics=precision_score, y_true=y, y_pred=p, sensitive_features=sf, sample_params={"sample_weight": w}
    )
    assert lf.predictive_parity_difference(y, p, sensitive_features=sf, sample_weight=w) == pytest.approx(
        ref.difference(), abs=TOL
    )
    assert lf.predictive_parity_ratio(
        y, p, sensitive_features=sf, sample_weight=w, method="to_overall"
    ) == pytest.approx(ref.ratio(method="to_overall"), abs=TOL)
    err = fm.MetricFrame(
        metrics=lambda a, b: float(np.mean(np.asarray(a) != np.asarray(b))),
        y_true=y,
        y_pred=p,
        sensitive_features=sf,
    )
    assert lf.error_rate_difference(y, p, sensitive_features=sf) == pytest.approx(err.difference(), abs=TOL)
    assert lf.metric_ratio(y, p, sensitive_features=sf, metric="error") == pytest.approx(err.ratio(), abs=TOL)
    with pytest.raises(ValueError, match="unknown metric"):
        lf.metric_difference(y, p, sensitive_features=sf, metric="f1")


@pytest.mark.gpu
def test_cuda_tensors_match_numpy(synth):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    y, p, w = synth["y_true"].to_numpy(), synth["y_pred"].to_numpy(), synth["weight"].to_numpy()
    codes = pd.factorize(synth["race"], sort=True)[0] * 2 + (synth["sex"] == "M").to_numpy()
    dev = torch.device("cuda")
    ours = lf.group_metrics(
        torch.tensor(y, device=dev),
        torch.tensor(p, device=dev),
        sensitive_features=torch.tensor(codes, device=dev),
        sample_weight=torch.tensor(w, device=dev),
    )
    ref = lf.group_metrics(y, p, sensitive_features=codes, sample_weight=w)
    np.testing.assert_allclose(ours.cells, ref.cells, rtol=1e-12)
    assert ours.equalized_odds() == pytest.approx(ref.equalized_odds(), abs=TOL)
    from labworks.fairness.bootstrap import bootstrap

    res = bootstrap(ref, 500, seed=0, max_matrix=0, scheme="poisson", device="cuda")
    np.testing.assert_allclose(res.cells.mean(0), ref.cells, rtol=0.03)


def test_single_group_compares_to_itself_like_fairlearn():
    y, p, g = [1, 0, 1, 0], [1, 0, 0, 1], ["a"] * 4
    assert (
        lf.demographic_parity_difference(y, p, sensitive_features=g)
        == fm.demographic_parity_difference(y, p, sensitive_features=g)
        == 0
    )
    assert lf.equalized_odds_ratio(y, p, sensitive_features=g) == pytest.approx(
        fm.equalized_odds_ratio(y, p, sensitive_features=g)
    )


def test_equalized_odds_not_estimable_if_one_side_is():
    # group b has no positives: TPR comparison impossible, so EO (max of TPR and FPR gaps) is NaN, not the FPR gap
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([1, 0, 1, 0, 1, 0, 0, 0])
    g = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    with pytest.warns(lf.NotEstimableWarning):
        assert np.isnan(lf.equalized_odds_difference(y, p, sensitive_features=g))
    assert lf.metric_difference(y, p, sensitive_features=g, metric="fpr") == pytest.approx(0.25)


@pytest.mark.parametrize("single", [True, False])
def test_metric_frame_control_features_match_fairlearn(synth, single):
    from sklearn.metrics import recall_score

    y, p, w = synth["y_true"], synth["y_pred"], synth["weight"]
    if single:
        ours_m, ref_m, sp = lf.selection_rate, fm.selection_rate, {"sample_weight": w}
    else:
        ours_m = {"sr": lf.selection_rate, "tpr": lf.true_positive_rate, "rec": recall_score}
        ref_m = {"sr": fm.selection_rate, "tpr": fm.true_positive_rate, "rec": recall_score}
        sp = {k: {"sample_weight": w} for k in ours_m}
    kw = {
        "y_true": y,
        "y_pred": p,
        "sensitive_features": synth["race"],
        "control_features": synth[["sex", "age_band"]],
        "sample_params": sp,
    }
    ours, ref = lf.MetricFrame(metrics=ours_m, **kw), fm.MetricFrame(metrics=ref_m, **kw)
    check = pd.testing.assert_series_equal if single else pd.testing.assert_frame_equal
    check(ours.by_group.astype(float), ref.by_group.astype(float), atol=TOL, rtol=0)
    check(ours.overall.astype(float), ref.overall.astype(float), atol=TOL, rtol=0)
    for method in ["between_groups", "to_overall"]:
        check(ours.difference(method=method), ref.difference(method=method), atol=TOL, rtol=0)
        check(ours.ratio(method=method), ref.ratio(method=method), atol=TOL, rtol=0)
    check(ours.group_min().astype(float), ref.group_min().astype(float), atol=TOL, rtol=0)
    check(ours.group_max().astype(float), ref.group_max().astype(float), atol=TOL, rtol=0)
    assert ours.control_levels == ["sex", "age_band"]
    with pytest.raises(ValueError, match="control_features"):
        ours.difference(method="vs_reference", reference="a")


def test_metric_frame_unnamed_control_feature_and_intervals(synth):
    d = synth.iloc[:1500]
    kw = {"y_true": d["y_true"].to_numpy(), "y_pred": d["y_pred"].to_numpy(), "sensitive_features": d["race"].to_numpy(),
          "control_features": d["sex"].to_numpy()}  # fmt: skip
    ours = lf.MetricFrame(metrics=lf.selection_rate, n_boot=20, ci_quantiles=[0.1, 0.9], random_state=0, **kw)
    ref = fm.MetricFrame(metrics=fm.selection_rate, **kw)
    assert (
        ours.by_group.index.names == ref.by_group.index.names == ["control_feature_0", "sensitive_feature_0"]
    )
    pd.testing.assert_series_equal(ours.difference(), ref.difference(), atol=TOL, rtol=0)
    lo, hi = ours.difference_ci()
    assert list(lo.index) == ["F", "M"] and (lo <= hi).all()


def test_smoothed_rates_shrink_small_groups():
    y = np.array([1] * 50 + [0] * 50 + [1, 1])
    p = np.array([1] * 25 + [0] * 25 + [1] * 10 + [0] * 40 + [1, 1])
    g = np.array(["big"] * 100 + ["tiny"] * 2)
    gm = lf.group_metrics(y, p, sensitive_features=g)
    sr = gm.smoothed_by_group("selection_rate", strength=10)
    overall = 37 / 102
    assert sr[1] == pytest.approx((2 + 10 * overall) / (2 + 10), abs=TOL)
    assert sr[0] == pytest.approx((35 + 10 * overall) / (100 + 10), abs=TOL)
    np.testing.assert_allclose(gm.smoothed_by_group("tpr", 0), gm.by_group("tpr"), atol=TOL)


@pytest.mark.filterwarnings("ignore::labworks.fairness.metrics.NotEstimableWarning")
@pytest.mark.parametrize("seed", range(25))
def test_random_small_data_matches_fairlearn(seed):
    """Many tiny random data sets (2–5 groups, 1–2 features, weights): equal to fairlearn wherever every
    group's denominator is non-empty, and flagged (NaN) exactly where fairlearn would report a silent 0."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(15, 60))
    y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    sf = pd.DataFrame({"a": rng.choice(list("xyzuv")[: rng.integers(2, 6)], n), "b": rng.integers(0, 2, n)})
    sf = sf[["a"]] if seed % 2 else sf
    w = rng.uniform(0.1, 3, n) if seed % 3 else None
    for method in ["between_groups", "to_overall"]:
        for name in ["demographic_parity_difference", "demographic_parity_ratio"]:
            assert getattr(lf, name)(
                y, p, sensitive_features=sf, method=method, sample_weight=w
            ) == pytest.approx(
                getattr(fm, name)(y, p, sensitive_features=sf, method=method, sample_weight=w),
                abs=TOL,
                nan_ok=True,
            )
    gm = lf.group_metrics(y, p, sensitive_features=sf, sample_weight=w)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = lf.equalized_odds_difference(y, p, sensitive_features=sf, sample_weight=w)
        ref_frame = fm.MetricFrame(
            metrics={"tpr": fm.true_positive_rate, "fpr": fm.false_positive_rate},
            y_true=y, y_pred=p, sensitive_features=sf, sample_params={k: {"sample_weight": w} for k in ("tpr", "fpr")},
        ).by_group  # fmt: skip
    # expected: fairlearn's per-group rates restricted to groups whose denominator is non-empty; a side with an
    # excluded group and fewer than two usable groups cannot be compared (NaN), and NaN propagates through the max
    gaps = []
    for col, den in (("tpr", gm.positives), ("fpr", gm.negatives)):
        usable = den > 0
        vals = ref_frame[col].to_numpy(dtype=float)[usable]
        excluded = bool(((den == 0) & (gm.n > 0)).any())
        gaps.append(np.nan if len(vals) == 0 or (excluded and len(vals) < 2) else vals.max() - vals.min())
    expected = np.nan if np.isnan(gaps).any() else max(gaps)
    assert ours == pytest.approx(expected, abs=TOL, nan_ok=True)
