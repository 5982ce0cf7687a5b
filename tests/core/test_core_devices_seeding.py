from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from labworks.core import get_device, get_dtype, make_generator, rng_state, seed_everything, set_rng_state


def test_get_device() -> None:
    assert get_device("cpu") == torch.device("cpu")
    auto = get_device()
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    with pytest.raises(ValueError, match="'banana'"):
        get_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda:0")


def test_get_dtype() -> None:
    assert get_dtype("bf16") is torch.bfloat16
    assert get_dtype("torch.float64") is torch.float64
    assert get_dtype(torch.float16) is torch.float16
    assert get_dtype("auto", "cpu") is torch.float32
    with pytest.raises(ValueError, match="'int3'"):
        get_dtype("int3")


def _draw() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.randn(3)


def test_seed_everything_reproduces_all_generators() -> None:
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    b = _draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    seed_everything(124)
    assert not torch.equal(_draw()[2], a[2])
    with pytest.raises(ValueError, match="2\\*\\*32"):
        seed_everything(-1)
    with pytest.raises(TypeError):
        seed_everything("1")  # type: ignore[arg-type]


def test_rng_state_round_trip_and_generator() -> None:
    state = rng_state()
    a = _draw()
    set_rng_state(state)
    b = _draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    g1, g2 = make_generator(7), make_generator(7)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
