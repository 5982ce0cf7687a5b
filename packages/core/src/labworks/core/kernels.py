"""Declare a kernel once: a ``torch.library`` custom op whose default implementation is plain
PyTorch (the CPU path and the test oracle), with an optional Triton kernel for CUDA tensors.

Example::

    def _scale_add_ref(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
        return x + alpha * y

    scale_add = KernelOp("labworks_demo::scale_add", _scale_add_ref)

    @scale_add.triton
    def _scale_add_triton(x, y, alpha):
        out = torch.empty_like(x)
        _kernel[grid](x, y, out, alpha, x.numel(), BLOCK=1024)
        return out

    z = scale_add(x, y, 0.5)                       # dispatches: Triton on CUDA, reference elsewhere
    z = scale_add(x, y, 0.5, backend="reference")  # A/B testing

Set ``LABWORKS_DISABLE_KERNELS=1`` to force the reference path everywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

__all__ = ["KernelOp", "has_triton", "kernels_disabled", "triton_interpret"]

_log = logging.getLogger(__name__)
Backend = Literal["auto", "reference", "triton"]


@functools.cache
def has_triton() -> bool:
    """Triton is importable (it ships with torch's CUDA wheels on Linux)."""
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        import triton  # noqa: F401
    except Exception as err:  # a broken install must not take the reference path down with it
        _log.warning("triton is installed but failed to import (%s); using reference kernels", err)
        return False
    return True


def kernels_disabled() -> bool:
    """``LABWORKS_DISABLE_KERNELS=1`` forces every op onto its reference implementation."""
    return os.environ.get("LABWORKS_DISABLE_KERNELS", "0") not in {"", "0", "false", "False"}


def triton_interpret() -> bool:
    """Triton kernels run on the CPU interpreter (``TRITON_INTERPRET=1`` set before they were defined)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


class KernelOp:
    """A custom op ``namespace::name`` built from a reference implementation.

    Args:
        name: qualified op name, ``"labworks_<pkg>::<op>"``.
        reference: plain-PyTorch function with type-annotated tensor/scalar arguments. It is the
            default implementation on every device, the CPU fallback and the test oracle. It
            must return new tensors (never views of its inputs).
        mutates_args: names of arguments the op writes into.
        fake: shape/dtype propagation for ``torch.compile`` and meta tensors. Defaults to the
            reference itself, which is right whenever output shapes do not depend on data.
        backward, setup_context: optional autograd formula (see
            ``torch.library.register_autograd``).
    """

    def __init__(
        self,
        name: str,
        reference: Callable[..., Any],
        *,
        mutates_args: Iterable[str] = (),
        fake: Callable[..., Any] | None = None,
        backward: Callable[..., Any] | None = None,
        setup_context: Callable[..., Any] | None = None,
    ) -> None:
        if "::" not in name:
            raise ValueError(f"op name must be 'namespace::name', got {name!r}")
        self.name = name
        self.reference = reference
        self.triton_impl: Callable[..., Any] | None = None
        self.op = torch.library.custom_op(name, mutates_args=tuple(mutates_args))(reference)
        self.op.register_fake(fake if fake is not None else reference)
        if backward is not None:
            self.op.register_autograd(backward, setup_context=setup_context)
        functools.update_wrapper(self, reference)

    def triton(self, impl: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: register ``impl`` (which launches Triton kernels) for CUDA tensors.

        ``impl`` takes the op's arguments and returns its outputs. Without Triton the
        registration is skipped and CUDA tensors use the reference.
        """
        self.triton_impl = impl
        if has_triton():

            def _cuda(*args: Any, **kwargs: Any) -> Any:
                if kernels_disabled():
                    return self.reference(*args, **kwargs)
                return impl(*args, **kwargs)

            self.op.register_kernel("cuda")(_cuda)
        return impl

    def __call__(self, *args: Any, backend: Backend = "auto", **kwargs: Any) -> Any:
        if backend == "auto":
            return self.op(*args, **kwargs)
        if backend == "reference":
            return self.reference(*args, **kwargs)
        if backend == "triton":
            if self.triton_impl is None:
                raise ValueError(f"{self.name} has no Triton implementation")
            if not has_triton():
                raise RuntimeError(f"{self.name}: backend='triton' requested but triton is not importable")
            return self.triton_impl(*args, **kwargs)
        raise ValueError(f"backend must be 'auto', 'reference' or 'triton', got {backend!r}")

    def __repr__(self) -> str:
        return f"KernelOp({self.name!r}, triton={'yes' if self.triton_impl else 'no'})"
