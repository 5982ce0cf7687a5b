"""Precision-calibrated confidence thresholds: minimal threshold reaching each precision (checked by
brute force over every cut), held-out behaviour, per-stratum fallback, JSON round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from labworks.core import ConfigError
from labworks.openbuildings.thresholds import (
    POOLED,
    ThresholdTable,
    apply_thresholds,
    fit_thresholds,
    precision_key,
)


def calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores in [0, 1] with P(TP | score) = score (a perfectly calibrated detector)."""
    s = rng.random(n)
    return s, rng.random(n) < s


def brute_minimal_threshold(s: np.ndarray, tp: np.ndarray, p: float) -> float:
    """Smallest candidate threshold (any observed score) whose kept set has precision >= p."""
    best = math.inf
    for t in np.unique(s):
        kept = s >= t
        if tp[kept].sum() / kept.sum() >= p:
            best = min(best, float(t))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_fit_is_the_minimal_threshold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s, tp = calibrated(rng, 300)
    s = np.round(s, 2)  # ties between scores
    precisions = (0.6, 0.8, 0.85, 0.9, 0.97)
    table = fit_thresholds(s, tp, precisions=precisions)
    for p in precisions:
        t = table.threshold(POOLED, p)
        assert t == brute_minimal_threshold(s, tp, p)
        if math.isfinite(t):
            kept = s >= t
            assert tp[kept].mean() >= p
            assert kept.sum() == apply_thresholds(s, None, table, p).sum()


def test_held_out_precision_close_to_target() -> None:
    rng = np.random.default_rng(0)
    fit_s, fit_tp = calibrated(rng, 20_000)
    test_s, test_tp = calibrated(rng, 20_000)
    table = fit_thresholds(fit_s, fit_tp, precisions=(0.8, 0.9), n_gt=int(fit_tp.sum()))
    for p in (0.8, 0.9):
        keep = apply_thresholds(test_s, None, table, p)
        assert abs(test_tp[keep].mean() - p) < 0.02
        # calibrated scores: precision of {s >= t} is (1 + t) / 2, so t is close to 2p - 1
        assert table.threshold("all", p) == pytest.approx(2 * p - 1, abs=0.03)
        assert 0 < table.recall["all"][precision_key(p)] < 1


def test_unreachable_precision_is_inf_and_noted() -> None:
    s = np.linspace(0, 1, 50)
    tp = np.zeros(50, bool)
    tp[::3] = True
    table = fit_thresholds(s, tp, precisions=(0.3, 0.99))
    assert math.isfinite(table.threshold("all", 0.3))
    assert table.threshold("all", 0.99) == math.inf
    assert any("0.99" in n and "inf" in n for n in table.notes)
    assert not apply_thresholds(s, "all", table, 0.99).any()
    empty = fit_thresholds([], [])
    assert all(math.isinf(v) for v in empty.thresholds["all"].values())


def test_per_stratum_and_fallback() -> None:
    rng = np.random.default_rng(1)
    s_u, tp_u = calibrated(rng, 1000)
    s_r = rng.random(1000)
    tp_r = rng.random(1000) < s_r**4  # rural detector is worse: needs a higher threshold
    s_x, tp_x = calibrated(rng, 10)  # too few detections
    s = np.concatenate([s_u, s_r, s_x])
    tp = np.concatenate([tp_u, tp_r, tp_x])
    strata = np.array(["urban"] * 1000 + ["rural"] * 1000 + ["refugee_camp"] * 10, dtype=object)
    table = fit_thresholds(s, tp, strata, precisions=(0.8, 0.9), min_count=20)
    assert table.counts == {"all": 2010, "urban": 1000, "rural": 1000, "refugee_camp": 10}
    assert table.pooled_strata == ("refugee_camp",)
    for p in (0.8, 0.9):
        assert table.threshold("rural", p) > table.threshold("urban", p)
        assert table.threshold("refugee_camp", p) == table.threshold("all", p)
        assert table.threshold("never-seen", p) == table.threshold("all", p)
        assert table.threshold("urban", p) == brute_minimal_threshold(s_u, tp_u, p)
        keep = apply_thresholds(s, strata, table, p)
        want = s >= np.array([table.threshold(x, p) for x in strata])
        np.testing.assert_array_equal(keep, want)
    with pytest.raises(KeyError, match="not fitted"):
        table.threshold("urban", 0.5)


def test_json_round_trip_with_inf(tmp_path: Path) -> None:
    s = torch.tensor([0.9, 0.8, 0.7, 0.2])
    tp = torch.tensor([True, False, False, False])  # stratum b never reaches any precision
    table = fit_thresholds(s, tp, ["a", "a", "b", "b"], precisions=(0.5, 0.99), min_count=1)
    path = table.to_file(tmp_path / "thresholds.json")
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    back = ThresholdTable.from_file(path)
    assert back == table
    assert back.threshold("b", 0.99) == math.inf and back.threshold("a", 0.5) == pytest.approx(
        0.8
    )  # 1 TP of 2 kept
    assert '"inf"' in text
    assert ThresholdTable.from_dict(table.to_dict()) == table  # the form embedded in model metadata


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        fit_thresholds([0.1, 0.2], [True])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        fit_thresholds([0.1], [True], precisions=(1.2,))
    with pytest.raises(ValueError, match="finite"):
        fit_thresholds([float("nan")], [True])
    with pytest.raises(ValueError, match="strata"):
        fit_thresholds([0.1, 0.2], [True, False], ["a"])
    with pytest.raises(ValueError, match="boolean"):
        fit_thresholds([0.1], np.array([3]))
    with pytest.raises(ConfigError, match="pooled stratum"):
        ThresholdTable.from_dict({"precisions": [0.9], "thresholds": {"x": {"0.9": 0.5}}})
    with pytest.raises(ConfigError, match="precision keys"):
        ThresholdTable.from_dict({"precisions": [0.9], "thresholds": {"all": {"0.8": 0.5}}})
