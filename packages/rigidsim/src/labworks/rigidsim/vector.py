"""A gymnasium ``VectorEnv`` over a batched rigidsim environment (numpy in, numpy out), so existing
gymnasium learners can use it. Episodes reset automatically in the step that ends them (gymnasium's
``AutoresetMode.SAME_STEP``); ``infos["episode_return"]`` holds the returns of episodes that just ended.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

try:
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, VectorEnv
except ImportError as e:  # pragma: no cover - optional dependency
    raise ImportError("RigidsimVectorEnv needs gymnasium: pip install gymnasium") from e

from labworks.rigidsim.envs import Env, EnvState, make

__all__ = ["RigidsimVectorEnv"]


class RigidsimVectorEnv(VectorEnv):
    """``RigidsimVectorEnv("ant", num_envs=256)`` behaves like ``gymnasium.make_vec("Ant-v5", 256)``."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env: str | Env, num_envs: int = 1, **kwargs: Any) -> None:
        self.env = make(env, num_envs, **kwargs) if isinstance(env, str) else env
        self.num_envs = self.env.num_envs
        lo = self.env.model.act_lo.cpu().numpy().astype(np.float32)
        hi = self.env.model.act_hi.cpu().numpy().astype(np.float32)
        obs_space = gym.spaces.Box(-np.inf, np.inf, (self.env.obs_size,), np.float32)
        act_space = gym.spaces.Box(np.maximum(lo, -1e6), np.minimum(hi, 1e6), dtype=np.float32)
        self.single_observation_space = obs_space
        self.single_action_space = act_space
        self.observation_space = gym.vector.utils.batch_space(obs_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(act_space, self.num_envs)
        self._state: EnvState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self.env.generator.manual_seed(seed)
        self._state = self.env.init()
        return self._state.obs.float().cpu().numpy(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = torch.as_tensor(np.asarray(actions), device=self.env.device, dtype=self.env.dtype)
        with torch.no_grad():
            self._state = s = self.env.step(self._state, a)
        done = s.done.cpu().numpy()
        trunc = s.truncated.cpu().numpy()
        infos = {
            "episode_return": np.where(done, s.final_return.cpu().numpy(), np.nan),
            "_episode_return": done,
        }
        return s.obs.float().cpu().numpy(), s.reward.float().cpu().numpy(), done & ~trunc, trunc, infos
