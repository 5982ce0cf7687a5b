"""Brax's 2021 tasks as MJCF models shipped with the package: Fetch, Grasp and UR5e."""

from __future__ import annotations

import math
from importlib.resources import files
from pathlib import Path

import torch
from torch import Tensor

from labworks.rigidsim.envs.base import Env
from labworks.rigidsim.kinematics import kinematics
from labworks.rigidsim.model import Model

__all__ = ["Fetch", "Grasp", "UR5e", "asset_path"]


def asset_path(name: str) -> Path:
    """Path of an MJCF file shipped in ``labworks/rigidsim/assets``."""
    return Path(str(files("labworks.rigidsim") / "assets" / name))


def _rot_z_inverse(q: Tensor, vec: Tensor) -> Tensor:
    """Rotate world xy vectors into the heading frame of the free body's quaternion q: (B, 4)."""
    w, x, y, z = q.unbind(-1)
    yaw = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    c, s = torch.cos(yaw), torch.sin(yaw)
    return torch.stack([c * vec[:, 0] + s * vec[:, 1], -s * vec[:, 0] + c * vec[:, 1]], -1)


class Fetch(Env):
    """A box-bodied quadruped runs to a target placed anywhere 2-4 m around it; on arrival (0.5 m) it
    earns a bonus and a new target appears. Obs 30: height, orientation, joints, velocities, the target in
    the heading frame and its distance. Reward: approach speed - 0.05 |a|^2 + 10 on arrival; terminates
    when the body flips."""

    name = "fetch"
    frame_skip = 5
    episode_length = 1000

    def model_path(self) -> Path:
        return asset_path("fetch.xml")

    def configure(self, model: Model) -> None:
        model.integrator = "euler"

    def _targets(self, centre: Tensor) -> Tensor:
        n = centre.shape[0]
        r = self.uniform((n,), 2.0, 4.0)
        phi = self.uniform((n,), 0.0, 2 * math.pi)
        t = torch.stack([centre[:, 0] + r * torch.cos(phi), centre[:, 1] + r * torch.sin(phi)], -1)
        return torch.cat([t, torch.zeros(n, 1, dtype=self.dtype, device=self.device)], 1)

    def sample_reset(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        q = m.qpos0 + self.uniform((n, m.nq), -0.05, 0.05)
        qd = self.normal((n, m.nv), 0.05)
        return q, qd, self._targets(q[:, :2])

    def observe(self, q: Tensor, qd: Tensor, target: Tensor) -> Tensor:
        rel = _rot_z_inverse(q[:, 3:7], target[:, :2] - q[:, :2])
        return torch.cat([q[:, 2:], qd, rel, rel.norm(dim=-1, keepdim=True)], 1)

    def reward(self, q0, qd0, q1, qd1, target, action):  # type: ignore[no-untyped-def]
        d0 = (target[:, :2] - q0[:, :2]).norm(dim=-1)
        d1 = (target[:, :2] - q1[:, :2]).norm(dim=-1)
        arrived = d1 < 0.5
        reward = (d0 - d1) / self.dt - 0.05 * (action * action).sum(-1) + 10.0 * arrived.to(q1.dtype)
        _, x, y, _ = q1[:, 3:7].unbind(-1)
        up_z = 1 - 2 * (x * x + y * y)  # z of the body's up axis
        return reward, (up_z < 0.0) | ~torch.isfinite(q1).all(-1)

    def next_target(self, q1: Tensor, target: Tensor) -> Tensor:
        arrived = (target[:, :2] - q1[:, :2]).norm(dim=-1) < 0.5
        return torch.where(arrived[:, None], self._targets(q1[:, :2]), target)


class Grasp(Env):
    """A claw on a three-axis gantry grasps a ball and carries it to a target in the air.
    Obs 29; reward = -|claw - ball| - 2 |ball - target| + 5 when the ball is within 5 cm of the target
    - 0.01 |a|^2; 300 steps of 0.025 s."""

    name = "grasp"
    frame_skip = 5
    episode_length = 300

    def model_path(self) -> Path:
        return asset_path("grasp.xml")

    def configure(self, model: Model) -> None:
        model.integrator = "euler"
        model.options.max_contacts = None
        self.left, self.right, self.ball = (
            self.body_id(n) for n in ("left_finger", "right_finger", "object")
        )

    def sample_reset(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        q = m.qpos0.expand(n, -1).clone()
        q[:, 7:9] = q[:, 7:9] + self.uniform((n, 2), -0.2, 0.2)  # ball xy
        target = torch.stack(
            [self.uniform((n,), -0.3, 0.3), self.uniform((n,), -0.3, 0.3), self.uniform((n,), 0.1, 0.3)], -1
        )
        return q, torch.zeros(n, m.nv, dtype=self.dtype, device=self.device), target

    def _points(self, q: Tensor) -> tuple[Tensor, Tensor]:
        kin = kinematics(self.model, q)
        claw = 0.5 * (kin.xpos[:, self.left] + kin.xpos[:, self.right])
        return claw, kin.xpos[:, self.ball]

    def observe(self, q: Tensor, qd: Tensor, target: Tensor) -> Tensor:
        claw, ball = self._points(q)
        return torch.cat([q, qd, ball - claw, target - ball], 1)

    def reward(self, q0, qd0, q1, qd1, target, action):  # type: ignore[no-untyped-def]
        claw, ball = self._points(q1)
        d = (ball - target).norm(dim=-1)
        reward = (
            -(claw - ball).norm(dim=-1)
            - 2 * d
            + 5.0 * (d < 0.05).to(q1.dtype)
            - 0.01 * (action * action).sum(-1)
        )
        return reward, ~torch.isfinite(q1).all(-1)


class UR5e(Env):
    """A UR5e-like 6-joint arm reaches random targets in its workspace. Obs 24 (cos/sin of joints,
    velocities, tool - target, target); reward = -|tool - target| - 0.01 |a|^2; 200 steps of 0.02 s."""

    name = "ur5e"
    frame_skip = 4
    episode_length = 200

    def model_path(self) -> Path:
        return asset_path("ur5e.xml")

    def configure(self, model: Model) -> None:
        model.integrator = "euler"
        self.tool = self.body_id("tool")

    def sample_reset(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        q = m.qpos0 + self.uniform((n, m.nq), -0.1, 0.1)
        r = self.uniform((n,), 0.3, 0.7)
        phi = self.uniform((n,), 0.0, 2 * math.pi)
        target = torch.stack([r * torch.cos(phi), r * torch.sin(phi), self.uniform((n,), 0.1, 0.7)], -1)
        return q, torch.zeros(n, m.nv, dtype=self.dtype, device=self.device), target

    def _tool(self, q: Tensor) -> Tensor:
        return kinematics(self.model, q).xpos[:, self.tool]

    def observe(self, q: Tensor, qd: Tensor, target: Tensor) -> Tensor:
        return torch.cat([torch.cos(q), torch.sin(q), qd, self._tool(q) - target, target], 1)

    def reward(self, q0, qd0, q1, qd1, target, action):  # type: ignore[no-untyped-def]
        reward = -(self._tool(q1) - target).norm(dim=-1) - 0.01 * (action * action).sum(-1)
        return reward, ~torch.isfinite(q1).all(-1)
