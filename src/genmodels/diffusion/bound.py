"""The variational bound of seed Theorem 8 (eq. 4.10) and its direct form (eq. 4.9).

    L = L_T + sum_{t=2}^T L_{t-1} + L_0,
    L_T     = KL(q(x_T | x_0) || N(0, I))                       (no parameters)
    L_{t-1} = E_{x_t ~ q(x_t | x_0)} KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))
    L_0     = E_{x_1 ~ q(x_1 | x_0)} [-log p_theta(x_0 | x_1)]  (discretised or Gaussian decoder)

Each KL is the closed-form Gaussian KL; each expectation is a one-sample Monte-Carlo estimate
per example. L >= -log p_theta(x_0) (Jensen). Results are per example, in nats summed over
the D data dimensions; `bits_per_dim` converts. eps_fn(x_t, t) -> eps_theta, or (eps_theta, v) with
variance = "learned" (Nichol & Dhariwal eq. 15), as in `loglik.py`.
"""

from __future__ import annotations

import math

import torch

from genmodels.diffusion.gaussian import (
    Variance,
    host_float64,
    normal_kl,
    q_mean_var,
    q_sample,
    split_model_output,
)
from genmodels.diffusion.loglik import trajectory_log_weight
from genmodels.diffusion.losses import Decoder, vlb_term
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError


def bits_per_dim(nats: torch.Tensor | float, dim: int) -> torch.Tensor | float:
    """nats per example -> bits per dimension: nats / (D ln 2)."""
    return nats / (dim * math.log(2.0))


def prior_term(sched: NoiseSchedule, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) summed over dimensions. x0 (B, ...) -> (B,) nats."""
    x0 = host_float64(x0)
    t = torch.full((x0.shape[0],), sched.T, dtype=torch.long)
    mean, _, logvar = q_mean_var(sched, x0, t)
    kl = normal_kl(mean, logvar, torch.zeros_like(mean), torch.zeros_like(mean))
    return kl.reshape(x0.shape[0], -1).sum(dim=1)


@torch.no_grad()
def bound_terms(eps_fn, sched: NoiseSchedule, x0: torch.Tensor, *, variance: Variance = "beta",
                decoder: Decoder = "discretized", generator: torch.Generator | None = None,
                num_timesteps: int | None = None) -> dict[str, torch.Tensor]:
    """The terms of eq. 4.10 per example, in nats (summed over dimensions), each (B,) float64 on the host:
    "L_T", "L_1:T-1" (= sum_{t=2}^T L_{t-1}), "L_0", "total".

    num_timesteps: None evaluates every t = 2..T (T - 1 network calls); k < T - 1 draws k of them
    without replacement and rescales by (T - 1) / k (an unbiased estimate of the sum)."""
    B, D = x0.shape[0], x0[0].numel()
    steps = torch.arange(2, sched.T + 1)
    if num_timesteps is not None and num_timesteps < sched.T - 1:
        if num_timesteps < 1:
            raise ConfigError(f"num_timesteps must be >= 1, got {num_timesteps}")
        pick = torch.randperm(sched.T - 1, generator=_cpu(generator))[:num_timesteps]
        steps = steps[pick.sort().values]
    scale = (sched.T - 1) / len(steps)

    def term(t_int: int) -> torch.Tensor:
        t = torch.full((B,), t_int, dtype=torch.long, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = q_sample(sched, x0, t, eps)
        eps_theta, v = split_model_output(eps_fn(x_t, t))
        return host_float64(vlb_term(sched, x0, x_t, t, eps_theta, variance, decoder, v)) * D  # nats

    mid = torch.zeros(B, dtype=torch.float64)
    for t_int in steps.tolist():
        mid += term(t_int)
    out = {"L_T": prior_term(sched, x0), "L_1:T-1": mid * scale, "L_0": term(1)}
    out["total"] = out["L_T"] + out["L_1:T-1"] + out["L_0"]
    return out


@torch.no_grad()
def direct_bound_mc(eps_fn, sched: NoiseSchedule, x0: torch.Tensor, *, variance: Variance = "beta",
                    decoder: Decoder = "gaussian", generator: torch.Generator | None = None) -> torch.Tensor:
    """One Monte-Carlo sample per example of the integrand of eq. 4.9,
    -log p(x_T) - sum_t log p_theta(x_{t-1} | x_t) / q(x_t | x_{t-1}), over a full forward
    trajectory. Its mean is L (the same number as eq. 4.10, with a larger variance). (B,) nats."""
    return -trajectory_log_weight(eps_fn, sched, x0, variance=variance, decoder=decoder, generator=generator)


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for index draws (randperm), seeded from `generator` when it lives elsewhere."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)
