"""Noise schedules beta_1..beta_T and the quantities derived from them (seed section 4.1.1).

Time convention (used everywhere in `genmodels.diffusion`): diffusion steps are 1-based,
t in {1, ..., T}, as in the seed and Ho et al. A per-step tensor such as `sched.beta` has
length T and **index t-1 holds step t**. `alpha_bar_prev[t-1]` is abar_{t-1}, with
abar_0 = 1. `gather(sched.beta, t, like)` reads step t for a batch of integer steps.
All schedule tensors are float64; `gather` casts to the dtype of the tensor it will meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from genmodels.errors import ConfigError, choice_error


def linear_betas(T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """Ho et al. (2020) linear schedule: beta_t evenly spaced from beta_1 to beta_T. Shape (T,), float64."""
    if T < 1:
        raise ConfigError(f"the number of diffusion steps T must be >= 1, got {T}")
    if not 0.0 < beta_1 <= beta_T < 1.0:
        raise ConfigError(f"linear schedule needs 0 < beta_1 <= beta_T < 1, got beta_1={beta_1}, beta_T={beta_T}")
    return torch.linspace(beta_1, beta_T, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021) cosine schedule, their eq. 17:
    abar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) * pi/2),
    beta_t = 1 - abar(t) / abar(t-1), clipped to at most `max_beta`. Shape (T,), float64."""
    if T < 1:
        raise ConfigError(f"the number of diffusion steps T must be >= 1, got {T}")
    if not 0.0 < max_beta < 1.0:
        raise ConfigError(f"max_beta must lie in (0, 1), got {max_beta}")
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((steps / T + s) / (1 + s)) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return betas.clamp(max=max_beta)


def scaled_linear_betas(T: int) -> torch.Tensor:
    """Ho et al.'s linear schedule for any T, with the endpoints scaled by 1000 / T so that abar_T
    stays near zero (as in Nichol & Dhariwal's code): exactly `linear_betas()` at T = 1000."""
    scale = 1000.0 / T
    return linear_betas(T, min(scale * 1e-4, 0.5), min(scale * 0.02, 0.999))


Schedule = Literal["linear", "cosine"]             # the names of SCHEDULES
SCHEDULES = {"linear": scaled_linear_betas, "cosine": lambda T: cosine_betas(T)}


def make_betas(name: Schedule, T: int) -> torch.Tensor:
    """The named schedule with T steps: "linear" (`scaled_linear_betas`) or "cosine"."""
    if name not in SCHEDULES:
        raise choice_error("noise schedule", name, SCHEDULES)
    return SCHEDULES[name](T)


@dataclass(frozen=True)
class NoiseSchedule:
    """All per-step constants of a DDPM, float64 tensors of shape (T,); index t-1 holds step t.

    beta                 beta_t                                            (seed 4.1.1)
    alpha                alpha_t = 1 - beta_t                              (Remark 7)
    alpha_bar            abar_t = prod_{s<=t} alpha_s
    alpha_bar_prev       abar_{t-1}, with abar_0 = 1
    sqrt_alpha_bar       sqrt(abar_t)
    sqrt_one_minus_alpha_bar  sqrt(1 - abar_t)
    beta_tilde           beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t  (posterior variance)
    log_beta_tilde_clipped  log beta~_t with beta~_1 (= 0) replaced by beta~_2 (Ho et al.)
    posterior_coef_x0    sqrt(abar_{t-1}) beta_t / (1 - abar_t)            (coefficient of x_0 in mu~_t)
    posterior_coef_xt    sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)     (coefficient of x_t in mu~_t)
    """

    beta: torch.Tensor
    alpha: torch.Tensor
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor
    sqrt_alpha_bar: torch.Tensor
    sqrt_one_minus_alpha_bar: torch.Tensor
    beta_tilde: torch.Tensor
    log_beta_tilde_clipped: torch.Tensor
    posterior_coef_x0: torch.Tensor
    posterior_coef_xt: torch.Tensor

    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return int(self.beta.shape[0])

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> NoiseSchedule:
        """Precompute every constant in float64 from beta_1..beta_T (shape (T,))."""
        beta = torch.as_tensor(betas, dtype=torch.float64).flatten().cpu()
        if beta.numel() < 1:
            raise ConfigError("a noise schedule needs at least one step")
        if not bool(((beta > 0) & (beta < 1)).all()):
            raise ConfigError("every beta_t must lie in (0, 1)")
        alpha = 1.0 - beta
        alpha_bar = torch.cumprod(alpha, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        beta_tilde = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * beta
        # beta~_1 = 0 exactly; its log is clipped to beta~_2 as in Ho et al.'s code.
        clip_to = beta_tilde[1] if beta.numel() > 1 else beta[0]
        log_beta_tilde_clipped = torch.log(torch.cat([clip_to.reshape(1), beta_tilde[1:]]))
        return cls(
            beta=beta,
            alpha=alpha,
            alpha_bar=alpha_bar,
            alpha_bar_prev=alpha_bar_prev,
            sqrt_alpha_bar=alpha_bar.sqrt(),
            sqrt_one_minus_alpha_bar=(1.0 - alpha_bar).sqrt(),
            beta_tilde=beta_tilde,
            log_beta_tilde_clipped=log_beta_tilde_clipped,
            posterior_coef_x0=alpha_bar_prev.sqrt() * beta / (1.0 - alpha_bar),
            posterior_coef_xt=alpha.sqrt() * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar),
        )

    @classmethod
    def named(cls, name: Schedule, T: int) -> NoiseSchedule:
        """`from_betas(make_betas(name, T))`."""
        return cls.from_betas(make_betas(name, T))


def gather(values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """values[t-1] for 1-based steps t, shaped to broadcast against `like`.

    values: (T,) schedule tensor; t: int or (B,) int64 in {1..T}; like: (B, ...) tensor
    -> result (B, 1, ..., 1) in like's dtype and device.
    A scalar t gives a 0-d result."""
    if isinstance(t, int):
        return values[t - 1].to(dtype=like.dtype, device=like.device)
    idx = (t.long() - 1).cpu()
    out = values[idx].to(dtype=like.dtype, device=like.device)
    return out.reshape(-1, *([1] * (like.dim() - 1)))
