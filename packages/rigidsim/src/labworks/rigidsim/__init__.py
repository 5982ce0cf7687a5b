"""labworks.rigidsim: batched, branch-free, differentiable rigid-body physics in PyTorch, with PPO/SAC.

from labworks.rigidsim import load_model, step, make, PPOConfig, train_ppo
model = load_model("ant.xml", device="cuda")
q, qd = step(model, q, qd, ctrl)          # q: (envs, nq), qd: (envs, nv), ctrl: (envs, nu)
fast = compile_step(model)                # the same step under torch.compile, chunked over envs
env = make("reacher", num_envs=512)       # functional: state = env.step(state, action)
train_ppo(PPOConfig(env="reacher"), "runs/reacher")
"""

from labworks.core import retain_freed_memory
from labworks.rigidsim.__about__ import __version__
from labworks.rigidsim.agents import ActorCritic, ObsNormalizer
from labworks.rigidsim.config import PPOConfig, SACConfig
from labworks.rigidsim.envs import ENVS, Env, EnvState, make
from labworks.rigidsim.kinematics import Dynamics, Kinematics, dynamics, kinematics
from labworks.rigidsim.mjcf import MJCFError, ModelSpec, load_mjcf, parse_mjcf
from labworks.rigidsim.model import Model, SolverOptions, load_model
from labworks.rigidsim.physics import applied_forces, compile_step, forward, integrate_pos, step
from labworks.rigidsim.ppo import TrainResult, evaluate_policy, load_agent, train_ppo
from labworks.rigidsim.render import body_poses, rollout_poses, write_gif, write_html
from labworks.rigidsim.sac import SACAgent, train_sac

__all__ = [
    "ENVS",
    "ActorCritic",
    "Dynamics",
    "Env",
    "EnvState",
    "Kinematics",
    "MJCFError",
    "Model",
    "ModelSpec",
    "ObsNormalizer",
    "PPOConfig",
    "SACAgent",
    "SACConfig",
    "SolverOptions",
    "TrainResult",
    "__version__",
    "applied_forces",
    "body_poses",
    "compile_step",
    "dynamics",
    "evaluate_policy",
    "forward",
    "integrate_pos",
    "kinematics",
    "load_agent",
    "load_mjcf",
    "load_model",
    "make",
    "parse_mjcf",
    "retain_freed_memory",
    "rollout_poses",
    "step",
    "train_ppo",
    "train_sac",
    "write_gif",
    "write_html",
]
