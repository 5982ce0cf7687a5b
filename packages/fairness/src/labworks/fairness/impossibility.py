"""Impossibility explorer: which of demographic parity, equalized odds, predictive parity and calibration can
hold together, given each group's base rate.

Chouldechova (2017): for every group, FPR = p/(1−p) · (1−PPV)/PPV · (1−FNR). If base rates p differ, equal
PPV (predictive parity) and equal FNR force unequal FPR — so predictive parity and equalized odds cannot
both hold unless the classifier is perfect or base rates are equal. Kleinberg, Mullainathan & Raghavan
(2016): a score that is calibrated within groups and balanced for both the positive class (equal mean score
among positives) and the negative class exists only with equal base rates or perfect prediction.
Demographic parity with unequal base rates rules out a perfect classifier and, with equal TPR and FPR, is
impossible (SR = FPR + p·(TPR − FPR) then varies with p unless TPR = FPR).

Friedler, Scheidegger & Venkatasubramanian's worldviews choose which side to report:
WYSIWYG ("what you see is what you get": observed labels measure the construct) → error-rate and
calibration criteria; WAE ("we're all equal": group differences in labels are measurement bias) → demographic parity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labworks.fairness._inputs import ArrayLike, as_1d, binarize, to_numpy
from labworks.fairness.metrics import GroupMetrics, group_metrics

__all__ = [
    "WORLDVIEWS",
    "ImpossibilityResult",
    "Worldview",
    "chouldechova_fpr",
    "explore",
    "impossibility_check",
    "kleinberg_balance",
]


@dataclass(frozen=True)
class Worldview:
    """A preset choosing which fairness criteria to report (Friedler et al.)."""

    name: str
    description: str
    criteria: tuple[str, ...]
    metrics: tuple[str, ...]


WORLDVIEWS: dict[str, Worldview] = {
    "wysiwyg": Worldview(
        "WYSIWYG",
        "What you see is what you get: the observed labels reflect the construct, so judge a classifier by its "
        "errors and calibration within each group.",
        ("equalized_odds", "equal_opportunity", "predictive_parity", "calibration"),
        ("true_positive_rate", "false_positive_rate", "positive_predictive_value", "accuracy"),
    ),
    "wae": Worldview(
        "WAE",
        "We're all equal: groups do not differ in the construct; differences in observed labels are measurement "
        "bias, so outcomes should not depend on the group (demographic parity).",
        ("demographic_parity",),
        ("selection_rate", "base_rate"),
    ),
}


def get_worldview(name: str) -> Worldview:
    key = name.lower()
    if key not in WORLDVIEWS:
        raise ValueError(f"unknown worldview {name!r}; use one of {', '.join(WORLDVIEWS)}")
    return WORLDVIEWS[key]


def chouldechova_fpr(p: ArrayLike, ppv: ArrayLike, fnr: ArrayLike) -> np.ndarray:
    """FPR implied by base rate p, PPV and FNR: p/(1−p) · (1−PPV)/PPV · (1−FNR) (NaN where undefined)."""
    p, ppv, fnr = (np.asarray(x, dtype=np.float64) for x in (p, ppv, fnr))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p / (1 - p) * (1 - ppv) / ppv * (1 - fnr)
    return np.where((p < 1) & (ppv > 0), out, np.nan)


def explore(base_rates: dict[Any, float], ppv: float, fnr: float) -> pd.DataFrame:
    """What-if: if every group shared this PPV and FNR (predictive parity + equal opportunity), the FPR each
    group would be forced to have. Unequal implied FPRs mean equalized odds cannot also hold."""
    if not 0 < ppv <= 1 or not 0 <= fnr <= 1:
        raise ValueError(f"need 0 < ppv ≤ 1 and 0 ≤ fnr ≤ 1, got ppv={ppv}, fnr={fnr}")
    groups = list(base_rates)
    p = np.array([base_rates[g] for g in groups], dtype=np.float64)
    if ((p <= 0) | (p >= 1)).any():
        raise ValueError("base rates must be in (0, 1)")
    fpr = chouldechova_fpr(p, ppv, fnr)
    return pd.DataFrame(
        {"base_rate": p, "ppv": ppv, "fnr": fnr, "implied_fpr": fpr, "feasible": fpr <= 1},
        index=pd.Index(groups, name="group"),
    )


def kleinberg_balance(
    y_true: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_groups: int, n_bins: int = 10
) -> pd.DataFrame:
    """Per group: base rate, balance for the positive class (mean score | y=1), for the negative class
    (mean score | y=0), and calibration error (ECE over ``n_bins`` uniform bins)."""
    rows = []
    b = np.minimum((scores * n_bins).astype(int), n_bins - 1)
    for g in range(n_groups):
        m = codes == g
        y, s = y_true[m], scores[m]
        if m.sum() == 0:
            rows.append(
                {"base_rate": np.nan, "mean_score_pos": np.nan, "mean_score_neg": np.nan, "ece": np.nan}
            )
            continue
        cnt = np.bincount(b[m], minlength=n_bins)
        ys = np.bincount(b[m], weights=y, minlength=n_bins)
        ss = np.bincount(b[m], weights=s, minlength=n_bins)
        nz = cnt > 0
        ece = float(np.sum(cnt[nz] / cnt.sum() * np.abs(ys[nz] / cnt[nz] - ss[nz] / cnt[nz])))
        rows.append(
            {
                "base_rate": float(y.mean()),
                "mean_score_pos": float(s[y == 1].mean()) if (y == 1).any() else np.nan,
                "mean_score_neg": float(s[y == 0].mean()) if (y == 0).any() else np.nan,
                "ece": ece,
            }
        )
    return pd.DataFrame(rows)


@dataclass
class ImpossibilityResult:
    """Per-group identity table and which criteria hold (gap ≤ tolerance)."""

    table: pd.DataFrame
    holds: dict[str, bool]
    gaps: dict[str, float]
    tolerance: float
    notes: list[str] = field(default_factory=list)

    def summary(self, worldview: str | None = None) -> str:
        crit = get_worldview(worldview).criteria if worldview else tuple(self.holds)
        lines = [f"tolerance {self.tolerance:g} on between-group gaps"]
        for c in crit:
            if c in self.holds:
                lines.append(f"- {c}: {'holds' if self.holds[c] else 'violated'} (gap {self.gaps[c]:.4f})")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def impossibility_check(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    scores: ArrayLike | None = None,
    tolerance: float = 0.02,
    n_bins: int = 10,
    min_count: int = 1,
) -> ImpossibilityResult:
    """Check the Chouldechova identity per group and report which criteria hold together.

    Groups whose rate denominators have fewer than ``min_count`` rows are left out of the gaps (as everywhere).

    Returns:
        ImpossibilityResult with a per-group table (base_rate, selection_rate, tpr, fpr, fnr, ppv,
        implied_fpr, identity_residual[, mean_score_pos, mean_score_neg, ece]).
    """
    gm: GroupMetrics = group_metrics(
        y_true, y_pred, sensitive_features=sensitive_features, min_count=min_count
    )
    p = gm.by_group("base_rate")
    ppv, fnr, fpr = gm.by_group("ppv"), gm.by_group("fnr"), gm.by_group("fpr")
    implied = chouldechova_fpr(p, ppv, fnr)
    table = pd.DataFrame(
        {
            "n": gm.n,
            "base_rate": p,
            "selection_rate": gm.by_group("selection_rate"),
            "tpr": gm.by_group("tpr"),
            "fpr": fpr,
            "fnr": fnr,
            "ppv": ppv,
            "implied_fpr": implied,
            "identity_residual": fpr - implied,
        },
        index=gm.groups.pandas_index(),
    )
    gaps = {
        "demographic_parity": gm.difference("selection_rate"),
        "equal_opportunity": gm.difference("tpr"),
        "equalized_odds": gm.equalized_odds("difference"),
        "predictive_parity": gm.difference("ppv"),
        "base_rate_gap": gm.difference("base_rate"),
    }
    notes = []
    if scores is not None:
        s = to_numpy(as_1d(scores, "scores")).astype(np.float64)
        if len(s) != int(gm.n.sum()):
            raise ValueError(f"inputs have mismatched lengths: scores={len(s)}, y={int(gm.n.sum())}")
        if np.isnan(s).any() or (s < 0).any() or (s > 1).any():
            raise ValueError("scores must be probabilities in [0, 1]")
        yt = to_numpy(binarize(as_1d(y_true, "y_true"), "y_true")).astype(np.int64)
        kb = kleinberg_balance(yt, s, to_numpy(gm.groups.codes), gm.n_groups, n_bins)
        kb.index = table.index
        table = table.join(kb[["mean_score_pos", "mean_score_neg", "ece"]])
        big = gm.n >= max(min_count, 1)
        kb_pos = kb["mean_score_pos"].where(gm.positives >= max(min_count, 1))
        kb_neg = kb["mean_score_neg"].where(gm.negatives >= max(min_count, 1))
        gaps["calibration"] = float(np.nanmax(kb["ece"].where(big)))
        gaps["balance_positive"] = float(np.nanmax(kb_pos) - np.nanmin(kb_pos))
        gaps["balance_negative"] = float(np.nanmax(kb_neg) - np.nanmin(kb_neg))
    holds = {k: bool(v <= tolerance) for k, v in gaps.items() if k != "base_rate_gap"}
    if gaps["base_rate_gap"] > tolerance:
        notes.append(
            f"base rates differ by {gaps['base_rate_gap']:.4f}: by Chouldechova's identity predictive parity and "
            "equalized odds cannot both hold for an imperfect classifier, and demographic parity conflicts with "
            "equal error rates"
        )
        if scores is not None:
            notes.append(
                "by Kleinberg et al., calibration within groups and balance for both classes cannot all hold either"
            )
        both = holds.get("predictive_parity") and holds.get("equalized_odds")
        if both:
            notes.append(
                "observed: both hold within tolerance — the classifier is near-perfect or the tolerance is loose"
            )
    else:
        notes.append("base rates are equal within tolerance: the criteria are not forced into conflict")
    return ImpossibilityResult(table=table, holds=holds, gaps=gaps, tolerance=tolerance, notes=notes)
