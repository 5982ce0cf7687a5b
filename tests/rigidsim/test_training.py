"""Learners, checkpoints/resume, DDP under torchrun, viewers, CLI and the fidelity report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from labworks.rigidsim import PPOConfig, SACConfig, load_agent, train_ppo, train_sac
from labworks.rigidsim.cli import cli
from labworks.rigidsim.envs import make
from labworks.rigidsim.render import body_poses, write_gif, write_html

TINY = {"env": "reacher", "num_envs": 16, "unroll": 8, "total_steps": 16 * 8 * 4, "eval_every": 2,
        "eval_envs": 4, "checkpoint_every": 2, "integrator": "euler", "device": "cpu"}  # fmt: skip


def test_ppo_runs_checkpoints_and_resumes(tmp_path):
    cfg = PPOConfig(**TINY)
    full = train_ppo(cfg, tmp_path / "a", resume=False)
    assert full.agent_path.is_file() and (tmp_path / "a" / "reward_curve.png").is_file()
    assert len(full.history["steps"]) == 4 and len(full.history["eval_return"]) == 2
    agent, cfg2 = load_agent(full.agent_path)
    assert cfg2 == cfg
    obs = torch.zeros(3, 10)
    assert agent.act(obs, deterministic=True).shape == (3, 2)
    # interrupted after 2 iterations, then resumed: picks up at iteration 2
    half = PPOConfig(**{**TINY, "total_steps": 16 * 8 * 2})
    train_ppo(half, tmp_path / "b", resume=False)
    ckpts = sorted((tmp_path / "b" / "checkpoints").glob("step-*.safetensors"))
    assert ckpts[-1].name == "step-000000002.safetensors"
    with pytest.raises(ValueError, match="different config"):
        train_ppo(cfg, tmp_path / "b")


def test_ppo_improves_reacher_quickly(tmp_path):
    """Eight iterations must raise the (lagging, 200-episode) training return; a broken gradient sign or
    advantage would lower it. The slow test below checks the solve."""
    cfg = PPOConfig(env="reacher", num_envs=64, unroll=50, total_steps=64 * 50 * 8, epochs=8, minibatches=4,
                    lr=1e-3, gamma=0.95, eval_every=8, eval_envs=16, integrator="euler", device="cpu")  # fmt: skip
    res = train_ppo(cfg, tmp_path, resume=False)
    curve = res.history["train_return"]
    assert curve[-1] > curve[0] + 3


@pytest.mark.slow
def test_ppo_solves_reacher(tmp_path):
    """gymnasium's threshold (-3.75) within 3M steps with the demo's settings, on the XML's RK4 physics
    (about 5 minutes here)."""
    from labworks.rigidsim.envs.locomotion import Reacher

    cfg = PPOConfig(env="reacher", num_envs=512, unroll=50, total_steps=3_000_000, epochs=8, minibatches=8,
                    lr=1e-3, gamma=0.95, eval_every=5, eval_envs=256, target_return=Reacher.reward_threshold,
                    device="cpu")  # fmt: skip
    res = train_ppo(cfg, tmp_path, resume=False)
    assert max(res.history["eval_return"]) >= Reacher.reward_threshold


def test_sac_runs(tmp_path):
    cfg = SACConfig(env="reacher", num_envs=8, total_steps=8 * 40, warmup_steps=80, batch_size=32, hidden=(32, 32),
                    eval_every=20, eval_envs=4, checkpoint_every=20, integrator="euler", device="cpu")  # fmt: skip
    res = train_sac(cfg, tmp_path, resume=False)
    assert len(res.history["eval_return"]) == 2
    assert res.agent_path.is_file()
    # another config is refused in the same directory; the same one resumes its finished run (its
    # history, wall-clock stamps included, comes back unchanged: nothing is trained again)
    longer = cfg.model_copy(update={"total_steps": 8 * 60})
    with pytest.raises(ValueError, match="different config"):
        train_sac(longer, tmp_path)
    more = train_sac(cfg, tmp_path)
    assert more.history["seconds"] == res.history["seconds"]


def test_ppo_ddp_two_processes(tmp_path):
    """torchrun --nproc-per-node 2 (gloo, CPU): both ranks train, rank 0 writes the agent."""
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\nfrom labworks.rigidsim import PPOConfig, train_ppo\n"
        f"cfg = PPOConfig(**json.loads({json.dumps(json.dumps(TINY))!s}))\n"
        "train_ppo(cfg, sys.argv[1], resume=False)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LABWORKS_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           str(script), str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "agent.safetensors").is_file()
    hist = json.loads((tmp_path / "out" / "history.json").read_text())
    assert hist["steps"][-1] == TINY["total_steps"]  # two ranks share the step budget


def test_viewers(tmp_path):
    env = make("ant", 1)
    state = env.init()
    qs = [state.q[0]]
    for _ in range(6):
        state = env.step(state, torch.zeros(1, env.action_size))
        qs.append(state.q[0])
    traj = body_poses(env.model, torch.stack(qs))
    assert traj[0].shape == (7, env.model.nbody, 3) and traj[1].shape == (7, env.model.nbody, 4)
    html = write_html(env.model, traj, tmp_path / "a.html", dt=env.dt).read_text()
    assert "<canvas" in html and "http" not in html.split("<script>")[1]  # self-contained
    gif = write_gif(env.model, traj, tmp_path / "a.gif", dt=env.dt, every=2)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 4


def test_cli_simulate_and_render(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["simulate", "--env", "half_cheetah", "--num-envs", "8", "--steps", "5"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["num_envs"] == 8 and report["unstable_resets"] == 0
    res = runner.invoke(
        cli, ["render", "--env", "reacher", "--steps", "10", "--out", str(tmp_path / "r.html")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").is_file()
    res = runner.invoke(cli, ["render", "--out", str(tmp_path / "r.txt"), "--steps", "2"])
    assert res.exit_code != 0


def test_cli_train_with_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("LABWORKS_NO_PROGRESS", "1")
    runner = CliRunner()
    args = ["train", "--out", str(tmp_path), "--no-resume"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={v}"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["final_eval_return"] is not None
    assert (tmp_path / "config.yaml").is_file()


def test_fidelity_against_mujoco():
    pytest.importorskip("mujoco")
    from labworks.rigidsim.fidelity import conservation, reacher_trajectories

    traj = reacher_trajectories(horizon=100)
    assert traj["rk4"] < 1e-9 and traj["euler"] < 1e-9
    cons = conservation(timesteps=(0.004,), duration=0.5)
    # semi-implicit Euler: the same arithmetic as MuJoCo's Euler -> the same drift
    for key in ("linear", "angular", "energy"):
        assert cons["rigidsim euler"][key][0] == pytest.approx(cons["mujoco euler"][key][0], rel=1e-6)
    assert cons["rigidsim rk4"]["energy"][0] < 1e-4


@pytest.mark.skipif(not Path(sys.executable).exists(), reason="interpreter")
def test_demo_entry_point_declared():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="labworks.demo")}
    assert "rigidsim" in names
