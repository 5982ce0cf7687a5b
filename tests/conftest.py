"""Shared pytest setup for every labworks test suite.

- Without CUDA, Triton kernels run on the CPU interpreter: ``TRITON_INTERPRET=1`` must be set
  before any ``@triton.jit`` kernel is defined, so it is set here, at collection time.
- Every test starts from the same global RNG state and leaves it as it found it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _restore_rng_state() -> Iterator[None]:
    py, np_state, t = random.getstate(), np.random.get_state(), torch.get_rng_state()
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
    random.setstate(py)
    np.random.set_state(np_state)
    torch.set_rng_state(t)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
