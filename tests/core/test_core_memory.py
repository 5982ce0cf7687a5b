"""retain_freed_memory: after it, a loop that allocates and frees large blocks reuses the memory instead
of page-faulting on fresh pages (the cost it removes from a CPU training or simulation step)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from labworks.core import retain_freed_memory

# 8 blocks of 2 MiB written and freed per iteration, as a step's intermediate tensors are: above glibc's
# default mmap threshold, each is fresh pages (512 faults) unless malloc keeps them
_PROBE = """
import resource, sys
from labworks.core import retain_freed_memory

applied = retain_freed_memory() if sys.argv[1] == "retain" else None

def work():
    blocks = [bytearray(2 << 20) for _ in range(8)]
    for b in blocks:
        b[::4096] = b"x" * len(range(0, len(b), 4096))
    return len(blocks)

for _ in range(3):
    work()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    work()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 20)
"""


def _faults_per_iteration(mode: str) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    return out[-2], float(out[-1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)
def test_retained_memory_removes_page_faults() -> None:
    applied, retained = _faults_per_iteration("retain")
    default_applied, default = _faults_per_iteration("default")
    assert applied == "True" and default_applied == "None"
    # 16 MiB of fresh pages per iteration by default: ~4,096 faults; retained, the heap is reused
    assert default > 2000, f"the probe should fault by default, got {default} per iteration"
    assert retained < default / 20, f"{retained} faults per iteration retained, {default} by default"


def test_rejects_bad_threshold() -> None:
    with pytest.raises(ValueError, match="trim_threshold"):
        retain_freed_memory(0)
    with pytest.raises(ValueError, match="trim_threshold"):
        retain_freed_memory(2**31)
