"""Batched environments over the physics step: functional API (state in, state out), auto-reset inside the
step (a done mask, no environment waits for another), counted handling of bad actions and exploding states.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from labworks.rigidsim.model import Model, load_model
from labworks.rigidsim.physics import compile_step
from labworks.rigidsim.physics import step as physics_step

__all__ = ["Env", "EnvState", "gymnasium_asset"]


def gymnasium_asset(name: str) -> Path:
    """Path of an MJCF file shipped inside the installed gymnasium wheel (e.g. ``"ant.xml"``)."""
    try:
        import gymnasium
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this environment reads its MJCF from the gymnasium package: pip install gymnasium"
        ) from e
    path = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found in the installed gymnasium ({path})")
    return path


@dataclass
class EnvState:
    """Everything that varies per environment; all tensors have leading dimension num_envs."""

    q: Tensor  # (B, nq)
    qd: Tensor  # (B, nv)
    target: Tensor  # (B, 3) task target (zeros where unused)
    obs: Tensor  # (B, obs_size)
    reward: Tensor  # (B,)
    done: Tensor  # (B,) bool: the episode ended at this step (terminated or truncated)
    truncated: Tensor  # (B,) bool: ended by the time limit only
    t: Tensor  # (B,) steps into the current episode
    ep_return: Tensor  # (B,) running return of the current episode
    final_return: Tensor  # (B,) return of the episode that ended at this step (valid where done)
    final_length: Tensor  # (B,)
    counters: dict[str, Tensor] = field(default_factory=dict)  # totals: bad actions, unstable resets

    def replace(self, **kw: object) -> EnvState:
        return dataclasses.replace(self, **kw)  # type: ignore[arg-type]


class Env(abc.ABC):
    """Base class. Subclasses define the model, reset distribution, observation, reward and termination.

    ``state = env.init()``, then ``state = env.step(state, action)`` with action: (B, action_size) in
    [-1, 1]-like actuator units (clipped to each actuator's ctrlrange). Non-finite actions are replaced by 0
    and counted; states that become non-finite or exceed ``max_speed`` are reset and counted.
    """

    name = "env"
    frame_skip = 1
    episode_length = 1000
    max_speed = 1e3

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        compile: bool = False,
        model: Model | None = None,
        integrator: str | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model if model is not None else load_model(self.model_path(), self.device, dtype)
        self.configure(self.model)
        if integrator is not None:
            if integrator not in ("euler", "rk4"):
                raise ValueError(f"integrator must be 'euler' or 'rk4', got {integrator!r}")
            self.model.integrator = integrator
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._one_step: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]] = self._physics_step
        if compile:  # one step compiled and reused frame_skip times (compiles once, ~1 minute on CPU)
            self._one_step = compile_step(self.model)
        probe = self.observe(
            self.model.qpos0.expand(1, -1),
            torch.zeros(1, self.model.nv, dtype=dtype, device=self.device),
            torch.zeros(1, 3, dtype=dtype, device=self.device),
        )
        self.obs_size = probe.shape[-1]
        self.action_size = self.model.nu

    # ------------------------------------------------------------------ to override
    @abc.abstractmethod
    def model_path(self) -> Path:
        """The MJCF file of this environment."""

    def configure(self, model: Model) -> None:
        """Hook to adjust the model (integrator, solver options) and look up bodies; none by default."""
        return None

    @abc.abstractmethod
    def sample_reset(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """n fresh (q, qd, target) drawn from the reset distribution."""

    @abc.abstractmethod
    def observe(self, q: Tensor, qd: Tensor, target: Tensor) -> Tensor:
        """Observations (B, obs_size) of states q: (B, nq), qd: (B, nv) with task targets (B, 3)."""

    @abc.abstractmethod
    def reward(
        self, q0: Tensor, qd0: Tensor, q1: Tensor, qd1: Tensor, target: Tensor, action: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(reward, terminated) of the transition (q0, qd0) -> (q1, qd1) under action."""

    def next_target(self, q1: Tensor, target: Tensor) -> Tensor:
        """Hook: the task target after a transition (e.g. a new goal once reached)."""
        return target

    # ------------------------------------------------------------------ helpers
    @property
    def dt(self) -> float:
        """Control interval: frame_skip physics steps."""
        return self.model.timestep * self.frame_skip

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> Tensor:
        u = torch.rand(shape, generator=self.generator, device=self.device, dtype=self.dtype)
        return low + (high - low) * u

    def normal(self, shape: tuple[int, ...], scale: float) -> Tensor:
        return scale * torch.randn(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def _physics_step(self, q: Tensor, qd: Tensor, ctrl: Tensor) -> tuple[Tensor, Tensor]:
        return physics_step(self.model, q, qd, ctrl)

    def _physics(self, q: Tensor, qd: Tensor, ctrl: Tensor) -> tuple[Tensor, Tensor]:
        for _ in range(self.frame_skip):
            q, qd = self._one_step(q, qd, ctrl)
        return q, qd

    # ------------------------------------------------------------------ API
    def init(self) -> EnvState:
        """A batch of freshly reset environments."""
        n = self.num_envs
        q, qd, target = self.sample_reset(n)
        zeros = torch.zeros(n, dtype=self.dtype, device=self.device)
        false = torch.zeros(n, dtype=torch.bool, device=self.device)
        counters = {
            "bad_actions": torch.zeros((), dtype=torch.long, device=self.device),
            "unstable_resets": torch.zeros((), dtype=torch.long, device=self.device),
            "episodes": torch.zeros((), dtype=torch.long, device=self.device),
        }
        return EnvState(
            q, qd, target, self.observe(q, qd, target), zeros, false, false.clone(),
            torch.zeros(n, dtype=torch.long, device=self.device), zeros.clone(), zeros.clone(), zeros.clone(),
            counters,
        )  # fmt: skip

    def step(self, state: EnvState, action: Tensor) -> EnvState:
        """One control step (frame_skip physics steps) for every environment, with auto-reset."""
        if action.shape != (self.num_envs, self.action_size):
            raise ValueError(
                f"action must have shape ({self.num_envs}, {self.action_size}), got {tuple(action.shape)}"
            )
        action = action.to(device=self.device, dtype=self.dtype)
        finite = torch.isfinite(action)
        bad = (~finite).any(-1)
        action = torch.where(finite, action, torch.zeros_like(action))
        ctrl = torch.minimum(torch.maximum(action, self.model.act_lo), self.model.act_hi)
        q1, qd1 = self._physics(state.q, state.qd, ctrl)
        unstable = ~(torch.isfinite(q1).all(-1) & torch.isfinite(qd1).all(-1)) | (
            qd1.abs() > self.max_speed
        ).any(-1)
        # keep the arithmetic finite for unstable rows; they are reset below
        q1 = torch.where(unstable[:, None], state.q, q1)
        qd1 = torch.where(unstable[:, None], torch.zeros_like(qd1), qd1)
        reward, terminated = self.reward(state.q, state.qd, q1, qd1, state.target, ctrl)
        reward = torch.where(unstable, torch.zeros_like(reward), reward)
        t = state.t + 1
        truncated = (t >= self.episode_length) & ~terminated & ~unstable
        done = terminated | truncated | unstable
        ep_return = state.ep_return + reward
        # auto-reset: fresh samples for every row, selected where done (no data-dependent branch)
        rq, rqd, rtarget = self.sample_reset(self.num_envs)
        d = done[:, None]
        q_next = torch.where(d, rq, q1)
        qd_next = torch.where(d, rqd, qd1)
        target = torch.where(d, rtarget, self.next_target(q1, state.target))
        counters = {
            "bad_actions": state.counters["bad_actions"] + bad.sum(),
            "unstable_resets": state.counters["unstable_resets"] + unstable.sum(),
            "episodes": state.counters["episodes"] + done.sum(),
        }
        return EnvState(
            q_next,
            qd_next,
            target,
            self.observe(q_next, qd_next, target),
            reward,
            done,
            truncated,
            torch.where(done, torch.zeros_like(t), t),
            torch.where(done, torch.zeros_like(ep_return), ep_return),
            ep_return,
            t.to(self.dtype),
            counters,
        )

    def body_id(self, name: str) -> int:
        try:
            return self.model.spec.body_name.index(name)
        except ValueError as e:
            raise ValueError(f"{self.name}: model has no body {name!r}") from e

    def body_com(self, q: Tensor, body: int) -> Tensor:
        """World centre of mass of one body, (B, 3)."""
        from labworks.rigidsim.kinematics import kinematics

        return kinematics(self.model, q).com[:, body]
