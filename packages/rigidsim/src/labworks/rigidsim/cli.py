"""``labworks rigidsim``: simulate, train, bench, render, fidelity."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

_set_opt = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set lr=1e-3.",
)


@click.group(help="Batched, branch-free rigid-body physics with on-device PPO/SAC.")
def cli() -> None:
    from labworks.core import retain_freed_memory

    retain_freed_memory()  # steps allocate tens of MB per call: reuse it instead of page-faulting


@cli.command()
@click.option("--env", "env_name", default="ant", show_default=True)
@click.option("--num-envs", default=1024, show_default=True)
@click.option("--steps", default=100, show_default=True, help="control steps")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the physics step")
def simulate(env_name: str, num_envs: int, steps: int, seed: int, device: str, use_compile: bool) -> None:
    """Roll out random actions in a batch of environments; print throughput and episode statistics."""
    import torch

    from labworks.rigidsim.envs import make

    env = make(env_name, num_envs, device=device, seed=seed, compile=use_compile)
    gen = torch.Generator(device=env.device).manual_seed(seed)
    state = env.init()
    returns: list[float] = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            action = torch.rand(num_envs, env.action_size, generator=gen, device=env.device) * 2 - 1
            state = env.step(state, action.to(env.dtype))
            returns += state.final_return[state.done].tolist()
    seconds = time.perf_counter() - t0
    report = {
        "env": env_name,
        "num_envs": num_envs,
        "control_steps_per_s": num_envs * steps / seconds,
        "physics_steps_per_s": num_envs * steps * env.frame_skip / seconds,
        "episodes_finished": len(returns),
        "mean_return": sum(returns) / len(returns) if returns else None,
        **{k: int(v) for k, v in state.counters.items()},
    }
    click.echo(json.dumps(report, indent=2))


@cli.command()
@click.option("--algo", type=click.Choice(["ppo", "sac"]), default="ppo", show_default=True)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_set_opt
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/rigidsim"), show_default=True
)
@click.option("--no-resume", is_flag=True, help="Start fresh even if checkpoints exist.")
def train(
    algo: str, config_path: Path | None, overrides: tuple[str, ...], out_dir: Path, no_resume: bool
) -> None:
    """Train PPO or SAC (resumes from OUT/checkpoints; PPO runs under torchrun)."""
    from labworks.rigidsim.config import PPOConfig, SACConfig

    cls = PPOConfig if algo == "ppo" else SACConfig
    cfg = cls.from_file(config_path) if config_path else cls()
    if overrides:
        cfg = cfg.with_overrides(list(overrides))
    if algo == "ppo":
        from labworks.rigidsim.ppo import train_ppo

        result = train_ppo(cfg, out_dir, resume=not no_resume)  # type: ignore[arg-type]
    else:
        from labworks.rigidsim.sac import train_sac

        result = train_sac(cfg, out_dir, resume=not no_resume)  # type: ignore[arg-type]
    cfg.to_file(out_dir / "config.yaml")
    h = result.history
    click.echo(
        json.dumps(
            {
                "agent": str(result.agent_path),
                "seconds": result.seconds,
                "final_eval_return": h["eval_return"][-1] if h["eval_return"] else None,
            },
            indent=2,
        )
    )


@cli.command()
@click.option(
    "--model", "model_name", default="ant.xml", show_default=True, help="gymnasium asset name or MJCF path"
)
@click.option(
    "--batch", "batches", multiple=True, type=int, default=(1, 64, 256, 1024, 4096), show_default=True
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--compile", "use_compile", is_flag=True)
@click.option("--mujoco/--no-mujoco", "with_mujoco", default=True, help="also time MuJoCo (if installed)")
@click.option("--threads", default=2, show_default=True, help="MuJoCo rollout threads")
def bench(
    model_name: str, batches: tuple[int, ...], device: str, use_compile: bool, with_mujoco: bool, threads: int
) -> None:
    """Physics steps/s against batch size, side by side with MuJoCo's rollout; prints ratios."""
    from labworks.rigidsim.bench import mujoco_steps_per_second, rigidsim_steps_per_second
    from labworks.rigidsim.envs.base import gymnasium_asset

    path = Path(model_name) if Path(model_name).is_file() else gymnasium_asset(model_name)
    ours = rigidsim_steps_per_second(path, batches, device=device, compile=use_compile)
    ref = None
    if with_mujoco:
        try:
            ref = mujoco_steps_per_second(path, nthread=threads, integrator="euler")
        except ImportError:
            click.echo("mujoco not installed: skipping the reference", err=True)
    for b, sps in ours.items():
        ratio = f"  ratio {sps / ref:.2f}" if ref else ""
        click.echo(f"batch {b:6d}: {sps:12.0f} steps/s{ratio}")
    if ref:
        click.echo(f"mujoco ({threads} threads, Euler): {ref:.0f} steps/s")


@cli.command()
@click.option("--env", "env_name", default="ant", show_default=True)
@click.option(
    "--agent",
    "agent_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PPO agent file",
)
@click.option("--steps", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("rollout.html"),
    show_default=True,
    help=".html or .gif",
)
def render(env_name: str, agent_path: Path | None, steps: int, seed: int, out: Path) -> None:
    """Render one rollout (random actions, or a trained PPO agent) to HTML or GIF."""
    from labworks.rigidsim.render import rollout_poses, write_gif, write_html

    env, traj = rollout_poses(env_name, steps, seed, agent_path)
    if out.suffix.lower() == ".gif":
        write_gif(env.model, traj, out, dt=env.dt, every=max(1, steps // 100))
    elif out.suffix.lower() in (".html", ".htm"):
        write_html(env.model, traj, out, dt=env.dt)
    else:
        raise click.BadParameter("--out must end in .html or .gif")
    click.echo(str(out))


@cli.command()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=Path("fidelity"), show_default=True
)
def fidelity(out_dir: Path) -> None:
    """Trajectory agreement and conservation against MuJoCo (needs the mujoco package)."""
    from labworks.rigidsim.fidelity import fidelity_report

    report = fidelity_report(out_dir)
    click.echo((out_dir / "fidelity.md").read_text())
    click.echo(json.dumps(report["reacher_max_qpos_error"]))
