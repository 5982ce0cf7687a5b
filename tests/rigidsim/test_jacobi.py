"""The CPU op labworks_rigidsim::jacobi equals its plain-PyTorch reference, and the step uses it only
where it may (no gradient needed)."""

from __future__ import annotations

import pytest
import torch

from labworks.core.testing import skip_unless
from labworks.rigidsim import jacobi as jac_mod
from labworks.rigidsim import load_model, step
from labworks.rigidsim.jacobi import cpu_kernel_available, jacobi_reference, projected_jacobi


def _kernel_or_skip() -> None:
    skip_unless(cpu_kernel_available(), "rigidsim's C++ contact kernel did not build here", "cpu_kernel")


def _problem(b: int, c: int, limits: int, dtype: torch.dtype, seed: int = 0) -> tuple:
    """A well-posed random solve: D = J M^-1 J^T from random J and SPD M^-1, the step sizes the step
    uses, some rows inactive."""
    g = torch.Generator().manual_seed(seed)
    r, nv = 3 * c + limits, 14
    jac = torch.randn(b, r, nv, generator=g, dtype=dtype)
    a = torch.randn(b, nv, nv, generator=g, dtype=dtype)
    minv = a @ a.transpose(1, 2) / nv + 0.1 * torch.eye(nv, dtype=dtype)
    w = minv @ jac.transpose(1, 2)
    delassus = jac @ w
    diag = delassus.diagonal(dim1=1, dim2=2)
    reg = diag * (1 / 0.9 - 1) + 1e-10
    active = (torch.rand(b, r, generator=g, dtype=dtype) < 0.7).to(dtype)
    inv = active / (diag + reg)
    vf = torch.randn(b, r, generator=g, dtype=dtype)
    target = torch.randn(b, r, generator=g, dtype=dtype)
    friction = torch.rand(b, c, generator=g, dtype=dtype) + 0.2
    return delassus, vf, target, reg, inv, friction


@pytest.mark.parametrize(
    ("dtype", "c", "limits", "tol"),
    [
        (torch.float64, 8, 8, 1e-12),  # the Ant's 32 rows
        (torch.float64, 3, 5, 1e-12),  # 14 rows: padded to 16
        (torch.float32, 8, 8, 2e-5),
        (torch.float32, 13, 9, 2e-5),  # 48 rows
        (torch.float64, 0, 6, 1e-12),  # joint limits only
        (torch.float64, 21, 1, 1e-12),  # 64 rows, the largest the op takes
    ],
)
def test_kernel_equals_reference(dtype, c, limits, tol):
    _kernel_or_skip()
    args = _problem(37, c, limits, dtype)
    want = jacobi_reference(*args, 20, 0.3)
    got = torch.ops.labworks_rigidsim.jacobi(*args, 20, 0.3)
    scale = want.abs().max()
    assert scale > 1e-3  # the problem is not trivially zero
    torch.testing.assert_close(got, want, atol=tol * scale, rtol=tol)


def test_kernel_propagates_nan_like_the_reference():
    """A NaN row (an exploding environment) stays NaN, so the environments can detect and reset it; the
    other environments are untouched."""
    _kernel_or_skip()
    args = list(_problem(6, 8, 8, torch.float64))
    args[1] = args[1].clone()
    args[1][2, 0] = float("nan")  # a contact normal's free velocity
    args[1][4, 30] = float("nan")  # a joint limit's
    want = jacobi_reference(*args, 20, 0.3)
    got = torch.ops.labworks_rigidsim.jacobi(*args, 20, 0.3)
    assert got[2].isnan().any() and got[4].isnan().any()
    torch.testing.assert_close(got.isnan(), want.isnan())
    ok = torch.tensor([0, 1, 3, 5])
    torch.testing.assert_close(got[ok], want[ok], atol=1e-12, rtol=1e-12)


def test_kernel_schema_and_fake_tensor():
    _kernel_or_skip()
    args = _problem(5, 4, 3, torch.float32)
    torch.library.opcheck(
        torch.ops.labworks_rigidsim.jacobi.default,
        (*args, 5, 0.3),
        test_utils=["test_schema", "test_faketensor"],
    )


def test_kernel_rejects_bad_shapes():
    _kernel_or_skip()
    d, vf, target, reg, inv, friction = _problem(4, 8, 8, torch.float32)
    with pytest.raises(RuntimeError, match="delassus must be"):
        torch.ops.labworks_rigidsim.jacobi(d[:, :-1], vf, target, reg, inv, friction, 5, 0.3)
    big = _problem(2, 22, 0, torch.float32)  # 66 rows
    with pytest.raises(RuntimeError, match="rows <= 64"):
        torch.ops.labworks_rigidsim.jacobi(*big, 5, 0.3)


def test_dispatch_uses_the_reference_for_gradients_and_large_problems(monkeypatch):
    """projected_jacobi takes the op only without gradients and up to 64 rows; the results agree."""
    _kernel_or_skip()
    calls = []
    real = jac_mod.jacobi_reference

    def spy(*a):
        calls.append(a[1].shape)
        return real(*a)

    monkeypatch.setattr(jac_mod, "jacobi_reference", spy)
    args = _problem(8, 8, 8, torch.float64)
    fast = projected_jacobi(*args, 20, 0.3)
    assert calls == []
    vf = args[1].clone().requires_grad_()
    slow = projected_jacobi(args[0], vf, *args[2:], 20, 0.3)
    assert len(calls) == 1
    slow.sum().backward()
    assert vf.grad is not None and vf.grad.abs().sum() > 0
    torch.testing.assert_close(fast, slow.detach(), atol=1e-10, rtol=1e-10)
    projected_jacobi(*_problem(2, 22, 0, torch.float64), 5, 0.3)
    assert len(calls) == 2


def test_ant_steps_with_the_kernel_equal_the_reference(assets, monkeypatch):
    """Whole Ant steps with contacts (float64, 20 steps from a dropped pose) agree with the kernel on and
    off (LABWORKS_DISABLE_KERNELS is read once per process, so the switch is patched)."""
    _kernel_or_skip()
    model = load_model(assets / "ant.xml", dtype=torch.float64)
    model.integrator = "euler"
    gen = torch.Generator().manual_seed(0)
    q0 = model.qpos0.expand(16, -1).clone()
    q0[:, 2] -= 0.2
    u = torch.rand(16, model.nu, generator=gen, dtype=torch.float64) * 2 - 1
    runs = []
    for on in (True, False):
        monkeypatch.setattr(jac_mod, "cpu_kernel_available", lambda on=on: on)
        q, qd = q0, torch.zeros(16, model.nv, dtype=torch.float64)
        with torch.no_grad():
            for _ in range(20):
                q, qd = step(model, q, qd, u)
        runs.append((q, qd))
    assert (runs[0][0][:, 2] > 0).all()  # resting on the floor, not through it
    torch.testing.assert_close(runs[0][0], runs[1][0], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(runs[0][1], runs[1][1], atol=1e-7, rtol=1e-7)
