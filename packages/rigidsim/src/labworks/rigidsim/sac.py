"""Soft actor-critic on batched rigidsim environments with a device-resident replay buffer
(twin Q networks, target networks, automatic entropy temperature), checkpoints + resume.

Transitions that end by the time limit (whose successor is unknown after auto-reset) are kept out of the
Bellman targets through a validity mask.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from labworks.core import (
    CheckpointManager,
    atomic_write_text,
    get_logger,
    progress,
    save_checkpoint,
    seed_everything,
)
from labworks.rigidsim.agents import ObsNormalizer, mlp
from labworks.rigidsim.config import SACConfig
from labworks.rigidsim.envs import make
from labworks.rigidsim.ppo import TrainResult, record_eval, resume_run

__all__ = ["SACAgent", "train_sac"]

log = get_logger("labworks.rigidsim")


class SACAgent(nn.Module):
    """Tanh-squashed Gaussian actor and twin Q critics (with targets) on normalised observations."""

    def __init__(self, obs_size: int, action_size: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.normalizer = ObsNormalizer(obs_size)
        self.actor = mlp([obs_size, *hidden, 2 * action_size], act=nn.ReLU)
        self.q1 = mlp([obs_size + action_size, *hidden, 1], act=nn.ReLU)
        self.q2 = mlp([obs_size + action_size, *hidden, 1], act=nn.ReLU)
        self.q1_target = mlp([obs_size + action_size, *hidden, 1], act=nn.ReLU)
        self.q2_target = mlp([obs_size + action_size, *hidden, 1], act=nn.ReLU)
        self.q1_target.load_state_dict(self.q1.state_dict())
        self.q2_target.load_state_dict(self.q2.state_dict())
        self.log_alpha = nn.Parameter(torch.zeros(()))
        self.target_entropy = -float(action_size)

    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(action in (-1, 1), log-prob) with the tanh change of variables."""
        mu, log_std = self.actor(self.normalizer(obs)).chunk(2, -1)
        std = log_std.clamp(-5, 2).exp()
        pre = mu + std * torch.randn_like(mu)
        action = torch.tanh(pre)
        logp = torch.distributions.Normal(mu, std).log_prob(pre).sum(-1)
        logp = logp - (2 * (math.log(2) - pre - nn.functional.softplus(-2 * pre))).sum(-1)
        return action, logp

    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        if deterministic:
            mu, _ = self.actor(self.normalizer(obs)).chunk(2, -1)
            return torch.tanh(mu)
        return self.sample(obs)[0]

    def q(self, obs: Tensor, action: Tensor, target: bool = False) -> tuple[Tensor, Tensor]:
        x = torch.cat([self.normalizer(obs), action], -1)
        if target:
            return self.q1_target(x).squeeze(-1), self.q2_target(x).squeeze(-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


def train_sac(cfg: SACConfig, out_dir: str | Path, resume: bool = True) -> TrainResult:
    """Train SAC; writes checkpoints, ``agent.safetensors``, ``history.json`` and ``reward_curve.png``."""
    out = Path(out_dir)
    device = torch.device(
        "cpu"
        if cfg.device == "auto" and not torch.cuda.is_available()
        else ("cuda" if cfg.device == "auto" else cfg.device)
    )
    seed_everything(cfg.seed)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    env = make(
        cfg.env,
        cfg.num_envs,
        device=device,
        dtype=dtype,
        seed=cfg.seed,
        compile=cfg.compile,
        integrator=cfg.integrator,
    )
    eval_env = make(
        cfg.env, cfg.eval_envs, device=device, dtype=dtype, seed=cfg.seed + 10_000_019, model=env.model
    )
    agent = SACAgent(env.obs_size, env.action_size, cfg.hidden).to(device)
    actor_opt = torch.optim.Adam(agent.actor.parameters(), lr=cfg.lr)
    critic_opt = torch.optim.Adam([*agent.q1.parameters(), *agent.q2.parameters()], lr=cfg.lr)
    alpha_opt = torch.optim.Adam([agent.log_alpha], lr=cfg.lr)
    n, obs_size, act_size = cfg.buffer_size, env.obs_size, env.action_size
    buf = {
        "obs": torch.zeros(n, obs_size, device=device),
        "act": torch.zeros(n, act_size, device=device),
        "rew": torch.zeros(n, device=device),
        "next": torch.zeros(n, obs_size, device=device),
        "term": torch.zeros(n, device=device),
        "valid": torch.zeros(n, device=device),
    }
    ptr, size = 0, 0
    iterations = max(1, cfg.total_steps // cfg.num_envs)
    warmup = cfg.warmup_steps // cfg.num_envs
    updates = max(1, round(cfg.updates_per_step))
    every = max(1, round(1 / cfg.updates_per_step)) if cfg.updates_per_step < 1 else 1
    history: dict[str, list[float]] = {
        "steps": [],
        "train_return": [],
        "eval_steps": [],
        "eval_return": [],
        "seconds": [],
    }
    ckpts = CheckpointManager(out / "checkpoints", keep=2)
    start, elapsed0 = 0, 0.0
    if resume and (last := resume_run(ckpts, agent, None, cfg, device)) is not None:
        history, start, elapsed0 = last
        warmup = 0  # the replay buffer is not checkpointed: refill it with the current policy
        env.generator.manual_seed(cfg.seed + 7919 * start)
        log.info("resumed at iteration %d (replay buffer refilled by the policy)", start)
    state = env.init()
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 17 + start)
    ret_sum = torch.zeros((), device=device)  # on-device tallies, read at evaluation time
    ret_cnt = torch.zeros((), device=device)
    last_train = math.nan
    t0 = time.perf_counter()
    for it in progress(range(start, iterations), desc=f"sac {cfg.env}", initial=start, total=iterations):
        obs = state.obs.float()
        with torch.no_grad():
            agent.normalizer.update(obs)
            if it < warmup:
                action = torch.rand(cfg.num_envs, act_size, generator=gen, device=device) * 2 - 1
            else:
                action = agent.act(obs)
        state = env.step(state, action.to(dtype))
        idx = (ptr + torch.arange(cfg.num_envs, device=device)) % n
        buf["obs"][idx], buf["act"][idx] = obs, action
        buf["rew"][idx] = state.reward.float() * cfg.reward_scale
        buf["next"][idx] = state.obs.float()
        term = state.done & ~state.truncated
        buf["term"][idx] = term.float()
        # after a truncation the stored next obs is the reset one: keep those transitions out of targets
        buf["valid"][idx] = (~state.done | term).float()
        ptr, size = (ptr + cfg.num_envs) % n, min(n, size + cfg.num_envs)
        ret_sum += torch.where(state.done, state.final_return, 0.0).sum().float()
        ret_cnt += state.done.sum()
        if it >= warmup and it % every == 0:
            for _ in range(updates):
                j = torch.randint(0, size, (cfg.batch_size,), generator=gen, device=device)
                o, a, r, o2, d, v = (buf[k][j] for k in ("obs", "act", "rew", "next", "term", "valid"))
                alpha = agent.log_alpha.exp().detach()
                with torch.no_grad():
                    a2, logp2 = agent.sample(o2)
                    tq1, tq2 = agent.q(o2, a2, target=True)
                    y = r + cfg.gamma * (1 - d) * (torch.min(tq1, tq2) - alpha * logp2)
                q1, q2 = agent.q(o, a)
                critic_loss = (v * ((q1 - y) ** 2 + (q2 - y) ** 2)).sum() / v.sum().clamp_min(1)
                critic_opt.zero_grad(set_to_none=True)
                critic_loss.backward()
                critic_opt.step()
                pa, logp = agent.sample(o)
                qa1, qa2 = agent.q(o, pa)
                actor_loss = (alpha * logp - torch.min(qa1, qa2)).mean()
                actor_opt.zero_grad(set_to_none=True)
                actor_loss.backward()
                actor_opt.step()
                alpha_loss = -(agent.log_alpha * (logp.detach() + agent.target_entropy)).mean()
                alpha_opt.zero_grad(set_to_none=True)
                alpha_loss.backward()
                alpha_opt.step()
                with torch.no_grad():
                    for net, tgt in ((agent.q1, agent.q1_target), (agent.q2, agent.q2_target)):
                        for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                            tp.lerp_(p, cfg.tau)
        steps = (it + 1) * cfg.num_envs
        seconds = elapsed0 + time.perf_counter() - t0
        if (it + 1) % cfg.eval_every == 0 or it + 1 == iterations:
            history["steps"].append(float(steps))
            if int(ret_cnt):
                last_train = float(ret_sum) / int(ret_cnt)
                ret_sum.zero_()
                ret_cnt.zero_()
            history["train_return"].append(last_train)
            history["seconds"].append(seconds)
            record_eval(history, eval_env, agent, it + 1, steps, seconds)
        if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == iterations:
            ckpts.save(it + 1, agent, None, config=cfg, extra={"history": history, "seconds": seconds})
    seconds = elapsed0 + time.perf_counter() - t0
    path = out / "agent.safetensors"
    save_checkpoint(
        path, agent, config=cfg, step=iterations,
        extra={"obs_size": env.obs_size, "action_size": env.action_size, "history": history, "seconds": seconds},
    )  # fmt: skip
    atomic_write_text(out / "history.json", json.dumps(history, indent=1))
    from labworks.rigidsim.plots import plot_reward_curves

    plot_reward_curves({f"rigidsim {cfg.env}": history}, out / "reward_curve.png", title=f"SAC on {cfg.env}")
    return TrainResult(path, history, seconds)
