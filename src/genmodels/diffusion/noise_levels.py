"""Noise levels sigma of a DDPM in the variables of DDIM and Karras et al. (2022).

Dividing x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps by sqrt(abar_t) gives

    y = x_t / sqrt(abar_t) = x_0 + sigma_t eps,   sigma_t = sqrt((1 - abar_t) / abar_t)

(Song et al. 2021, DDIM sec. 4.3; Karras et al. 2022, Table 1, "VP"; docs/ddpm.md, "Samplers"), and
abar_t = 1 / (1 + sigma_t^2). sigma_0 = 0 (abar_0 = 1) and sigma_t increases with t.

- `sigma_table(sched)`: sigma_0 = 0, sigma_1, ..., sigma_T, shape (T + 1,), float64.
- `sigma_at(sched, t)`, `step_at(sched, sigma)`: a continuous interpolation between the
  integer steps, for solvers that need eps_theta at any noise level (the probability-flow ODE):
  log sigma is linear in t between integer steps t >= 1, and sigma is linear in t on [0, 1]. The
  two functions are each other's inverse and agree with the table at integer t.
- `karras_sigmas(sigma_min, sigma_max, n, rho)`: Karras et al.'s eq. 5.
- `karras_steps(sched, n, rho)`: the DDPM steps whose sigma_t is nearest to those levels, with
  sigma_min = sigma_1 and sigma_max = sigma_T (a discrete-time network only knows its own
  levels; Karras et al. round each sigma_i to the nearest level such a network supports).
"""

from __future__ import annotations

import torch

from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError


def sigma_table(sched: NoiseSchedule) -> torch.Tensor:
    """sigma_t = sqrt((1 - abar_t) / abar_t) for t = 0..T (index t holds step t), float64 (T + 1,)."""
    abar = torch.cat([torch.ones(1, dtype=torch.float64), sched.alpha_bar])
    return ((1.0 - abar) / abar).sqrt()                                  # Karras et al. 2022, Table 1: sigma(t)


def sigma_at(sched: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """sigma at fractional steps t in [0, T] (any shape, float): log-linear in t between integer
    steps t >= 1, linear on [0, 1] (sigma_0 = 0). Returns float64 on t's device, t's shape."""
    table = sigma_table(sched).to(t.device)
    tt = t.double().clamp(0.0, float(sched.T))
    k = tt.floor().long().clamp(max=sched.T - 1)                         # segment [k, k + 1]
    frac = tt - k
    lo, hi = table[k], table[k + 1]
    log_lo = torch.log(lo.clamp(min=1e-300))
    geometric = torch.exp(log_lo + frac * (torch.log(hi) - log_lo))
    return torch.where(k == 0, frac * hi, geometric)


def step_at(sched: NoiseSchedule, sigma: torch.Tensor) -> torch.Tensor:
    """The fractional step t in [0, T] with sigma_at(sched, t) = sigma (the inverse of `sigma_at`;
    sigma beyond sigma_T gives T). Returns float64 on sigma's device, sigma's shape."""
    table = sigma_table(sched).to(sigma.device)
    s = sigma.double().clamp(0.0, float(table[-1]))
    k = (torch.searchsorted(table, s, right=True) - 1).clamp(0, sched.T - 1)
    lo, hi = table[k], table[k + 1]
    log_ratio = torch.log(s.clamp(min=1e-300) / lo.clamp(min=1e-300)) / torch.log(hi / lo.clamp(min=1e-300))
    return torch.where(k == 0, s / hi, k + log_ratio)


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022), eq. 5: sigma_i = (sigma_max^(1/rho) + i / (n - 1) (sigma_min^(1/rho)
    - sigma_max^(1/rho)))^rho for i = 0..n-1, then sigma_n = 0. rho = 7 is their choice (rho = 1
    spaces the levels uniformly). Returns float64 (n + 1,), decreasing from sigma_max to 0."""
    if n < 1:
        raise ConfigError(f"the number of Karras noise levels must be >= 1, got {n}")
    if not 0.0 < sigma_min <= sigma_max:
        raise ConfigError(f"Karras noise levels need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    if rho <= 0:
        raise ConfigError(f"Karras rho must be > 0, got {rho}")
    i = torch.arange(n, dtype=torch.float64)
    frac = i / (n - 1) if n > 1 else torch.zeros(1, dtype=torch.float64)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sigmas = (hi + frac * (lo - hi)) ** rho                                # Karras et al. eq. 5
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)])        # sigma_N = 0


def karras_steps(sched: NoiseSchedule, n: int, rho: float = 7.0) -> list[int]:
    """The visited steps [T, ..., 1, 0] for n Karras levels between sigma_1 and sigma_T: each level
    rounded to the step with the nearest sigma_t (steps repeated by the rounding are dropped, so
    at most n before the final 0). The first is T and the last before 0 is 1."""
    table = sigma_table(sched)
    levels = karras_sigmas(float(table[1]), float(table[-1]), n, rho)[:-1]
    steps: list[int] = []
    for sigma in levels:
        t = int((table[1:] - sigma).abs().argmin()) + 1                    # nearest supported level
        if not steps or t < steps[-1]:
            steps.append(t)
    return steps + [0]
