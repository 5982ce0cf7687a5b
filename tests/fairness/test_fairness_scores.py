"""Threshold sweeps, ROC/PR/AUC, calibration, regression and multiclass group metrics vs scikit-learn / fairlearn."""

from __future__ import annotations

import numpy as np
import pytest

import labworks.fairness as lf
from labworks.fairness.multiclass import multiclass_group_metrics
from labworks.fairness.regression import regression_disparity, regression_group_metrics
from labworks.fairness.scores import (
    auc_by_group,
    average_precision_by_group,
    calibration_by_group,
    roc_curve_by_group,
    threshold_sweep,
)

skm = pytest.importorskip("sklearn.metrics")
TOL = 1e-12


def test_threshold_sweep_matches_thresholding_each_time(synth):
    y, s, sf, w = synth["y_true"], synth["score"], synth[["race", "sex"]], synth["weight"]
    th = np.array([0.1, 0.3, 0.5, 0.5000001, 0.8])
    sw = threshold_sweep(y, s, sensitive_features=sf, thresholds=th, sample_weight=w)
    for j, t in enumerate(th):
        gm = lf.group_metrics(y, (s >= t).astype(int), sensitive_features=sf, sample_weight=w)
        np.testing.assert_allclose(sw.cells[j], gm.cells, atol=1e-9)
        assert sw.disparity("tpr")[j] == pytest.approx(gm.difference("tpr"), abs=1e-12)
    tab = sw.table(["selection_rate"])
    assert len(tab) == len(th) * 7


def test_roc_auc_per_group_matches_sklearn(synth):
    y, s, r, w = (
        synth["y_true"].to_numpy(),
        synth["score"].to_numpy(),
        synth["race"].to_numpy(),
        synth["weight"].to_numpy(),
    )
    s = np.round(s, 2)  # ties
    auc = auc_by_group(y, s, sensitive_features=r, sample_weight=w)
    ap = average_precision_by_group(y, s, sensitive_features=r, sample_weight=w)
    for g in ["a", "b", "c"]:
        m = r == g
        assert auc[g] == pytest.approx(skm.roc_auc_score(y[m], s[m], sample_weight=w[m]), abs=TOL)
        assert ap[g] == pytest.approx(skm.average_precision_score(y[m], s[m], sample_weight=w[m]), abs=TOL)
    assert auc["overall"] == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=TOL)
    fpr, tpr, _ = roc_curve_by_group(y, s, sensitive_features=r)["b"]
    rf, rt, _ = skm.roc_curve(y[r == "b"], s[r == "b"], drop_intermediate=False)
    np.testing.assert_allclose(fpr, rf, atol=TOL)
    np.testing.assert_allclose(tpr, rt, atol=TOL)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_matches_sklearn(synth, strategy):
    from sklearn.calibration import calibration_curve

    y, s, r = synth["y_true"].to_numpy(), synth["score"].to_numpy(), synth["race"].to_numpy()
    rel, ece = calibration_by_group(y, s, sensitive_features=r, n_bins=8, strategy=strategy)
    for g in ["a", "c"]:
        m = r == g
        if strategy == "quantile":  # sklearn computes quantile edges within the data it is given
            rel_g, ece_g = calibration_by_group(
                y[m], s[m], sensitive_features=r[m], n_bins=8, strategy=strategy
            )
            t = rel_g[(rel_g.group == g) & (rel_g.n > 0)]
        else:
            t = rel[(rel.group == g) & (rel.n > 0)]
            ece_g = ece
        pt, pp = calibration_curve(y[m], s[m], n_bins=8, strategy=strategy)
        np.testing.assert_allclose(t.frac_positive, pt, atol=TOL)
        np.testing.assert_allclose(t.mean_score, pp, atol=TOL)
        expect = np.sum(t.n / t.n.sum() * np.abs(pt - pp))
        assert ece_g[g] == pytest.approx(expect, abs=TOL)


def test_calibration_rejects_non_probabilities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration_by_group([0, 1], [0.2, 1.5], sensitive_features=["a", "b"])


def test_regression_group_metrics_match_fairlearn(synth):
    fm = pytest.importorskip("fairlearn.metrics")
    y, p, sf, w = synth["x1"], synth["score"] * 3, synth["race"], synth["weight"]
    tab = regression_group_metrics(y, p, sensitive_features=sf, sample_weight=w)
    mf = fm.MetricFrame(
        metrics={"mse": skm.mean_squared_error, "mae": skm.mean_absolute_error, "mean_prediction": fm.mean_prediction},
        y_true=y, y_pred=p, sensitive_features=sf, sample_params={k: {"sample_weight": w} for k in ["mse", "mae", "mean_prediction"]},
    )  # fmt: skip
    for col in ["mse", "mae", "mean_prediction"]:
        np.testing.assert_allclose(
            tab.loc[["a", "b", "c"], col].to_numpy(), mf.by_group[col].to_numpy(), atol=1e-12
        )
        assert tab.loc["overall", col] == pytest.approx(mf.overall[col], abs=1e-12)
    assert regression_disparity(tab, "mse") == pytest.approx(mf.difference()["mse"], abs=1e-12)
    assert regression_disparity(tab, "mse", "worst") == pytest.approx(mf.group_max()["mse"], abs=1e-12)
    rest = synth["race"] != "a"
    ref = np.average(((p - y) ** 2)[rest], weights=w[rest]) - mf.by_group.loc["a", "mse"]
    assert regression_disparity(tab, "mse", "vs_reference", "a") == pytest.approx(ref, abs=1e-10)


def test_multiclass_one_vs_rest_macro(synth):
    fm = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, len(synth))
    p = np.where(rng.random(len(synth)) < 0.6, y, rng.integers(0, 3, len(synth)))
    sf = synth["race"]
    mc = multiclass_group_metrics(y, p, sensitive_features=sf)
    per = []
    for c in range(3):
        ref = fm.equal_opportunity_difference(
            (y == c).astype(int), (p == c).astype(int), sensitive_features=sf
        )
        per.append(ref)
        assert mc.difference("tpr", average=None)[c] == pytest.approx(ref, abs=TOL)
    assert mc.difference("tpr") == pytest.approx(np.mean(per), abs=TOL)
    tab = mc.by_group("tpr")
    np.testing.assert_allclose(tab["macro"], tab[[0, 1, 2]].mean(axis=1), atol=TOL)
    for g in ["a", "b", "c"]:
        m = (sf == g).to_numpy()
        assert tab.loc[g, "macro"] == pytest.approx(skm.recall_score(y[m], p[m], average="macro"), abs=TOL)
    with pytest.raises(ValueError, match="binary"):
        lf.group_metrics(y, p, sensitive_features=sf)


def test_threshold_sweep_min_count_excludes_small_groups(synth):
    y, s = synth["y_true"].to_numpy(), synth["score"].to_numpy()
    g = np.where(np.arange(len(y)) < 8, "tiny", synth["race"].to_numpy())
    sw = threshold_sweep(y, s, sensitive_features=g, thresholds=[0.3, 0.5, 0.7], min_count=20)
    tiny = list(sw.groups.labels()).index("tiny")
    assert np.isnan(sw.rate("tpr")[:, tiny]).all()
    for j, t in enumerate([0.3, 0.5, 0.7]):
        keep = g != "tiny"
        ref = lf.group_metrics(y[keep], (s[keep] >= t).astype(int), sensitive_features=g[keep]).difference(
            "tpr"
        )
        assert sw.disparity("tpr")[j] == pytest.approx(ref, abs=1e-12)


def test_bias_aucs_match_sklearn_on_the_defining_subsets(synth):
    from labworks.fairness.scores import bias_auc_by_group

    y, s, r, w = (
        synth["y_true"].to_numpy(),
        synth["score"].to_numpy(),
        synth["race"].to_numpy(),
        synth["weight"].to_numpy(),
    )
    tab = bias_auc_by_group(y, s, sensitive_features=r, sample_weight=w)
    for g in ["a", "b", "c"]:
        m = r == g
        bpsn = (~m & (y == 1)) | (m & (y == 0))
        bnsp = (~m & (y == 0)) | (m & (y == 1))
        assert tab.loc[g, "subgroup_auc"] == pytest.approx(
            skm.roc_auc_score(y[m], s[m], sample_weight=w[m]), abs=TOL
        )
        assert tab.loc[g, "bpsn_auc"] == pytest.approx(
            skm.roc_auc_score(y[bpsn], s[bpsn], sample_weight=w[bpsn]), abs=TOL
        )
        assert tab.loc[g, "bnsp_auc"] == pytest.approx(
            skm.roc_auc_score(y[bnsp], s[bnsp], sample_weight=w[bnsp]), abs=TOL
        )
    # the synthetic score adds +0.4 to race c's logit: its negatives score high → lowest BPSN AUC
    assert tab["bpsn_auc"].idxmin() == "c"
