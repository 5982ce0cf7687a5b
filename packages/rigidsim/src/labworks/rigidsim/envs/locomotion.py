"""gymnasium v5's MuJoCo tasks on rigidsim physics: Reacher, Ant, HalfCheetah, Humanoid.

Observation and reward terms and coefficients follow gymnasium 1.x ``*-v5`` (defaults), with two documented
differences: Ant/Humanoid observations exclude the ``cfrc_ext``/``cinert``/``cvel``/``qfrc_actuator`` blocks
(gymnasium's ``include_cfrc_ext_in_observation=False`` etc.), and the contact cost term is 0 (the soft-contact
forces are not MuJoCo's). Ant, HalfCheetah and Humanoid step with semi-implicit Euler at the XML's timestep.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from labworks.rigidsim.envs.base import Env, gymnasium_asset
from labworks.rigidsim.kinematics import kinematics
from labworks.rigidsim.model import Model

__all__ = ["Ant", "HalfCheetah", "Humanoid", "Reacher"]


class Reacher(Env):
    """Reacher-v5: a 2-link planar arm moves its fingertip to a random target. Obs 10, actions 2,
    reward = -|fingertip - target| - |a|^2 (the weight gymnasium 1.x's code uses; its docs say 0.1),
    50 steps; gymnasium's "solved" threshold is -3.75."""

    name = "reacher"
    ctrl_weight = 1.0
    frame_skip = 2
    episode_length = 50
    reward_threshold = -3.75

    def model_path(self) -> Path:
        return gymnasium_asset("reacher.xml")

    def configure(self, model: Model) -> None:
        self.fingertip = self.body_id("fingertip")
        self.target_body = self.body_id("target")

    def sample_reset(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        q = m.qpos0 + self.uniform((n, m.nq), -0.1, 0.1)
        # uniform in the disk of radius 0.2 (gymnasium draws from the square and rejects)
        r = 0.2 * torch.sqrt(self.uniform((n,), 0.0, 1.0))
        phi = self.uniform((n,), 0.0, 2 * math.pi)
        goal = torch.stack([r * torch.cos(phi), r * torch.sin(phi)], -1)
        q = torch.cat([q[:, :2], goal], 1)
        qd = torch.cat(
            [self.uniform((n, 2), -0.005, 0.005), torch.zeros(n, 2, dtype=self.dtype, device=self.device)], 1
        )
        target = torch.cat([goal, torch.zeros(n, 1, dtype=self.dtype, device=self.device)], 1)
        return q, qd, target

    def _tip_minus_target(self, q: Tensor) -> Tensor:
        com = kinematics(self.model, q).com
        return com[:, self.fingertip] - com[:, self.target_body]

    def observe(self, q: Tensor, qd: Tensor, target: Tensor) -> Tensor:
        vec = self._tip_minus_target(q)
        return torch.cat([torch.cos(q[:, :2]), torch.sin(q[:, :2]), q[:, 2:], qd[:, :2], vec[:, :2]], 1)

    def reward(self, q0, qd0, q1, qd1, target, action):  # type: ignore[no-untyped-def]
        dist = self._tip_minus_target(q1).norm(dim=-1)
        reward = -dist - self.ctrl_weight * (action * action).sum(-1)
        return reward, torch.zeros_like(reward, dtype=torch.bool)


class _Locomotion(Env):
    forward_weight = 1.0
    ctrl_weight = 0.1
    healthy_reward = 0.0
    healthy_z: tuple[float, float] | None = None
    reset_noise = 0.1
    exclude_qpos = 1
    use_mass_center = False

    def configure(self, model: Model) -> None:
        model.integrator = "euler"
        self.main_body = 1

    def sample_reset(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        s = self.reset_noise
        q = m.qpos0 + self.uniform((n, m.nq), -s, s)
        qd = self.normal((n, m.nv), s) if self.normal_velocity_noise else self.uniform((n, m.nv), -s, s)
        return q, qd, torch.zeros(n, 3, dtype=self.dtype, device=self.device)

    normal_velocity_noise = True

    def observe(self, q: Tensor, qd: Tensor, target: Tensor) -> Tensor:
        return torch.cat([q[:, self.exclude_qpos :], qd], 1)

    def _x(self, q: Tensor) -> Tensor:
        kin = kinematics(self.model, q)
        if self.use_mass_center:
            mass = self.model.body_mass
            return (kin.com[..., 0] * mass).sum(-1) / mass.sum()
        return kin.xpos[:, self.main_body, 0]

    def reward(self, q0, qd0, q1, qd1, target, action):  # type: ignore[no-untyped-def]
        vx = (self._x(q1) - self._x(q0)) / self.dt
        reward = self.forward_weight * vx - self.ctrl_weight * (action * action).sum(-1)
        if self.healthy_z is None:
            return reward, torch.zeros_like(reward, dtype=torch.bool)
        z = q1[:, 2]
        healthy = (z >= self.healthy_z[0]) & (z <= self.healthy_z[1]) & torch.isfinite(q1).all(-1)
        reward = reward + self.healthy_reward * healthy.to(reward.dtype)
        return reward, ~healthy


class Ant(_Locomotion):
    """Ant-v5: obs 27 (qpos without x, y; qvel), actions 8; reward = 1 (healthy) + forward velocity
    - 0.5 |a|^2; terminates when torso z leaves [0.2, 1.0]; 1,000 steps of dt 0.05."""

    name = "ant"
    frame_skip = 5
    ctrl_weight = 0.5
    healthy_reward = 1.0
    healthy_z = (0.2, 1.0)
    exclude_qpos = 2

    def model_path(self) -> Path:
        return gymnasium_asset("ant.xml")


class HalfCheetah(_Locomotion):
    """HalfCheetah-v5: obs 17, actions 6; reward = forward velocity - 0.1 |a|^2; never terminates."""

    name = "half_cheetah"
    frame_skip = 5
    ctrl_weight = 0.1

    def model_path(self) -> Path:
        return gymnasium_asset("half_cheetah.xml")


class Humanoid(_Locomotion):
    """Humanoid-v5 (obs 45 = qpos without x, y + qvel), actions 17; reward = 5 (healthy)
    + 1.25 x-velocity of the centre of mass - 0.1 |a|^2; terminates when torso z leaves [1.0, 2.0]."""

    name = "humanoid"
    frame_skip = 5
    forward_weight = 1.25
    ctrl_weight = 0.1
    healthy_reward = 5.0
    healthy_z = (1.0, 2.0)
    reset_noise = 1e-2
    exclude_qpos = 2
    use_mass_center = True
    normal_velocity_noise = False

    def model_path(self) -> Path:
        return gymnasium_asset("humanoid.xml")
