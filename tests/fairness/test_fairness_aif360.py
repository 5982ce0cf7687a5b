"""Exactness against AIF360 0.6 (sklearn API and the classic ClassificationMetric) to 1e-12."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import labworks.fairness as lf
from labworks.fairness import aif360_compat as ac
from labworks.fairness.individual import consistency_score, generalized_entropy_index, theil_index
from labworks.fairness.mitigation.reweighing import Reweighing, reweighing_weights

logging.getLogger().setLevel(logging.ERROR)  # aif360 logs optional-dependency notices at import
am = pytest.importorskip("aif360.sklearn.metrics")

TOL = 1e-12


def _indexed(y: pd.Series, attr: pd.Series) -> pd.Series:
    return pd.Series(y.to_numpy(), index=pd.Index(attr.to_numpy(), name="prot"))


@pytest.fixture(scope="module")
def binary(compas_or_synth):
    return compas_or_synth


@pytest.fixture(scope="module")
def compas_or_synth():
    from labworks.fairness.data import make_synthetic

    d = make_synthetic(5000, seed=11)
    d["priv"] = np.where(d["race"] == "a", "a", "other")
    return d


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("attr", ["priv", "race"])
def test_sklearn_metrics_match(binary, weighted, attr):
    d = binary
    y, p = d["y_true"], d["y_pred"].to_numpy()
    yi = _indexed(y, d[attr])
    w = d["weight"].to_numpy() if weighted else None
    kw = {"prot_attr": d[attr], "priv_group": "a", "sample_weight": w}
    rk = {"prot_attr": "prot", "priv_group": "a", "sample_weight": w}
    assert ac.statistical_parity_difference(y, p, **kw) == pytest.approx(
        am.statistical_parity_difference(yi, p, **rk), abs=TOL
    )
    assert ac.disparate_impact_ratio(y, p, **kw) == pytest.approx(
        am.disparate_impact_ratio(yi, p, **rk), abs=TOL
    )
    assert ac.equal_opportunity_difference(y, p, **kw) == pytest.approx(
        am.equal_opportunity_difference(yi, p, **rk), abs=TOL
    )
    assert ac.average_odds_difference(y, p, **kw) == pytest.approx(
        am.average_odds_difference(yi, p, **rk), abs=TOL
    )
    assert ac.average_odds_error(y, p, **kw) == pytest.approx(am.average_odds_error(yi, p, **rk), abs=TOL)
    # base-rate form (y_pred=None)
    assert ac.statistical_parity_difference(y, **kw) == pytest.approx(
        am.statistical_parity_difference(yi, **rk), abs=TOL
    )
    # the same numbers through the fairlearn-named functions with method="vs_reference"
    assert lf.demographic_parity_difference(
        y, p, sensitive_features=d[attr], method="vs_reference", reference="a", sample_weight=w
    ) == pytest.approx(am.statistical_parity_difference(yi, p, **rk), abs=TOL)
    assert lf.equalized_odds_difference(
        y, p, sensitive_features=d[attr], method="vs_reference", reference="a", agg="mean", sample_weight=w
    ) == pytest.approx(am.average_odds_difference(yi, p, **rk), abs=TOL)


def test_classic_classification_metric(binary):
    from aif360.datasets import BinaryLabelDataset
    from aif360.metrics import BinaryLabelDatasetMetric, ClassificationMetric

    d = binary
    prot = (d["race"] == "a").astype(float).to_numpy()
    df_t = pd.DataFrame({"prot": prot, "x": d["x1"], "label": d["y_true"].astype(float)})
    df_p = df_t.assign(label=d["y_pred"].astype(float))
    kw = {
        "favorable_label": 1.0,
        "unfavorable_label": 0.0,
        "label_names": ["label"],
        "protected_attribute_names": ["prot"],
    }
    ds_t = BinaryLabelDataset(df=df_t, **kw)
    ds_p = BinaryLabelDataset(df=df_p, **kw)
    ds_t.instance_weights = d["weight"].to_numpy().copy()
    ds_p.instance_weights = d["weight"].to_numpy().copy()
    groups = {"unprivileged_groups": [{"prot": 0.0}], "privileged_groups": [{"prot": 1.0}]}
    cm = ClassificationMetric(ds_t, ds_p, **groups)
    bm = BinaryLabelDatasetMetric(ds_p, **groups)
    y, p, w = d["y_true"], d["y_pred"], d["weight"]
    kw2 = {"prot_attr": prot, "priv_group": 1.0, "sample_weight": w}
    assert ac.statistical_parity_difference(y, p, **kw2) == pytest.approx(
        bm.statistical_parity_difference(), abs=TOL
    )
    assert ac.disparate_impact_ratio(y, p, **kw2) == pytest.approx(bm.disparate_impact(), abs=TOL)
    assert ac.equal_opportunity_difference(y, p, **kw2) == pytest.approx(
        cm.equal_opportunity_difference(), abs=TOL
    )
    assert ac.average_odds_difference(y, p, **kw2) == pytest.approx(cm.average_odds_difference(), abs=TOL)
    assert ac.equalized_odds_difference(y, p, **kw2) == pytest.approx(cm.equalized_odds_difference(), abs=TOL)
    gm = lf.group_metrics(y, p, sensitive_features=prot, sample_weight=w)
    assert gm.difference("error_rate", "vs_reference", 1.0) == pytest.approx(
        cm.error_rate_difference(), abs=TOL
    )
    assert gm.difference("fdr", "vs_reference", 1.0) == pytest.approx(
        cm.false_discovery_rate_difference(), abs=TOL
    )
    assert gm.difference("for", "vs_reference", 1.0) == pytest.approx(
        cm.false_omission_rate_difference(), abs=TOL
    )
    assert gm.ratio("ppv", "vs_reference", 1.0) == pytest.approx(
        cm.positive_predictive_value(privileged=False) / cm.positive_predictive_value(privileged=True),
        abs=TOL,
    )


def test_compas_aif360_conventions(compas):
    d = compas[compas["race"].isin(["African-American", "Caucasian"])]
    y, p = d["y_true"], d["y_pred"].to_numpy()
    yi = _indexed(y, d["race"])
    kw = {"prot_attr": d["race"], "priv_group": "Caucasian"}
    rk = {"prot_attr": "prot", "priv_group": "Caucasian"}
    spd = ac.statistical_parity_difference(y, p, **kw)
    assert spd == pytest.approx(0.245107, abs=1e-6)
    assert spd == pytest.approx(am.statistical_parity_difference(yi, p, **rk), abs=TOL)
    assert ac.disparate_impact_ratio(y, p, **kw) == pytest.approx(1.740604, abs=1e-6)
    assert ac.average_odds_difference(y, p, **kw) == pytest.approx(0.207412, abs=1e-6)
    assert ac.average_odds_difference(y, p, **kw) == pytest.approx(
        am.average_odds_difference(yi, p, **rk), abs=TOL
    )
    assert ac.equalized_odds_difference(y, p, **kw) == pytest.approx(0.211582, abs=1e-6)
    # three groups: AIF360 pools the unprivileged rest
    d3 = compas[compas["race"].isin(["African-American", "Caucasian", "Hispanic"])]
    yi3 = _indexed(d3["y_true"], d3["race"])
    ours = ac.statistical_parity_difference(
        d3["y_true"], d3["y_pred"].to_numpy(), prot_attr=d3["race"], priv_group="Caucasian"
    )
    assert ours == pytest.approx(
        am.statistical_parity_difference(yi3, d3["y_pred"].to_numpy(), **rk), abs=TOL
    )


@pytest.mark.parametrize("alpha", [0, 1, 2, 3, 0.5])
def test_generalized_entropy_matches(binary, alpha):
    y, p, race = binary["y_true"].to_numpy(), binary["y_pred"].to_numpy(), binary["race"].to_numpy()
    # alpha=0 is inf when any b is 0 (a false negative), in both libraries; use rows without FNs there
    if alpha == 0:
        keep = ~((y == 1) & (p == 0))
        y, p, race = y[keep], p[keep], race[keep]
    assert ac.generalized_entropy_error(y, p, alpha=alpha) == pytest.approx(
        am.generalized_entropy_error(y, p, alpha=alpha), abs=TOL
    )
    yi = _indexed(pd.Series(y), pd.Series(race))
    ref = am.between_group_generalized_entropy_error(yi, p, prot_attr="prot", alpha=alpha)
    ours = ac.between_group_generalized_entropy_error(y, p, prot_attr=yi.index.to_numpy(), alpha=alpha)
    assert ours == pytest.approx(ref, abs=TOL)


def test_generalized_entropy_closed_forms():
    b = np.array([1.0, 2.0, 3.0, 0.0])
    mu = 1.5
    assert generalized_entropy_index(b, 2) == pytest.approx(np.var(b) / mu**2 / 2, abs=TOL)
    r = b / mu
    assert theil_index(b) == pytest.approx(
        np.mean(np.where(r > 0, r * np.log(np.where(r > 0, r, 1)), 0)), abs=TOL
    )
    assert generalized_entropy_index([1.0, 1.0, 1.0], 2) == 0.0
    b2 = np.array([1.0, 2.0, 4.0])
    assert generalized_entropy_index(b2, 0) == pytest.approx(-np.mean(np.log(b2 / b2.mean())), abs=TOL)


def test_consistency_matches(binary):
    X = binary[["x1", "x2"]].to_numpy()[:800]
    p = binary["y_pred"].to_numpy()[:800]
    assert consistency_score(X, p, 5) == pytest.approx(am.consistency_score(X, p, 5), abs=TOL)


@pytest.mark.parametrize("weighted", [False, True])
def test_reweighing_matches_aif360_sklearn(binary, weighted):
    from aif360.sklearn.preprocessing import Reweighing as ARW

    d = binary
    w = d["weight"].to_numpy() if weighted else None
    X = pd.DataFrame(
        {"x": d["x1"].to_numpy()},
        index=pd.MultiIndex.from_arrays([d["race"], d["sex"]], names=["race", "sex"]),
    )
    ref_w = ARW(prot_attr=["race", "sex"]).fit_transform(X, d["y_true"].to_numpy(), sample_weight=w)[1]
    ours = reweighing_weights(d["y_true"], d[["race", "sex"]], sample_weight=w)
    np.testing.assert_allclose(ours, ref_w, atol=TOL, rtol=0)
    # after reweighing the label is independent of the group: equal weighted base rates
    gm = lf.group_metrics(d["y_true"], d["y_true"], sensitive_features=d[["race", "sex"]], sample_weight=ours)
    np.testing.assert_allclose(gm.by_group("base_rate"), gm.overall("base_rate"), atol=1e-12)


def test_reweighing_matches_aif360_classic(binary):
    from aif360.algorithms.preprocessing import Reweighing as CRW
    from aif360.datasets import BinaryLabelDataset

    d = binary
    prot = (d["race"] == "a").astype(float).to_numpy()
    df = pd.DataFrame({"prot": prot, "x": d["x1"], "label": d["y_true"].astype(float)})
    ds = BinaryLabelDataset(
        df=df,
        favorable_label=1.0,
        unfavorable_label=0.0,
        label_names=["label"],
        protected_attribute_names=["prot"],
    )
    out = CRW(unprivileged_groups=[{"prot": 0.0}], privileged_groups=[{"prot": 1.0}]).fit_transform(ds)
    rw = Reweighing().fit(d["y_true"], prot)
    np.testing.assert_allclose(rw.transform(d["y_true"], prot), out.instance_weights, atol=TOL, rtol=0)
    assert rw.factors_.shape == (2, 2)


def test_convention_table_lines_up_both_libraries(compas):
    fm = pytest.importorskip("fairlearn.metrics")
    d = compas[compas["race"].isin(["African-American", "Caucasian", "Hispanic"])]
    y, p = d["y_true"], d["y_pred"].to_numpy()
    gm = lf.group_metrics(y, p, sensitive_features=d["race"])
    t = gm.convention_table("selection_rate", reference="Caucasian").set_index(["library", "method"])
    assert t.loc[("fairlearn", "between_groups"), "difference"] == pytest.approx(
        fm.demographic_parity_difference(y, p, sensitive_features=d["race"]), abs=TOL
    )
    assert t.loc[("fairlearn", "to_overall"), "ratio"] == pytest.approx(
        fm.demographic_parity_ratio(y, p, sensitive_features=d["race"], method="to_overall"), abs=TOL
    )
    yi = _indexed(y, d["race"])
    assert t.loc[("AIF360", "vs_reference"), "difference"] == pytest.approx(
        am.statistical_parity_difference(yi, p, prot_attr="prot", priv_group="Caucasian"), abs=TOL
    )
    assert t.loc[("AIF360", "vs_reference"), "ratio"] == pytest.approx(
        am.disparate_impact_ratio(yi, p, prot_attr="prot", priv_group="Caucasian"), abs=TOL
    )
    sr = dict(zip(gm.groups.labels(), gm.by_group("selection_rate"), strict=True))
    aeq = t.loc[("Aequitas", "each group vs reference")]
    assert aeq["ratio"].max() == pytest.approx(sr["African-American"] / sr["Caucasian"], abs=TOL)
    assert aeq["ratio"].min() == pytest.approx(sr["Hispanic"] / sr["Caucasian"], abs=TOL)


@pytest.mark.parametrize("use_pred", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_smoothed_edf_matches(binary, use_pred, weighted):
    d = binary
    attrs = d[["race", "sex"]]
    yi = pd.Series(d["y_true"].to_numpy(), index=pd.MultiIndex.from_frame(attrs))
    p = d["y_pred"].to_numpy() if use_pred else None
    w = d["weight"].to_numpy() if weighted else None
    ref = am.smoothed_edf(yi, p, prot_attr=["race", "sex"], sample_weight=w)
    ours = ac.smoothed_edf(d["y_true"], p, prot_attr=attrs, sample_weight=w)
    assert ours == pytest.approx(ref, abs=TOL)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_smoothed_edf_single_class_group_quirk():
    y = pd.Series([1, 1, 1, 0, 1, 0], index=pd.Index(["a", "a", "a", "b", "b", "b"], name="g"))
    ref = am.smoothed_edf(
        y, prot_attr="g"
    )  # group a has one class: AIF360 smooths with |R| = 1, r = 1, ε = inf
    assert np.isinf(ref)
    assert np.isinf(ac.smoothed_edf(y.to_numpy(), prot_attr=y.index.to_numpy()))
    # textbook |R| = 2: r_a = (3 + 0.5) / 4, r_b = (1 + 0.5) / 4
    ra, rb = 3.5 / 4, 1.5 / 4
    expect = max(abs(np.log(ra) - np.log(rb)), abs(np.log(1 - ra) - np.log(1 - rb)))
    assert ac.smoothed_edf(
        y.to_numpy(), prot_attr=y.index.to_numpy(), convention="textbook"
    ) == pytest.approx(expect, abs=TOL)
