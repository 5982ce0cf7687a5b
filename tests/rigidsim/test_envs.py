"""Environments: gymnasium v5 observation/reward definitions on identical states, auto-reset, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labworks.rigidsim.envs import ENVS, make

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")


def _gym_env(name: str, **kw):
    ids = {
        "reacher": "Reacher-v5",
        "ant": "Ant-v5",
        "half_cheetah": "HalfCheetah-v5",
        "humanoid": "Humanoid-v5",
    }
    return gym.make(ids[name], **kw).unwrapped


def test_reacher_step_equals_gymnasium():
    """Same state, same action: obs and reward equal gymnasium's Reacher-v5 (physics is the same RK4).

    gymnasium reads the fingertip from MuJoCo's data after mj_step, i.e. from the kinematics of RK4's last
    intermediate evaluation rather than of the new state; that accounts for differences up to ~1e-6."""
    ref = _gym_env("reacher")
    ref.reset(seed=0)
    env = make("reacher", 1, dtype=torch.float64)
    rng = np.random.default_rng(0)
    for _ in range(5):
        qpos = ref.init_qpos + rng.uniform(-0.1, 0.1, 4)
        qvel = rng.uniform(-0.5, 0.5, 4)
        qvel[2:] = 0
        ref.set_state(qpos, qvel)
        action = rng.uniform(-0.2, 0.2, 2)
        obs_ref, rew_ref, *_ = ref.step(action)
        state = env.init()
        q, qd = torch.tensor(qpos)[None], torch.tensor(qvel)[None]
        state = state.replace(q=q, qd=qd, obs=env.observe(q, qd, state.target))
        out = env.step(state, torch.tensor(action)[None])
        np.testing.assert_allclose(out.obs[0].numpy()[:8], obs_ref[:8], atol=1e-9)  # joints, target
        np.testing.assert_allclose(out.obs[0].numpy()[8:], obs_ref[8:], atol=5e-6)  # fingertip - target
        assert float(out.reward[0]) == pytest.approx(rew_ref, abs=5e-6)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("ant", {"include_cfrc_ext_in_observation": False}),
        ("half_cheetah", {}),
        ("humanoid", {"include_cinert_in_observation": False, "include_cvel_in_observation": False,
                      "include_qfrc_actuator_in_observation": False, "include_cfrc_ext_in_observation": False}),
    ],
)  # fmt: skip
def test_locomotion_observation_equals_gymnasium(name, kw):
    ref = _gym_env(name, **kw)
    ref.reset(seed=1)
    env = make(name, 1, dtype=torch.float64)
    rng = np.random.default_rng(1)
    qpos = ref.init_qpos + rng.uniform(-0.1, 0.1, ref.model.nq)
    qvel = rng.standard_normal(ref.model.nv)
    ref.set_state(qpos, qvel)
    obs_ref = ref._get_obs()
    obs = env.observe(
        torch.tensor(qpos)[None], torch.tensor(qvel)[None], torch.zeros(1, 3, dtype=torch.float64)
    )
    assert obs.shape[-1] == env.obs_size == obs_ref.shape[0]
    np.testing.assert_allclose(obs[0].numpy(), obs_ref, atol=1e-12)


def test_locomotion_reward_terms():
    """Forward term = torso x displacement / dt; ctrl cost = weight * |a|^2; healthy range terminates."""
    env = make("ant", 3, dtype=torch.float64)
    q0 = env.model.qpos0.expand(3, -1).clone()
    q1 = q0.clone()
    q1[:, 0] += torch.tensor([0.0, 0.05, 0.1], dtype=torch.float64)
    q1[2, 2] = 0.1  # below healthy z
    a = torch.full((3, 8), 0.5, dtype=torch.float64)
    zero = torch.zeros(3, env.model.nv, dtype=torch.float64)
    reward, term = env.reward(q0, zero, q1, zero, torch.zeros(3, 3), a)
    expected = 1.0 + torch.tensor([0.0, 0.05, 0.1]) / env.dt - 0.5 * 8 * 0.25
    expected[2] -= 1.0  # unhealthy: no healthy reward
    torch.testing.assert_close(reward, expected.double())
    assert term.tolist() == [False, False, True]
    assert env.dt == pytest.approx(0.05)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_batched_rollout_auto_reset(name):
    env = make(name, 4, seed=0)
    state = env.init()
    assert state.obs.shape == (4, env.obs_size)
    steps = env.episode_length + 3 if env.episode_length <= 50 else 30
    for _ in range(steps):
        state = env.step(state, torch.rand(4, env.action_size) * 2 - 1)
        assert torch.isfinite(state.obs).all()
    assert (state.t <= env.episode_length).all()
    if env.episode_length <= 50:
        assert int(state.counters["episodes"]) >= 4


def test_time_limit_truncates_and_resets():
    env = make("reacher", 2, seed=0)
    state = env.init()
    for i in range(env.episode_length):
        state = env.step(state, torch.zeros(2, 2))
        if i < env.episode_length - 1:
            assert not state.done.any()
    assert state.done.all() and state.truncated.all()
    assert (state.t == 0).all()
    assert torch.all(state.final_length == env.episode_length)


def test_bad_actions_are_counted_and_neutralised():
    env = make("reacher", 3, seed=0)
    state = env.init()
    a = torch.tensor([[float("nan"), 0.0], [float("inf"), 1.0], [5.0, -5.0]])
    out = env.step(state, a)
    assert int(out.counters["bad_actions"]) == 2
    assert torch.isfinite(out.obs).all()
    with pytest.raises(ValueError, match="action must have shape"):
        env.step(state, torch.zeros(3, 5))


def test_out_of_range_actions_are_clipped():
    env = make("reacher", 2, seed=0, dtype=torch.float64)
    state = env.init()
    state = state.replace(q=state.q[:1].expand(2, -1).clone(), qd=state.qd[:1].expand(2, -1).clone())
    out = env.step(state, torch.tensor([[1.0, -1.0], [7.0, -9.0]], dtype=torch.float64))
    torch.testing.assert_close(out.q[0], out.q[1])


def test_exploding_state_is_reset_and_counted():
    env = make("half_cheetah", 2, seed=0)
    state = env.init()
    qd = state.qd.clone()
    qd[1] = 1e9  # exploding
    out = env.step(state.replace(qd=qd), torch.zeros(2, env.action_size))
    assert int(out.counters["unstable_resets"]) == 1
    assert out.done[1] and not out.done[0]
    assert torch.isfinite(out.q).all() and torch.isfinite(out.qd).all()
    assert float(out.reward[1]) == 0.0


def test_unknown_env():
    with pytest.raises(ValueError, match="unknown environment"):
        make("pong")


@pytest.mark.parametrize("name", ["fetch", "grasp", "ur5e"])
def test_shipped_tasks_load_in_mujoco_and_run(name):
    """The shipped MJCF files compile in MuJoCo too (same masses), and the tasks roll out stably."""
    import mujoco

    from labworks.rigidsim.envs import asset_path

    env = make(name, 4, seed=0)
    ref = mujoco.MjModel.from_xml_path(str(asset_path(f"{name}.xml")))
    np.testing.assert_allclose(env.model.spec.body_mass, ref.body_mass, rtol=1e-12)
    state = env.init()
    for _ in range(20):
        state = env.step(state, torch.rand(4, env.action_size) * 2 - 1)
    assert torch.isfinite(state.obs).all() and int(state.counters["unstable_resets"]) == 0


def test_fetch_new_target_on_arrival():
    env = make("fetch", 2, seed=0, dtype=torch.float64)
    state = env.init()
    target = state.target.clone()
    q1 = state.q.clone()
    q1[0, :2] = target[0, :2]  # env 0 arrives
    new = env.next_target(q1, target)
    assert not torch.allclose(new[0], target[0]) and torch.equal(new[1], target[1])


def test_gymnasium_vector_env_api():
    from gymnasium.utils.env_checker import data_equivalence

    from labworks.rigidsim.vector import RigidsimVectorEnv

    venv = RigidsimVectorEnv("reacher", num_envs=3)
    obs, _ = venv.reset(seed=5)
    assert obs.shape == (3, 10) and venv.observation_space.contains(obs.astype(np.float32))
    obs2, _ = RigidsimVectorEnv("reacher", num_envs=3).reset(seed=5)
    assert data_equivalence(obs, obs2)
    for _ in range(50):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
    assert trunc.all() and not term.any() and np.isfinite(info["episode_return"]).all()
    assert rew.shape == (3,) and rew.dtype == np.float32


def test_env_subclass_missing_a_definition_fails_at_construction() -> None:
    from labworks.rigidsim.envs import Env

    class NoReward(Env):  # model, reset and observation, but no reward
        def model_path(self):  # type: ignore[no-untyped-def]
            raise AssertionError("never reached: construction must fail first")

        def sample_reset(self, n):  # type: ignore[no-untyped-def]
            raise AssertionError

        def observe(self, q, qd, target):  # type: ignore[no-untyped-def]
            raise AssertionError

    with pytest.raises(TypeError, match="reward"):
        NoReward()
