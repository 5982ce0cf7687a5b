"""Projected Jacobi iterations of the constraint solve, and their CPU kernel.

:func:`jacobi_reference` is the plain-PyTorch loop and the specification. On CPU, :func:`projected_jacobi`
runs the C++ op ``labworks_rigidsim::jacobi`` (``csrc/jacobi.cpp``) instead whenever no gradient is
needed. The loop streams every environment's Delassus matrix through memory once per iteration. The op
runs all iterations of one environment while its matrix sits in L1. Measured at 1,024 Ant environments on
2 threads, paired: the eager step 1.38x, the compiled Euler step 1.21x.

The op is compiled on first use with ``torch.utils.cpp_extension`` (about 10 s, then cached on disk per
CPU model; it needs a C++ compiler, as ``torch.compile`` on CPU does). Without a compiler, or with
``LABWORKS_DISABLE_KERNELS=1``, everything runs on the reference.
"""

from __future__ import annotations

import hashlib
import logging
import platform
from pathlib import Path

import torch
from torch import Tensor

from labworks.core import kernels_disabled
from labworks.rigidsim.math import safe_norm

__all__ = ["MAX_KERNEL_ROWS", "cpu_kernel_available", "jacobi_reference", "projected_jacobi"]

_log = logging.getLogger(__name__)
_SOURCE = Path(__file__).parent / "csrc" / "jacobi.cpp"
MAX_KERNEL_ROWS = 64
# -fno-math-errno / -fno-trapping-math let GCC vectorise the friction cone (sqrt, division, selects);
# neither changes a result (no errno or FP-exception flags are read)
_CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]


def jacobi_reference(
    delassus: Tensor,
    vf: Tensor,
    target: Tensor,
    reg: Tensor,
    inv: Tensor,
    friction: Tensor,
    iterations: int,
    relaxation: float,
) -> Tensor:
    """Constraint impulses lam: (B, R) after ``iterations`` projected Jacobi sweeps from lam = 0.

    delassus: (B, R, R) = J M^-1 J^T (symmetric); vf, target, reg, inv: (B, R) (free velocity, target
    velocity, regulariser, relaxation step 1/(diag + reg), 0 on inactive rows); friction: (B, C). Rows:
    contact normals [0, C), first tangents [C, 2C), second tangents [2C, 3C), joint limits [3C, R).
    Each sweep: lam += relaxation * (target - (vf + D lam) - reg * lam) * inv, then normals and limits
    clamped at 0 and each contact's tangential impulse projected into its friction cone (elliptic)."""
    c = friction.shape[-1] if friction.dim() == 2 else 0
    lam = torch.zeros_like(vf)
    eager = not torch.compiler.is_compiling()
    for _ in range(iterations):
        if eager:  # D is symmetric, so D lam = (lam^T D)^T: a row-vector BLAS product, 2.7x the multiply-sum
            v = vf + torch.bmm(lam.unsqueeze(1), delassus).squeeze(1)
        else:  # compiled, the multiply-sum fuses into the loop's kernel (bmm measured 0.94x)
            v = vf + (delassus * lam.unsqueeze(1)).sum(-1)
        lam = lam + relaxation * (target - v - reg * lam) * inv
        if c:
            ln = lam[:, :c].clamp_min(0)
            lt = lam[:, c : 3 * c].view(-1, 2, c)
            bound = (friction * ln).unsqueeze(1)
            norm = safe_norm(lt.transpose(1, 2)).transpose(1, 2)
            lt = lt * torch.minimum(torch.ones_like(norm), bound / norm.clamp_min(1e-12))
            lam = torch.cat([ln, lt.reshape(-1, 2 * c), lam[:, 3 * c :].clamp_min(0)], 1)
        else:
            lam = lam.clamp_min(0)
    return lam


def _build_tag() -> str:
    """Machine, CPU feature flags and torch version: the op is built with -march=native against torch's
    C++ API, so a cache shared between machines (a network home directory) or kept across a torch upgrade
    must not hand one build to another."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        flags = platform.processor()
    return hashlib.sha1(f"{platform.machine()} {flags} {torch.__version__}".encode()).hexdigest()[:10]


_built: list[bool] = []  # the outcome of the one build attempt per process


@torch.compiler.assume_constant_result  # run, not traced, when first met under torch.compile
def cpu_kernel_available() -> bool:
    """Build (first call in a process: ~10 s, or a disk-cache hit) and register the C++ op; False,
    with one warning, if that fails. Always False under ``LABWORKS_DISABLE_KERNELS=1``."""
    if not _built:
        _built.append(_build())
    return _built[0]


def _build() -> bool:
    if kernels_disabled():
        return False
    try:
        from torch.utils.cpp_extension import load

        load(
            name=f"labworks_rigidsim_cpu_{_build_tag()}",
            sources=[str(_SOURCE)],
            extra_cflags=_CFLAGS,
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as err:  # no compiler, no ninja, an unsupported platform: the reference still works
        first = str(err).strip().splitlines()[:1]
        _log.warning("rigidsim's CPU contact kernel could not be built (%s); using the PyTorch loop", first)
        return False

    @torch.library.register_fake("labworks_rigidsim::jacobi")
    def _fake(delassus: Tensor, vf: Tensor, *rest: object) -> Tensor:
        return torch.empty_like(vf)

    return True


def projected_jacobi(
    delassus: Tensor,
    vf: Tensor,
    target: Tensor,
    reg: Tensor,
    inv: Tensor,
    friction: Tensor,
    iterations: int,
    relaxation: float,
) -> Tensor:
    """:func:`jacobi_reference`'s result, from the CPU op where it applies: CPU float tensors, at most
    ``MAX_KERNEL_ROWS`` rows, no gradient needed. All conditions are static, so under ``torch.compile``
    the choice is made once, at tracing."""
    args = (delassus, vf, target, reg, inv, friction)
    b = vf.shape[0]
    if friction.dim() != 2:  # no contact candidates in the model: friction is an empty vector
        friction = friction.new_zeros(b, 0)
    use_kernel = (
        vf.device.type == "cpu"
        and vf.dtype in (torch.float32, torch.float64)
        and vf.shape[1] <= MAX_KERNEL_ROWS
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in args))
        and cpu_kernel_available()
    )
    if not use_kernel:
        return jacobi_reference(*args, iterations, relaxation)
    mu = friction.expand(b, -1)
    return torch.ops.labworks_rigidsim.jacobi(delassus, vf, target, reg, inv, mu, iterations, relaxation)
