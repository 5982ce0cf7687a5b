"""rigidsim's C++ CPU ops equal their plain-PyTorch references (labworks_rigidsim::jacobi the Jacobi loop,
labworks_rigidsim::spd_inverse the inverse), and the step uses them only where it may (no gradient)."""

from __future__ import annotations

import pytest
import torch

from labworks.core.testing import skip_unless
from labworks.rigidsim import cpu_ops, load_model, step
from labworks.rigidsim import jacobi as jac_mod
from labworks.rigidsim.jacobi import jacobi_reference, projected_jacobi
from labworks.rigidsim.linalg import spd_inverse


def _kernel_or_skip() -> None:
    skip_unless(cpu_ops.available(), "rigidsim's C++ CPU ops did not build here", "cpu_kernel")


def _problem(b: int, c: int, limits: int, dtype: torch.dtype, seed: int = 0) -> tuple:
    """A well-posed random solve: J and M^-1 J^T from random J and SPD M^-1 (the Delassus matrix
    D = J M^-1 J^T is their product), the step sizes the step uses, some rows inactive."""
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
    return jac, w, vf, target, reg, inv, friction


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


def test_kernel_reads_strided_inputs():
    """J and M^-1 J^T are read through their strides (batch-last, transposed, a slice), not copied."""
    _kernel_or_skip()
    jac, w, *rest = _problem(11, 8, 8, torch.float64)
    want = jacobi_reference(jac, w, *rest, 20, 0.3)
    jac_last = jac.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    w_t = w.transpose(1, 2).contiguous().transpose(1, 2)
    wide = torch.cat([w, torch.full_like(w, float("nan"))], 2)[:, :, : w.shape[2]]
    for j, m in ((jac_last, w), (jac, w_t), (jac_last, wide)):
        assert not (j.is_contiguous() and m.is_contiguous())
        got = torch.ops.labworks_rigidsim.jacobi(j, m, *rest, 20, 0.3)
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


def test_spd_inverse_reads_strided_inputs():
    """A batch-last mass matrix (as compiled code hands it over) is read in place, not copied first."""
    _kernel_or_skip()
    a = _spd(9, 14, torch.float64)
    last = a.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    assert not last.is_contiguous()
    torch.testing.assert_close(torch.ops.labworks_rigidsim.spd_inverse(last), torch.linalg.inv(a))


def test_kernel_propagates_nan_like_the_reference():
    """A NaN row (an exploding environment) stays NaN, so the environments can detect and reset it; the
    other environments are untouched."""
    _kernel_or_skip()
    args = list(_problem(6, 8, 8, torch.float64))
    args[2] = args[2].clone()
    args[2][2, 0] = float("nan")  # a contact normal's free velocity
    args[2][4, 30] = float("nan")  # a joint limit's
    args[1] = args[1].clone()
    args[1][3] = float("nan")  # M^-1 J^T of a mass matrix that was not positive definite
    want = jacobi_reference(*args, 20, 0.3)
    got = torch.ops.labworks_rigidsim.jacobi(*args, 20, 0.3)
    assert got[2].isnan().any() and got[4].isnan().any() and got[3].isnan().all()
    torch.testing.assert_close(got.isnan(), want.isnan())
    ok = torch.tensor([0, 1, 5])
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
    jac, w, *rest = _problem(4, 8, 8, torch.float32)
    with pytest.raises(RuntimeError, match="jac must be"):
        torch.ops.labworks_rigidsim.jacobi(jac[:, :-1], w, *rest, 5, 0.3)
    with pytest.raises(RuntimeError, match="minv_jt must be"):
        torch.ops.labworks_rigidsim.jacobi(jac, w[:, :-1], *rest, 5, 0.3)
    big = _problem(2, 22, 0, torch.float32)  # 66 rows
    with pytest.raises(RuntimeError, match="rows <= 64"):
        torch.ops.labworks_rigidsim.jacobi(*big, 5, 0.3)


def test_dispatch_uses_the_reference_for_gradients_and_large_problems(monkeypatch):
    """projected_jacobi takes the op only without gradients and up to 64 rows; the results agree."""
    _kernel_or_skip()
    calls = []
    real = jac_mod.jacobi_reference

    def spy(*a):
        calls.append(a[2].shape)
        return real(*a)

    monkeypatch.setattr(jac_mod, "jacobi_reference", spy)
    args = _problem(8, 8, 8, torch.float64)
    fast = projected_jacobi(*args, 20, 0.3)
    assert calls == []
    vf = args[2].clone().requires_grad_()
    slow = projected_jacobi(*args[:2], vf, *args[3:], 20, 0.3)
    assert len(calls) == 1
    slow.sum().backward()
    assert vf.grad is not None and vf.grad.abs().sum() > 0
    torch.testing.assert_close(fast, slow.detach(), atol=1e-10, rtol=1e-10)
    projected_jacobi(*_problem(2, 22, 0, torch.float64), 5, 0.3)
    assert len(calls) == 2


def test_ant_steps_with_the_kernels_equal_the_references(assets, monkeypatch):
    """Whole Ant steps with contacts (float64, 20 steps from a dropped pose) agree with the C++ ops on and
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
        monkeypatch.setattr(cpu_ops, "available", lambda on=on: on)
        q, qd = q0, torch.zeros(16, model.nv, dtype=torch.float64)
        with torch.no_grad():
            for _ in range(20):
                q, qd = step(model, q, qd, u)
        runs.append((q, qd))
    assert (runs[0][0][:, 2] > 0).all()  # resting on the floor, not through it
    torch.testing.assert_close(runs[0][0], runs[1][0], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(runs[0][1], runs[1][1], atol=1e-7, rtol=1e-7)


def _spd(b: int, n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, n, n, generator=g, dtype=dtype)
    return a @ a.transpose(1, 2) / n + 0.05 * torch.eye(n, dtype=dtype)


@pytest.mark.parametrize(("n", "b"), [(14, 37), (2, 5), (23, 8), (1, 3), (9, 0)])
def test_spd_inverse_equals_lapack(n, b):
    """Batches that are not a multiple of the SIMD width (37 = 4 full groups of 8 floats + 5), the Ant's,
    Reacher's, Humanoid's sizes; float64 to LAPACK's inverse at 1e-10 (relative to its size), float32 at
    1e-4 on well-conditioned matrices."""
    _kernel_or_skip()
    a = _spd(b, n, torch.float64)
    want = torch.cholesky_inverse(torch.linalg.cholesky(a)) if b else a.clone()
    got = torch.ops.labworks_rigidsim.spd_inverse(a)
    scale = want.abs().amax() if b else 1.0
    torch.testing.assert_close(got, want, atol=1e-10 * scale, rtol=1e-10)
    a32 = a.float() + torch.eye(n)
    want32 = torch.linalg.inv(a32.double()).float()
    torch.testing.assert_close(torch.ops.labworks_rigidsim.spd_inverse(a32), want32, atol=1e-4, rtol=1e-4)


def test_spd_inverse_gives_nan_for_a_matrix_that_is_not_positive_definite(monkeypatch):
    """Only the bad environment's matrix is NaN (LAPACK's path does the same), so the step resets that
    environment alone."""
    _kernel_or_skip()
    a = _spd(11, 14, torch.float32)
    a[9, 3, 3] = -5.0
    got = torch.ops.labworks_rigidsim.spd_inverse(a)
    bad = got.isnan().flatten(1)
    assert bad[9].all() and not bad[torch.arange(11) != 9].any()
    monkeypatch.setattr(cpu_ops, "available", lambda: False)  # linalg.spd_inverse falls back to LAPACK
    lapack = spd_inverse(a)
    assert lapack[9].isnan().all()
    torch.testing.assert_close(got[:9], lapack[:9], atol=1e-4, rtol=1e-4)


def test_spd_inverse_schema_and_fake_tensor():
    _kernel_or_skip()
    torch.library.opcheck(
        torch.ops.labworks_rigidsim.spd_inverse.default,
        (_spd(5, 6, torch.float32),),
        test_utils=["test_schema", "test_faketensor"],
    )


def test_spd_inverse_keeps_gradients_on_the_reference():
    """With a gradient needed, linalg.spd_inverse takes LAPACK, and the gradient is that of the inverse."""
    _kernel_or_skip()
    a = _spd(4, 5, torch.float64).requires_grad_()
    spd_inverse(a).sum().backward()
    want = torch.func.grad(lambda x: torch.linalg.inv(x).sum())(a.detach())
    torch.testing.assert_close(a.grad, want)


def test_ops_under_compile_with_non_contiguous_inputs():
    """The ops return contiguous tensors whatever their inputs' strides, and their fake implementations
    must say so: compiled code reads the result with the fake's strides (a batch-last mass matrix seen
    batch-first once made the compiled step read garbage)."""
    _kernel_or_skip()
    a = _spd(6, 5, torch.float32).permute(1, 2, 0).contiguous()  # batch-last storage
    args = _problem(6, 4, 3, torch.float32)
    vf_t = args[2].t().contiguous()
    jac_last = args[0].permute(1, 2, 0).contiguous()

    def f(a_last: torch.Tensor, vf_last: torch.Tensor, j_last: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inv = torch.ops.labworks_rigidsim.spd_inverse(a_last.permute(2, 0, 1))
        lam = torch.ops.labworks_rigidsim.jacobi(
            j_last.permute(2, 0, 1), args[1], vf_last.t(), *args[3:], 5, 0.3
        )
        return inv * 2, lam * 2

    torch._dynamo.reset()
    got = torch.compile(f, dynamic=False)(a, vf_t, jac_last)
    want = f(a, vf_t, jac_last)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
