"""Fixtures for the fairness tests: seeded synthetic data and the COMPAS file (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from labworks.fairness.data import load_compas, make_synthetic

COMPAS = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "fairness"
    / "compas-scores-two-years.csv"
)


@pytest.fixture(scope="session")
def synth() -> pd.DataFrame:
    return make_synthetic(6000, seed=3)


@pytest.fixture(scope="session")
def compas() -> pd.DataFrame:
    if not COMPAS.is_file():
        pytest.skip(f"COMPAS data not found at {COMPAS} (shared data folder absent)")
    return load_compas(COMPAS)
