"""KernelOp: a custom op with a PyTorch reference and a Triton kernel checked against it.

On a CPU machine the Triton kernel runs under TRITON_INTERPRET=1 (set by tests/conftest.py before
this module defines it)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from labworks.core import KernelOp, has_triton
from labworks.core.kernels import triton_interpret
from labworks.core.testing import check_op, skip_unless


def _rms_scale_ref(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Row-wise RMS normalisation: ``x / sqrt(mean(x**2) + eps) * weight``; x: (rows, cols)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, weight, eps = inputs
    ctx.save_for_backward(x, weight)
    ctx.eps = eps


def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
    x, weight = ctx.saved_tensors
    with torch.enable_grad():
        xd, wd = x.detach().requires_grad_(), weight.detach().requires_grad_()
        out = _rms_scale_ref(xd, wd, ctx.eps)
        gx, gw = torch.autograd.grad(out, (xd, wd), grad)
    return gx, gw, None


rms_scale = KernelOp("labworks_test::rms_scale", _rms_scale_ref, backward=_backward, setup_context=_setup)

if has_triton():
    import triton
    import triton.language as tl

    @triton.jit
    def _rms_scale_kernel(x_ptr, w_ptr, out_ptr, cols, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        mask = offs < cols
        x = tl.load(x_ptr + row * cols + offs, mask=mask, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        inv = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / cols + eps)
        tl.store(out_ptr + row * cols + offs, x * inv * w, mask=mask)

    @rms_scale.triton
    def _rms_scale_triton(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        x = x.contiguous()
        out = torch.empty_like(x)
        rows, cols = x.shape
        _rms_scale_kernel[(rows,)](x, weight.contiguous(), out, cols, eps, BLOCK=triton.next_power_of_2(cols))
        return out


@pytest.mark.triton_interp
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (16, 64), (3, 130)])
def test_triton_kernel_matches_reference_and_passes_opcheck(shape: tuple[int, int]) -> None:
    skip_unless(has_triton(), "triton is not importable", "TRITON")
    x = torch.randn(*shape, requires_grad=True)
    w = torch.rand(shape[1], requires_grad=True)
    checked = check_op(rms_scale, x, w, 1e-6, atol=1e-5, rtol=1e-5, require_triton=True)
    assert checked == ["dispatch", "triton", "opcheck"]


def test_dispatch_and_autograd_use_the_reference_on_cpu() -> None:
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    w = torch.rand(6, dtype=torch.float64, requires_grad=True)
    out = rms_scale(x, w, 1e-6)
    torch.testing.assert_close(out, _rms_scale_ref(x, w, 1e-6))
    assert torch.autograd.gradcheck(lambda a, b: rms_scale(a, b, 1e-6), (x, w))


def test_backends_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w = torch.randn(2, 3), torch.ones(3)
    torch.testing.assert_close(rms_scale(x, w, 1e-6, backend="reference"), _rms_scale_ref(x, w, 1e-6))
    with pytest.raises(ValueError, match="backend"):
        rms_scale(x, w, 1e-6, backend="cuda")  # type: ignore[arg-type]
    plain = KernelOp("labworks_test::plain_double", lambda_double)
    with pytest.raises(ValueError, match="no Triton implementation"):
        plain(x, backend="triton")
    with pytest.raises(ValueError, match="namespace::name"):
        KernelOp("no_namespace", lambda_double)
    torch.testing.assert_close(torch.ops.labworks_test.plain_double(x), 2 * x)


def lambda_double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def test_compile_sees_the_op() -> None:
    fn = torch.compile(lambda a, b: rms_scale(a, b, 1e-6) + 1, backend="aot_eager", fullgraph=True)
    x, w = torch.randn(3, 5), torch.rand(5)
    torch.testing.assert_close(fn(x, w), _rms_scale_ref(x, w, 1e-6) + 1)


def test_check_op_notices_a_wrong_kernel() -> None:
    skip_unless(
        has_triton() and (torch.cuda.is_available() or triton_interpret()),
        "no way to run Triton here",
        "TRITON",
    )
    bad = KernelOp("labworks_test::bad_copy", lambda_double)
    bad.triton(lambda x: x * 3)
    with pytest.raises(AssertionError, match="Triton kernel"):
        check_op(bad, torch.randn(4), opcheck=False)


@pytest.mark.gpu
def test_triton_kernel_on_cuda_and_disable_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    skip_unless(torch.cuda.is_available(), "no CUDA device", "GPU")
    x, w = torch.randn(64, 256, device="cuda"), torch.rand(256, device="cuda")
    check_op(rms_scale, x, w, 1e-6, atol=1e-5, rtol=1e-5, require_triton=True)
    monkeypatch.setenv("LABWORKS_DISABLE_KERNELS", "1")
    torch.testing.assert_close(rms_scale(x, w, 1e-6), _rms_scale_ref(x, w, 1e-6))
