"""rigidsim's C++ CPU ops (``csrc/``), registered as ``torch.library`` ops in the ``labworks_rigidsim``
namespace, each with a plain-PyTorch reference that tests hold it to:

- ``jacobi``: the constraint solve's projected Jacobi iterations (:mod:`labworks.rigidsim.jacobi`);
- ``spd_inverse``: inverses of the joint-space mass matrices (:func:`labworks.rigidsim.linalg.spd_inverse`).

They are compiled together on first use with ``torch.utils.cpp_extension`` (about 15 s, then cached on
disk per CPU model and torch version; it needs a C++ compiler, as ``torch.compile`` on CPU does). They run
where :func:`usable` holds: CPU float tensors, no gradient needed. Without a compiler, or with
``LABWORKS_DISABLE_KERNELS=1``, everything runs on the references.
"""

from __future__ import annotations

import hashlib
import logging
import platform
from pathlib import Path

import torch
from torch import Tensor

from labworks.core import kernels_disabled

__all__ = ["available", "usable"]

_log = logging.getLogger(__name__)
_SOURCES = [Path(__file__).parent / "csrc" / f for f in ("jacobi.cpp", "spd_inverse.cpp")]
# -fno-math-errno / -fno-trapping-math let GCC vectorise sqrt, division and selects; neither changes a
# result (no errno or FP-exception flags are read)
_CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]


def _build_tag() -> str:
    """Machine, CPU feature flags and torch version: the ops are built with -march=native against torch's
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
def available() -> bool:
    """Build (first call in a process: ~15 s, or a disk-cache hit) and register the ops; False, with one
    warning, if that fails. Always False under ``LABWORKS_DISABLE_KERNELS=1``."""
    if not _built:
        _built.append(_build())
    return _built[0]


def _build() -> bool:
    if kernels_disabled():
        return False
    quiet = logging.getLogger("torch.utils.cpp_extension")  # warns about a missing CUDA on import
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        from torch.utils.cpp_extension import load

        load(
            name=f"labworks_rigidsim_cpu_{_build_tag()}",
            sources=[str(s) for s in _SOURCES],
            extra_cflags=_CFLAGS,
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as err:  # no compiler, no ninja, an unsupported platform: the references still work
        first = str(err).strip().splitlines()[:1]
        _log.warning("rigidsim's C++ CPU ops could not be built (%s); using the PyTorch references", first)
        return False
    finally:
        quiet.setLevel(level)

    # the ops return contiguous tensors whatever their inputs' strides (empty_like would copy those)
    @torch.library.register_fake("labworks_rigidsim::jacobi")
    def _jacobi_fake(jac: Tensor, minv_jt: Tensor, vf: Tensor, *rest: object) -> Tensor:
        return vf.new_empty(vf.shape)

    @torch.library.register_fake("labworks_rigidsim::spd_inverse")
    def _spd_inverse_fake(a: Tensor) -> Tensor:
        return a.new_empty(a.shape)

    return True


def usable(*tensors: Tensor) -> bool:
    """The ops apply: CPU float32/float64 tensors, no gradient needed, and the ops built. Every condition
    is static, so under ``torch.compile`` the choice is made once, at tracing."""
    t = tensors[0]
    return (
        t.device.type == "cpu"
        and t.dtype in (torch.float32, torch.float64)
        and not (torch.is_grad_enabled() and any(x.requires_grad for x in tensors))
        and available()
    )
