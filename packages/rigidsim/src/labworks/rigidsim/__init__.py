"""labworks.rigidsim: batched, branch-free, differentiable rigid-body physics in PyTorch.

from labworks.rigidsim import load_model, step
model = load_model("ant.xml", device="cuda")
q, qd = step(model, q, qd, ctrl)          # q: (envs, nq), qd: (envs, nv), ctrl: (envs, nu)
"""

from labworks.rigidsim.__about__ import __version__
from labworks.rigidsim.kinematics import Dynamics, Kinematics, dynamics, kinematics
from labworks.rigidsim.mjcf import MJCFError, ModelSpec, load_mjcf, parse_mjcf
from labworks.rigidsim.model import Model, SolverOptions, load_model
from labworks.rigidsim.physics import applied_forces, forward, integrate_pos, step

__all__ = [
    "Dynamics",
    "Kinematics",
    "MJCFError",
    "Model",
    "ModelSpec",
    "SolverOptions",
    "__version__",
    "applied_forces",
    "dynamics",
    "forward",
    "integrate_pos",
    "kinematics",
    "load_mjcf",
    "load_model",
    "parse_mjcf",
    "step",
]
