"""Proximal policy optimisation on batched rigidsim environments, entirely on one device per rank.

Rollouts, advantage estimation (GAE) and updates never leave the device; observation statistics are kept
in the agent (and averaged across ranks under ``torchrun``); checkpoints carry the config and resume.

    from labworks.rigidsim import PPOConfig, train_ppo
    result = train_ppo(PPOConfig(env="reacher", total_steps=2_000_000), "runs/reacher")
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from labworks.core import (
    CheckpointManager,
    atomic_write_text,
    get_logger,
    init_distributed,
    is_main_process,
    load_checkpoint,
    progress,
    save_checkpoint,
    seed_everything,
    wrap_ddp,
)
from labworks.rigidsim.agents import ActorCritic
from labworks.rigidsim.config import PPOConfig, SACConfig
from labworks.rigidsim.envs import Env, make

__all__ = ["TrainResult", "evaluate_policy", "load_agent", "train_ppo"]

log = get_logger("labworks.rigidsim")


@dataclass
class TrainResult:
    agent_path: Path
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def _dtype(name: str) -> torch.dtype:
    return torch.float64 if name == "float64" else torch.float32


@torch.no_grad()
def evaluate_policy(env: Env, policy: torch.nn.Module, deterministic: bool = True) -> float:
    """Mean return of the first full episode of each of env's environments (policy: an ActorCritic)."""
    state = env.init()
    finished = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
    returns = torch.zeros(env.num_envs, dtype=env.dtype, device=env.device)
    for _ in range(env.episode_length):
        action = policy.act(state.obs, deterministic=deterministic)  # type: ignore[operator]
        state = env.step(state, action.to(env.dtype))
        first = state.done & ~finished
        returns = torch.where(first, state.final_return, returns)
        finished |= state.done
    return float(returns.mean())


def load_agent(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[ActorCritic, PPOConfig]:
    """A trained agent file (safetensors + config) -> (agent in eval mode, its config)."""
    ckpt = load_checkpoint(path, config_cls=PPOConfig, map_location=map_location)
    cfg: PPOConfig = ckpt.config
    agent = ActorCritic(int(ckpt.extra["obs_size"]), int(ckpt.extra["action_size"]), cfg.hidden)
    agent.load_state_dict(ckpt.model)
    return agent.eval(), cfg


def record_eval(
    history: dict[str, list[float]],
    eval_env: Env,
    agent: ActorCritic | torch.nn.Module,
    iteration: int,
    steps: int,
    seconds: float,
) -> None:
    """Evaluate the policy, append (steps, return) to the history and log it."""
    history["eval_steps"].append(float(steps))
    history["eval_return"].append(evaluate_policy(eval_env, agent))
    log.info(
        "iteration %d steps %d eval return %.3f (%.0f s)",
        iteration,
        steps,
        history["eval_return"][-1],
        seconds,
    )


def resume_run(
    ckpts: CheckpointManager,
    agent: torch.nn.Module,
    opt: torch.optim.Optimizer | None,
    cfg: PPOConfig | SACConfig,
    device: torch.device | str,
) -> tuple[dict[str, list[float]], int, float] | None:
    """Load the newest checkpoint of a run into agent (and optimiser): (history, iteration, seconds so
    far), or None if there is none. A checkpoint of a different config is an error, never mixed in."""
    last = ckpts.resume(agent, opt, config_cls=type(cfg), map_location=device)
    if last is None:
        return None
    if last.config != cfg:
        raise ValueError(f"{ckpts.directory} holds checkpoints of a different config; use another out_dir")
    return last.extra["history"], last.step, float(last.extra["seconds"])


def train_ppo(
    cfg: PPOConfig,
    out_dir: str | Path,
    resume: bool = True,
    env: Env | None = None,
    eval_env: Env | None = None,
) -> TrainResult:
    """Train; writes ``out_dir/checkpoints``, ``agent.safetensors``, ``history.json``, ``reward_curve.png``.

    ``env``/``eval_env`` replace the environments built from ``cfg.env`` (any object with the
    :class:`~labworks.rigidsim.envs.Env` interface, e.g. a MuJoCo-backed one for comparisons)."""
    out = Path(out_dir)
    info = init_distributed(device=None if cfg.device == "auto" else cfg.device)
    device = info.device
    seed_everything(cfg.seed + 1000 * info.rank)
    dtype = _dtype(cfg.dtype)
    if env is None:
        env = make(
            cfg.env,
            cfg.num_envs,
            device=device,
            dtype=dtype,
            seed=cfg.seed + 1000 * info.rank,
            compile=cfg.compile,
            integrator=cfg.integrator,
        )
    if eval_env is None:
        eval_env = make(
            cfg.env, cfg.eval_envs, device=device, dtype=dtype, seed=cfg.seed + 10_000_019, model=env.model
        )
    agent = ActorCritic(env.obs_size, env.action_size, cfg.hidden, cfg.init_log_std).to(device)
    ddp = wrap_ddp(agent, info)
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.lr, eps=1e-5)
    per_iter = cfg.num_envs * cfg.unroll * info.world_size
    iterations = max(1, cfg.total_steps // per_iter)
    ckpts = CheckpointManager(out / "checkpoints", keep=2)
    history: dict[str, list[float]] = {
        "steps": [],
        "train_return": [],
        "eval_steps": [],
        "eval_return": [],
        "seconds": [],
    }
    start = 0
    elapsed0 = 0.0
    if resume and (last := resume_run(ckpts, agent, opt, cfg, device)) is not None:
        history, start, elapsed0 = last
        env.generator.manual_seed(cfg.seed + 1000 * info.rank + 7919 * start)
        log.info("resumed at iteration %d", start)
    state = env.init()
    t_obs = env.obs_size
    gamma, lam = cfg.gamma, cfg.gae_lambda
    mb_size = max(1, cfg.num_envs * cfg.unroll // cfg.minibatches)
    gen = torch.Generator(device=device).manual_seed(cfg.seed * 31 + info.rank + start)
    t0 = time.perf_counter()
    bar = progress(
        range(start, iterations), desc=f"ppo {cfg.env}", unit="it", initial=start, total=iterations
    )
    last_train = math.nan
    for it in bar:
        if cfg.anneal_lr:
            for g in opt.param_groups:
                g["lr"] = cfg.lr * (1.0 - it / iterations)
        obs_b = torch.empty(cfg.unroll, cfg.num_envs, t_obs, device=device, dtype=torch.float32)
        act_b = torch.empty(cfg.unroll, cfg.num_envs, env.action_size, device=device)
        logp_b = torch.empty(cfg.unroll, cfg.num_envs, device=device)
        val_b = torch.empty(cfg.unroll + 1, cfg.num_envs, device=device)
        rew_b = torch.empty(cfg.unroll, cfg.num_envs, device=device)
        done_b = torch.empty(cfg.unroll, cfg.num_envs, device=device)
        trunc_b = torch.empty(cfg.unroll, cfg.num_envs, device=device)
        ret_sum = torch.zeros((), device=device)  # on-device tallies: no host round trip per step
        ret_cnt = torch.zeros((), device=device)
        with torch.no_grad():
            for t in range(cfg.unroll):
                obs = state.obs.float()
                agent.normalizer.update(obs)
                d = agent.dist(obs)
                action = d.sample()
                obs_b[t], act_b[t] = obs, action
                logp_b[t] = d.log_prob(action).sum(-1)
                val_b[t] = agent.value(obs)
                state = env.step(state, action.to(dtype))
                rew_b[t] = state.reward.float() * cfg.reward_scale
                done_b[t] = state.done.float()
                trunc_b[t] = state.truncated.float()
                ret_sum += torch.where(state.done, state.final_return, 0.0).sum().float()
                ret_cnt += state.done.sum()
            val_b[cfg.unroll] = agent.value(state.obs.float())
            # GAE; at a time-limit truncation the next state is unknown (auto-reset): bootstrap with V(s_t)
            adv = torch.zeros_like(rew_b)
            gae = torch.zeros(cfg.num_envs, device=device)
            for t in reversed(range(cfg.unroll)):
                nonterminal = 1.0 - done_b[t]
                next_v = val_b[t + 1] * nonterminal + trunc_b[t] * val_b[t]
                delta = rew_b[t] + gamma * next_v - val_b[t]
                gae = delta + gamma * lam * nonterminal * gae
                adv[t] = gae
            ret = adv + val_b[:-1]
        if info.is_distributed:
            for buf in (agent.normalizer.mean, agent.normalizer.var):
                dist.all_reduce(buf)
                buf.div_(info.world_size)
        flat = (
            obs_b.reshape(-1, t_obs),
            act_b.reshape(-1, env.action_size),
            logp_b.reshape(-1),
            adv.reshape(-1),
            ret.reshape(-1),
        )
        n = flat[0].shape[0]
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=gen, device=device)
            for s in range(0, n, mb_size):
                idx = perm[s : s + mb_size]
                o, a, lp_old, ad, rt = (x[idx] for x in flat)
                ad = (ad - ad.mean()) / (ad.std() + 1e-8)
                lp, ent, v = ddp(o, a)
                ratio = torch.exp(lp - lp_old)
                pg = -torch.min(ratio * ad, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * ad).mean()
                loss = pg + cfg.value_coef * 0.5 * ((v - rt) ** 2).mean() - cfg.entropy_coef * ent.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
                opt.step()
        count = int(ret_cnt)  # one synchronisation per iteration
        if count:
            last_train = float(ret_sum) / count
        steps = (it + 1) * per_iter
        seconds = elapsed0 + time.perf_counter() - t0
        history["steps"].append(float(steps))
        history["train_return"].append(last_train)
        history["seconds"].append(seconds)
        if (it + 1) % cfg.eval_every == 0 or it + 1 == iterations:
            record_eval(history, eval_env, agent, it + 1, steps, seconds)
        if hasattr(bar, "set_postfix") and count:
            bar.set_postfix(ret=f"{history['train_return'][-1]:.2f}")
        reached = (
            cfg.target_return is not None and history["eval_steps"] and history["eval_steps"][-1] == float(steps)
            and history["eval_return"][-1] >= cfg.target_return
        )  # fmt: skip
        if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == iterations or reached:
            ckpts.save(it + 1, agent, opt, config=cfg, extra={"history": history, "seconds": seconds})
        if reached:
            log.info("target return %.3f reached after %d steps", cfg.target_return, steps)
            break
    agent_path = out / "agent.safetensors"
    seconds = elapsed0 + time.perf_counter() - t0
    if is_main_process():
        save_checkpoint(
            agent_path, agent, config=cfg, step=iterations,
            extra={"obs_size": env.obs_size, "action_size": env.action_size, "history": history, "seconds": seconds,
                   "counters": {k: int(v) for k, v in state.counters.items()}},
        )  # fmt: skip
        atomic_write_text(out / "history.json", json.dumps(history, indent=1))
        from labworks.rigidsim.plots import plot_reward_curves

        plot_reward_curves(
            {f"rigidsim {cfg.env}": history}, out / "reward_curve.png", title=f"PPO on {cfg.env}"
        )
    return TrainResult(agent_path, history, seconds)
