"""Test utilities shared by every labworks package (import them in tests only).

- :func:`check_op`: a :class:`~labworks.core.kernels.KernelOp` agrees with its reference on
  every available path (dispatcher, Triton on CUDA or under ``TRITON_INTERPRET=1`` on CPU) and
  passes ``torch.library.opcheck``.
- :func:`skip_unless`: a skip that becomes a failure under CI (``CI`` set) unless
  ``LABWORKS_ALLOW_SKIP_<KEY>=1``, so a missing GPU or Triton never silently drops coverage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from labworks.core.kernels import KernelOp, has_triton, triton_interpret

__all__ = ["check_op", "skip_unless"]


def _flat(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, list | tuple):
        return [t for o in out for t in _flat(o)]
    return []


def _assert_same(got: Any, want: Any, what: str, atol: float | None, rtol: float | None) -> None:
    g, w = _flat(got), _flat(want)
    if len(g) != len(w):
        raise AssertionError(f"{what}: returned {len(g)} tensors, reference returned {len(w)}")
    for i, (a, b) in enumerate(zip(g, w, strict=True)):

        def _msg(m: str, i: int = i) -> str:
            return f"{what}, output {i}: {m}"

        torch.testing.assert_close(a.cpu(), b.cpu(), atol=atol, rtol=rtol, msg=_msg)


def _to(args: Sequence[Any], device: str) -> tuple[Any, ...]:
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


def check_op(
    op: KernelOp,
    *args: Any,
    atol: float | None = None,
    rtol: float | None = None,
    opcheck: bool = True,
    opcheck_utils: Sequence[str] = ("test_schema", "test_faketensor", "test_autograd_registration"),
    require_triton: bool = False,
) -> list[str]:
    """Check ``op`` against its reference on ``args``; returns the paths that were checked.

    Paths: ``"dispatch"`` (the registered op on the args' device), ``"triton"`` (the Triton
    implementation on CUDA, or on CPU under ``TRITON_INTERPRET=1``), ``"opcheck"``.
    ``require_triton`` turns "no way to run the Triton kernel here" into a failure.
    """
    want = op.reference(*args)
    checked = []
    _assert_same(op.op(*args), want, f"{op.name} via dispatcher", atol, rtol)
    checked.append("dispatch")
    if op.triton_impl is not None and has_triton():
        if torch.cuda.is_available():
            got = op(*_to(args, "cuda"), backend="triton")
            checked.append("triton")
        elif triton_interpret():
            got = op(*_to(args, "cpu"), backend="triton")
            checked.append("triton")
        else:
            got = None
        if got is not None:
            _assert_same(got, want, f"{op.name} Triton kernel", atol, rtol)
    if require_triton and "triton" not in checked:
        raise AssertionError(
            f"{op.name}: the Triton kernel was not exercised (no CUDA, and TRITON_INTERPRET=1 was not set "
            "before the kernel module was imported, or triton is missing)"
        )
    if opcheck:
        torch.library.opcheck(op.op, args, test_utils=list(opcheck_utils))
        checked.append("opcheck")
    return checked


def skip_unless(condition: bool, reason: str, key: str) -> None:
    """``pytest.skip(reason)`` unless ``condition`` — but under CI a skip fails the test.

    Set ``LABWORKS_ALLOW_SKIP_<KEY>=1`` to accept the skip in a CI that lacks, say, a GPU.
    """
    import pytest

    if condition:
        return
    if os.environ.get("CI") and os.environ.get(f"LABWORKS_ALLOW_SKIP_{key.upper()}") != "1":
        pytest.fail(f"{reason} (CI forbids this skip; set LABWORKS_ALLOW_SKIP_{key.upper()}=1 to allow it)")
    pytest.skip(reason)
