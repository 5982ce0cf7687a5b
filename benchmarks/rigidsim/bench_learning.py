"""The blog's fidelity argument: the same PPO (same code, settings and seed) on rigidsim and on MuJoCo
(gymnasium's Reacher-v5, vectorised) gives reward curves of similar shape. Prints both curves, the
wall-clock time of each, and writes an overlay plot.

    python benchmarks/rigidsim/bench_learning.py --steps 1500000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from labworks.core import atomic_write_text, retain_freed_memory
from labworks.rigidsim.config import PPOConfig
from labworks.rigidsim.envs.base import EnvState
from labworks.rigidsim.plots import plot_reward_curves
from labworks.rigidsim.ppo import train_ppo


class MujocoVectorEnv:
    """gymnasium's MuJoCo Reacher-v5 behind rigidsim's Env interface (init/step on EnvState)."""

    def __init__(self, env_id: str, num_envs: int, seed: int) -> None:
        self.venv = gym.make_vec(
            env_id,
            num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
        self.num_envs = num_envs
        self.seed = seed
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.obs_size = self.venv.single_observation_space.shape[0]
        self.action_size = self.venv.single_action_space.shape[0]
        self.episode_length = self.venv.spec.max_episode_steps if self.venv.spec else 50

    def init(self) -> EnvState:
        obs, _ = self.venv.reset(seed=self.seed)
        self._ret = np.zeros(self.num_envs)
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        z = torch.zeros(self.num_envs)
        f = torch.zeros(self.num_envs, dtype=torch.bool)
        return EnvState(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.as_tensor(obs, dtype=torch.float32),
                        z, f, f, torch.zeros(self.num_envs, dtype=torch.long), z, z, z, {})  # fmt: skip

    def step(self, state: EnvState, action: torch.Tensor) -> EnvState:
        a = np.clip(action.double().numpy(), -1.0, 1.0)
        obs, rew, term, trunc, _ = self.venv.step(a)
        self._ret += rew
        self._t += 1
        done = term | trunc
        final = self._ret.copy()
        length = self._t.copy()
        self._ret[done] = 0
        self._t[done] = 0
        t = torch.as_tensor
        return EnvState(torch.zeros(1), torch.zeros(1), torch.zeros(1), t(obs, dtype=torch.float32),
                        t(rew, dtype=torch.float32), t(done), t(trunc & ~term), t(self._t), t(self._ret).float(),
                        t(final).float(), t(length).float(), {})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1_500_000)
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-output/rigidsim/learning"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as the command line does: no page faults on the step's fresh tensors
    cfg = PPOConfig(
        env="reacher", num_envs=args.num_envs, unroll=50, total_steps=args.steps, epochs=8, minibatches=8, lr=1e-3,
        gamma=0.95, eval_every=5, eval_envs=64, device="cpu", integrator="rk4", seed=0,
    )  # fmt: skip
    runs = {}
    ours = train_ppo(cfg, args.out / "rigidsim", resume=False)
    runs["rigidsim (RK4)"] = ours
    mj = train_ppo(
        cfg, args.out / "mujoco", resume=False,
        env=MujocoVectorEnv("Reacher-v5", args.num_envs, 0),  # type: ignore[arg-type]
        eval_env=MujocoVectorEnv("Reacher-v5", 64, 10_000_019),  # type: ignore[arg-type]
    )  # fmt: skip
    runs["MuJoCo (gymnasium Reacher-v5)"] = mj
    print("| steps | rigidsim eval return | MuJoCo eval return |\n|---|---|---|")
    for s, a, b in zip(
        ours.history["eval_steps"], ours.history["eval_return"], mj.history["eval_return"], strict=False
    ):
        print(f"| {int(s)} | {a:.3f} | {b:.3f} |")
    print(f"wall clock: rigidsim {ours.seconds:.0f} s, MuJoCo {mj.seconds:.0f} s")
    plot_reward_curves({k: v.history for k, v in runs.items()}, args.out / "reacher_rigidsim_vs_mujoco.png",
                       title="PPO on Reacher: rigidsim vs MuJoCo (same PPO, same seed)")  # fmt: skip
    summary = {k: {"history": v.history, "seconds": v.seconds} for k, v in runs.items()}
    atomic_write_text(args.out / "learning.json", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
