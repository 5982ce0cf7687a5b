"""Fidelity against MuJoCo: Reacher trajectories (RK4 and Euler) and the conservation drift of a
free-floating Humanoid against time step, rigidsim and MuJoCo side by side (table + conservation.png).

    python benchmarks/rigidsim/bench_fidelity.py --out bench-output/rigidsim/fidelity
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from labworks.rigidsim.fidelity import fidelity_report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("bench-output/rigidsim/fidelity"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    fidelity_report(args.out)
    print((args.out / "fidelity.md").read_text())
    print(f"plot: {args.out / 'conservation.png'}")


if __name__ == "__main__":
    main()
