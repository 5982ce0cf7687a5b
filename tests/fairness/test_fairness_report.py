"""The CLI report, the demo and the impossibility explorer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import labworks.fairness as lf
from labworks.fairness.cli import cli
from labworks.fairness.demo import demo
from labworks.fairness.impossibility import WORLDVIEWS, chouldechova_fpr, explore, impossibility_check


@pytest.fixture
def csv_file(tmp_path, synth):
    p = tmp_path / "data.csv"
    synth.to_csv(p, index=False)
    return p


def test_cli_help():
    res = CliRunner().invoke(cli, ["report", "--help"])
    assert res.exit_code == 0 and "--group" in res.output and "--score" in res.output


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_cli_report_writes_everything(tmp_path, csv_file, synth, fmt):
    out = tmp_path / "rep"
    args = ["report", str(csv_file), "--label", "y_true", "--pred", "y_pred", "--score", "score", "--group", "race", "--group", "sex",
            "--reference", "a & F", "--n-boot", "200", "--out", str(out), "--format", fmt]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    report = out / f"report.{fmt}"
    assert report.is_file()
    for f in [
        "group_metrics.csv",
        "disparities.csv",
        "counts.csv",
        "sweep.csv",
        "rates.png",
        "roc.png",
        "sweep.png",
    ]:
        assert (out / f).is_file(), f
    text = report.read_text()
    assert "rates.png" in text and "vs_reference" in text
    tidy = pd.read_csv(out / "group_metrics.csv")
    row = tidy[(tidy.group == "c & M") & (tidy.metric == "true_positive_rate")].iloc[0]
    m = (synth.race == "c") & (synth.sex == "M") & (synth.y_true == 1)
    assert row.value == pytest.approx(synth.loc[m, "y_pred"].mean(), abs=1e-12)
    assert row.boot_lower <= row.value <= row.boot_upper and row.wilson_lower <= row.value <= row.wilson_upper
    auc = pd.read_csv(out / "auc.csv").set_index("group")
    assert (auc.lower <= auc.auc).all() and (auc.auc <= auc.upper).all()
    disp = pd.read_csv(out / "disparities.csv")
    dpd = disp[
        (disp.measure == "selection_rate") & (disp.kind == "difference") & (disp.method == "between_groups")
    ].value.iloc[0]
    assert dpd == pytest.approx(
        lf.demographic_parity_difference(
            synth.y_true, synth.y_pred, sensitive_features=synth[["race", "sex"]]
        ),
        abs=1e-12,
    )


def test_cli_threshold_score_and_weights(tmp_path, csv_file):
    out = tmp_path / "rep2"
    args = [
        "report",
        str(csv_file),
        "--label",
        "y_true",
        "--score",
        "score",
        "--threshold",
        "0.6",
        "--group",
        "race",
        "--weight",
        "weight",
        "--n-boot",
        "50",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "score` ≥ 0.6" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--group", "nope"], "columns not in the data"),
        (["--group", "race", "--reference", "zz"], "unknown reference group"),
        (["--group", "race", "--pos-label", "7"], "pos-label"),
    ],
)
def test_cli_bad_input_is_a_clear_error(tmp_path, csv_file, extra, match):
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(csv_file),
            "--label",
            "y_true",
            "--pred",
            "y_pred",
            "--n-boot",
            "10",
            "--out",
            str(tmp_path / "x"),
            *extra,
        ],
    )
    assert res.exit_code != 0
    assert match in res.output


def test_demo_on_synthetic_when_compas_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("LABWORKS_FAIRNESS_DATA", str(tmp_path / "missing.csv"))
    monkeypatch.setattr("labworks.fairness.demo.find_compas", lambda: None)
    path = demo(tmp_path / "demo", seed=1)
    assert path.is_file() and "Synthetic" in path.read_text()


def test_demo_on_compas(tmp_path, compas):
    path = demo(tmp_path / "demo", seed=0)
    text = path.read_text()
    assert "COMPAS" in text and "Caucasian" in text
    tidy = pd.read_csv(path.parent / "group_metrics.csv")
    row = tidy[(tidy.group == "African-American") & (tidy.metric == "false_positive_rate")].iloc[0]
    assert row.value == pytest.approx(0.4234, abs=1e-4)


def test_chouldechova_identity_holds_per_group(synth):
    res = impossibility_check(synth.y_true, synth.y_pred, sensitive_features=synth.race, scores=synth.score)
    np.testing.assert_allclose(res.table["identity_residual"], 0, atol=1e-12)
    assert not res.holds["predictive_parity"] or not res.holds["equalized_odds"]
    assert "base rates differ" in res.summary()
    assert set(res.holds) >= {"demographic_parity", "equalized_odds", "predictive_parity", "calibration"}


def test_explore_closed_form():
    t = explore({"a": 0.3, "b": 0.6}, ppv=0.7, fnr=0.3)
    assert t.loc["a", "implied_fpr"] == pytest.approx(0.3 / 0.7 * 0.3 / 0.7 * 0.7)
    assert t.loc["b", "implied_fpr"] == pytest.approx(0.6 / 0.4 * 0.3 / 0.7 * 0.7)
    assert np.isnan(chouldechova_fpr(1.0, 0.5, 0.1))
    with pytest.raises(ValueError):
        explore({"a": 1.2}, 0.5, 0.1)


def test_equal_base_rates_no_forced_conflict():
    rng = np.random.default_rng(0)
    n = 20000
    g = rng.choice(["x", "y"], n)
    y = (rng.random(n) < 0.4).astype(int)
    p = np.where(rng.random(n) < 0.8, y, 1 - y)
    res = impossibility_check(y, p, sensitive_features=g, tolerance=0.03)
    assert res.holds["equalized_odds"] and res.holds["predictive_parity"] and res.holds["demographic_parity"]
    assert "not forced into conflict" in res.summary()


def test_worldview_presets():
    assert "demographic_parity" in WORLDVIEWS["wae"].criteria
    assert "equalized_odds" in WORLDVIEWS["wysiwyg"].criteria


@pytest.mark.filterwarnings("ignore::labworks.fairness.metrics.NotEstimableWarning")
def test_impossibility_respects_min_count(compas):
    full = impossibility_check(compas.y_true, compas.y_pred, sensitive_features=compas.race)
    guarded = impossibility_check(compas.y_true, compas.y_pred, sensitive_features=compas.race, min_count=10)
    # Native American (5 positives) drives the unguarded TPR gap; with the guard it is left out
    assert full.gaps["equal_opportunity"] == pytest.approx(1.0 - 0.3387, abs=1e-4)
    assert guarded.gaps["equal_opportunity"] == pytest.approx(
        lf.group_metrics(
            compas.y_true, compas.y_pred, sensitive_features=compas.race, min_count=10
        ).difference("tpr"),
        abs=1e-12,
    )
