"""``labworks demo`` for rigidsim: PPO solves Reacher (gymnasium's -3.75 threshold) on this CPU, then an Ant
rollout is rendered to HTML and GIF. A few minutes on 2 CPU cores."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from labworks.core import atomic_write_text, retain_freed_memory
from labworks.rigidsim.config import PPOConfig
from labworks.rigidsim.envs.locomotion import Reacher
from labworks.rigidsim.ppo import train_ppo
from labworks.rigidsim.render import rollout_poses, write_gif, write_html


def demo(out_dir: Path, seed: int = 0) -> Path:
    out_dir = Path(out_dir)
    retain_freed_memory()
    cfg = PPOConfig(
        env="reacher",
        num_envs=512,
        unroll=50,
        total_steps=3_000_000,
        epochs=8,
        minibatches=8,
        lr=1e-3,
        gamma=0.95,
        eval_every=5,
        eval_envs=256,
        target_return=Reacher.reward_threshold,
        seed=seed,
        device="cpu",
    )
    result = train_ppo(cfg, out_dir / "reacher", resume=True)
    env, traj = rollout_poses("ant", 150, seed)
    write_html(env.model, traj, out_dir / "ant_rollout.html", dt=env.dt)
    write_gif(env.model, traj, out_dir / "ant_rollout.gif", dt=env.dt, every=3)
    reached = max(result.history["eval_return"]) if result.history["eval_return"] else None
    summary = {
        "reacher": {
            "best_eval_return": reached,
            "threshold": Reacher.reward_threshold,
            "solved": reached is not None and reached >= Reacher.reward_threshold,
            "env_steps": result.history["steps"][-1] if result.history["steps"] else 0,
            "seconds": result.seconds,
            "torch_threads": torch.get_num_threads(),
            "reward_curve": str(out_dir / "reacher" / "reward_curve.png"),
        },
        "ant_rollout": [str(out_dir / "ant_rollout.html"), str(out_dir / "ant_rollout.gif")],
    }
    return atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
