"""Process-wide malloc setting that keeps a CPU loop from page-faulting.

A PyTorch step on CPU (a physics step, a training iteration) allocates its intermediate tensors afresh,
often tens of MB per call. glibc's malloc returns large freed blocks to the kernel, by ``munmap`` or by
trimming the top of its heap, so the next call touches fresh pages, and every 4 KiB page is a minor page
fault that the kernel must zero. On the 2-core benchmark VM a fault costs 3.4 us. Measured there:

- rigidsim's compiled Ant step took 800-2,300 faults per call at 1,024 environments and 1,700-7,800 at
  4,096 (up to a third of the step); retained, almost none: 1.22x (Euler, 1,024 environments) and 1.14x
  (RK4, 4,096);
- openbuildings' U-Net training iteration took 18-23k faults; retained, none: 1.06-1.08x.
"""

from __future__ import annotations

import ctypes
import platform

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems


def retain_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse: blocks up to 32 MiB come from the heap instead
    of fresh ``mmap`` pages, and up to ``trim_threshold`` bytes of free heap are not handed back.

    Affects the whole process (as ``LD_PRELOAD`` of jemalloc or tcmalloc would, which PyTorch's CPU tuning
    guide suggests for the same reason); the resident size then stays at its peak. The package command
    lines that measured a gain call it (``labworks rigidsim``, ``labworks openbuildings``); call it
    yourself before a long CPU simulation or training loop. Returns whether it was applied: False, and
    nothing changes, off Linux/glibc."""
    if not 0 < trim_threshold < 2**31:
        raise ValueError(f"trim_threshold must be in (0, 2**31), got {trim_threshold}")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX) == 1
    return libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok
