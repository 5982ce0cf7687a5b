"""retain_freed_memory (labworks.core, re-exported here) on the workload it was made for: after it,
repeated physics steps reuse memory instead of page-faulting on fresh pages."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_PROBE = """
import resource, sys, torch
from labworks.rigidsim import load_model, retain_freed_memory, step
from labworks.rigidsim.envs.base import gymnasium_asset

applied = retain_freed_memory() if sys.argv[1] == "retain" else None
torch.set_num_threads(1)
m = load_model(gymnasium_asset("ant.xml"), "cpu", torch.float32)
q, qd = m.qpos0.expand(2048, -1).clone(), torch.zeros(2048, m.nv)
with torch.no_grad():
    for _ in range(5):
        q, qd = step(m, q, qd)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        q, qd = step(m, q, qd)
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 10)
"""


def _faults_per_step(mode: str) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True, timeout=300
    ).stdout.split()
    return out[-2], float(out[-1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)
def test_retained_memory_removes_page_faults() -> None:
    applied, retained = _faults_per_step("retain")
    _, default = _faults_per_step("default")
    assert applied == "True"
    # an eager 2,048-env Ant step allocates tens of MB of fresh tensors: 6,700-8,900 faults per step
    # with glibc's defaults here, 0-180 retained (the rest is the VM reclaiming idle pages)
    assert retained < min(1000, default / 5), f"{retained} faults per step retained, {default} by default"
