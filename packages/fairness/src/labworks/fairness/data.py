"""Data: the ProPublica COMPAS file (with ProPublica's filter) and a seeded synthetic set with known disparities."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["COMPAS_FILE", "find_compas", "load_compas", "make_synthetic"]

COMPAS_FILE = "compas-scores-two-years.csv"
ENV_VAR = "LABWORKS_FAIRNESS_DATA"


def find_compas(start: Path | None = None) -> Path | None:
    """Locate the COMPAS csv: $LABWORKS_FAIRNESS_DATA (file or folder), then ``../shared/data/fairness/``
    relative to the working directory and to each parent of this file / ``start``."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        p = p / COMPAS_FILE if p.is_dir() else p
        if p.is_file():
            return p
    bases = [Path.cwd(), *Path.cwd().parents]
    for anchor in (start, Path(__file__).resolve()):
        if anchor is not None:
            bases += list(Path(anchor).resolve().parents)
    seen = set()
    for base in bases:
        if base in seen:
            continue
        seen.add(base)
        for cand in (
            base / "shared" / "data" / "fairness" / COMPAS_FILE,
            base.parent / "shared" / "data" / "fairness" / COMPAS_FILE,
        ):
            if cand.is_file():
                return cand
    return None


def load_compas(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the COMPAS csv and apply ProPublica's filter.

    Filter: |days_b_screening_arrest| ≤ 30, is_recid ≠ −1, c_charge_degree ≠ 'O', score_text ≠ 'N/A'.
    Adds ``y_true`` = two_year_recid and ``y_pred`` = (decile_score ≥ 5), ``score`` = decile_score / 10.
    """
    df = pd.read_csv(path)
    need = {
        "days_b_screening_arrest",
        "is_recid",
        "c_charge_degree",
        "score_text",
        "decile_score",
        "two_year_recid",
        "race",
        "sex",
    }
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"{path} is not the ProPublica COMPAS file: missing columns {sorted(missing)}")
    keep = (
        df["days_b_screening_arrest"].between(-30, 30)
        & (df["is_recid"] != -1)
        & (df["c_charge_degree"] != "O")
        & (df["score_text"] != "N/A")
    )
    out = df.loc[keep].reset_index(drop=True).copy()
    out["y_true"] = out["two_year_recid"].astype(int)
    out["y_pred"] = (out["decile_score"] >= 5).astype(int)
    out["score"] = out["decile_score"] / 10.0
    return out


def make_synthetic(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Seeded synthetic scores with known disparities over 3 races × 2 sexes (+ an age band).

    Base rates differ by group (0.30 / 0.45 / 0.60 for race a / b / c, +0.05 for sex M); the score is a
    noisy calibrated-looking logit with a group offset that inflates false positives for race c.
    Columns: race, sex, age_band, x1, x2, score, y_true, y_pred (score ≥ 0.5), weight.
    """
    rng = np.random.default_rng(seed)
    race = rng.choice(np.array(["a", "b", "c"]), size=n, p=[0.5, 0.3, 0.2])
    sex = rng.choice(np.array(["F", "M"]), size=n, p=[0.45, 0.55])
    age = rng.choice(np.array(["<25", "25-45", ">45"]), size=n, p=[0.25, 0.5, 0.25])
    base = np.select([race == "a", race == "b"], [0.30, 0.45], 0.60) + 0.05 * (sex == "M")
    y = (rng.random(n) < base).astype(int)
    x1 = rng.normal(size=n) + 1.2 * y
    x2 = rng.normal(size=n) + 0.5 * (race == "c")
    logit = 1.4 * x1 + 0.6 * x2 - 1.0 + 0.4 * (race == "c") - 0.2 * (race == "a")
    score = 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "race": race,
            "sex": sex,
            "age_band": age,
            "x1": x1,
            "x2": x2,
            "score": score,
            "y_true": y,
            "y_pred": (score >= 0.5).astype(int),
            "weight": rng.uniform(0.5, 2.0, size=n),
        }
    )
