from __future__ import annotations

import os
from pathlib import Path

import pytest

gymnasium = pytest.importorskip("gymnasium")
ASSETS = Path(os.path.dirname(gymnasium.__file__)) / "envs" / "mujoco" / "assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS
