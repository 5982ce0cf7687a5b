"""Networks shared by the learners: running observation normalisation, Gaussian MLP policy, critics."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ActorCritic", "ObsNormalizer", "mlp"]


def mlp(sizes: list[int], act: type[nn.Module] = nn.Tanh, out_gain: float = 1.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, out_gain if last else math.sqrt(2))
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


class ObsNormalizer(nn.Module):
    """Running mean/variance (parallel Welford over batches), clipped standardisation."""

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, size: int, clip: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(1e-4))
        self.clip = clip

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """x: (N, size)."""
        x = x.to(self.mean.dtype)
        n = torch.tensor(float(x.shape[0]), device=x.device)
        mean, var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + var * n + delta * delta * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-self.clip, self.clip)


class ActorCritic(nn.Module):
    """Gaussian policy with state-independent log-std (actions later clipped by the environment) and a
    value network, both MLPs on normalised observations."""

    def __init__(
        self, obs_size: int, action_size: int, hidden: tuple[int, ...] = (64, 64), init_log_std: float = 0.0
    ) -> None:
        super().__init__()
        self.normalizer = ObsNormalizer(obs_size)
        self.actor = mlp([obs_size, *hidden, action_size], out_gain=0.01)
        self.critic = mlp([obs_size, *hidden, 1], out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_size,), init_log_std))

    def value(self, obs: Tensor) -> Tensor:
        return self.critic(self.normalizer(obs)).squeeze(-1)

    def dist(self, obs: Tensor) -> torch.distributions.Normal:
        mu = self.actor(self.normalizer(obs))
        return torch.distributions.Normal(mu, self.log_std.exp().expand_as(mu))

    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        if deterministic:
            return self.actor(self.normalizer(obs))
        return self.dist(obs).sample()

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(log-prob of action, entropy, value) — the PPO loss inputs (one call so DDP sees every parameter)."""
        d = self.dist(obs)
        return d.log_prob(action).sum(-1), d.entropy().sum(-1), self.value(obs)
