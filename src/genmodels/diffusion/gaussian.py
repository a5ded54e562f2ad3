"""The Gaussian pieces of a DDPM (seed sections 4.1.1-4.1.4): q(x_t | x_0), the posterior
q(x_{t-1} | x_t, x_0), the reverse kernel p_theta(x_{t-1} | x_t) of Remark 7, the Gaussian KL
and the discretised Gaussian decoder of Ho et al. used for L_0.

Shapes: x0, xt, eps are (B, ...) (images (B, C, H, W) or points (B, D)); t is (B,) int64 of
1-based steps (see `schedule.py`). Returned means/variances broadcast against x.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from genmodels.diffusion.schedule import NoiseSchedule, gather
from genmodels.errors import ConfigError, choice_error

FixedVariance = Literal["beta", "beta_tilde"]      # sigma_t^2 = beta_t or the posterior's beta~_t (seed Remark 7)
Variance = Literal[FixedVariance, "learned"]       # or interpolated by the network (Nichol & Dhariwal eq. 15)
VARIANCES = typing.get_args(Variance)


def host_float64(x: torch.Tensor) -> torch.Tensor:
    """x as float64 on the host. Sums and differences that need float64 are taken there, never on
    the model's device: Apple's MPS has no float64 (docs/scaling.md, "Devices without float64")."""
    if x.dtype == torch.float64:           # float64 lives on the host already, by this rule
        return x.detach().cpu()
    return torch.from_numpy(x.detach().float().cpu().numpy()).double()


def q_mean_var(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor):
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)  (seed 4.1.1).

    Returns (mean (B, ...), variance (B, 1, ..., 1), log variance (B, 1, ..., 1))."""
    mean = gather(sched.sqrt_alpha_bar, t, x0) * x0
    var = gather(1.0 - sched.alpha_bar, t, x0)
    return mean, var, torch.log(var)


def q_sample(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw from q(x_t | x_0)  (Algorithm 4.1, step 5).
    x0, eps: (B, ...); t: (B,) -> x_t (B, ...)."""
    return gather(sched.sqrt_alpha_bar, t, x0) * x0 + gather(sched.sqrt_one_minus_alpha_bar, t, x0) * eps


def q_step_mean_var(sched: NoiseSchedule, x_prev: torch.Tensor, t: torch.Tensor):
    """One forward kernel q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)  (seed 4.1.1).
    Returns (mean (B, ...), variance (B, 1, ...))."""
    return gather(sched.alpha.sqrt(), t, x_prev) * x_prev, gather(sched.beta, t, x_prev)


def q_posterior_mean_var(sched: NoiseSchedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
    """q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) with
    mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t.

    Returns (mu~ (B, ...), beta~ (B, 1, ...), log beta~ clipped at t = 1 (B, 1, ...))."""
    mu_tilde = gather(sched.posterior_coef_x0, t, x0) * x0 + gather(sched.posterior_coef_xt, t, xt) * xt
    return mu_tilde, gather(sched.beta_tilde, t, xt), gather(sched.log_beta_tilde_clipped, t, xt)


def predict_x0_from_eps(sched: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), inverting q_sample. All (B, ...)."""
    return (xt - gather(sched.sqrt_one_minus_alpha_bar, t, xt) * eps) / gather(sched.sqrt_alpha_bar, t, xt)


def predict_eps_from_x0(sched: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t). All (B, ...)."""
    return (xt - gather(sched.sqrt_alpha_bar, t, xt) * x0) / gather(sched.sqrt_one_minus_alpha_bar, t, xt)


def v_target(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The v-prediction target of Salimans & Ho (2022): v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0."""
    return gather(sched.sqrt_alpha_bar, t, x0) * eps - gather(sched.sqrt_one_minus_alpha_bar, t, x0) * x0


def eps_from_v(sched: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v (inverse of `v_target` given x_t)."""
    return gather(sched.sqrt_one_minus_alpha_bar, t, xt) * xt + gather(sched.sqrt_alpha_bar, t, xt) * v


def split_model_output(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A denoiser's answer as (eps_theta, v): a network with fixed variances returns the tensor
    eps_theta (v is then None); one that learns them returns the pair (eps_theta, v), v the
    per-dimension interpolation of Nichol & Dhariwal (2021, eq. 15), shaped like eps_theta."""
    if isinstance(out, tuple):
        eps_theta, v = out
        return eps_theta, v
    return out, None


def learned_log_variance(sched: NoiseSchedule, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """log Sigma_theta(x_t, t) = v log beta_t + (1 - v) log beta~_t (Nichol & Dhariwal 2021, eq. 15).

    v: (B, ...) the network's interpolation output, unconstrained as in the paper (v = 0 gives
    beta~_t, v = 1 gives beta_t); log beta~_1 is clipped to log beta~_2 as for the fixed choice.
    Returns (B, ...) in v's dtype."""
    log_beta = gather(torch.log(sched.beta), t, v)
    log_beta_tilde = gather(sched.log_beta_tilde_clipped, t, v)
    return v * log_beta + (1.0 - v) * log_beta_tilde                    # Nichol & Dhariwal eq. 15


def reverse_variance(sched: NoiseSchedule, t: torch.Tensor, like: torch.Tensor, variance: Variance,
                     v: torch.Tensor | None = None):
    """sigma_t^2 of Remark 7 and its log: beta_t, or beta~_t (log clipped at t = 1), each (B, 1, ...);
    or the learned Sigma_theta of `learned_log_variance` from the network's v, (B, ...)."""
    if variance == "learned":
        if v is None:
            raise ConfigError("the learned variance (Nichol & Dhariwal eq. 15) needs the network's v output")
        logvar = learned_log_variance(sched, t, v.to(like.dtype))
        return torch.exp(logvar), logvar
    if variance == "beta":
        var = gather(sched.beta, t, like)
        return var, torch.log(var)
    if variance == "beta_tilde":
        # beta~_1 = 0; as in Ho et al.'s code the t = 1 variance is clipped to beta~_2 (it only
        # matters for the decoder p_theta(x_0 | x_1): samplers add no noise at t = 1).
        logvar = gather(sched.log_beta_tilde_clipped, t, like)
        return torch.exp(logvar), logvar
    raise choice_error("reverse-process variance", variance, VARIANCES)


def p_mean_var(sched: NoiseSchedule, eps_theta: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
               variance: Variance = "beta", clip_x0: bool = False, v: torch.Tensor | None = None):
    """The reverse kernel p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I)  (Remark 7).

    eps_theta: (B, ...) the network's noise prediction at (x_t, t); xt: (B, ...); t: (B,).
    mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t)   (seed eq. 4.3),
    sigma_t^2 = beta_t or beta~_t (`variance`), or Sigma_theta from the network's `v` when
    variance = "learned" (Nichol & Dhariwal eq. 15). With `clip_x0`, the mean is instead the posterior
    mean mu~_t(x0_hat, x_t) with x0_hat clipped to [-1, 1] (identical to eq. 4.3 without clipping).
    Returns (mean (B, ...), variance, log variance), the variances (B, 1, ...) or, learned, (B, ...)."""
    var, logvar = reverse_variance(sched, t, xt, variance, v)
    if clip_x0:
        x0_hat = predict_x0_from_eps(sched, xt, t, eps_theta).clamp(-1.0, 1.0)
        mean = gather(sched.posterior_coef_x0, t, xt) * x0_hat + gather(sched.posterior_coef_xt, t, xt) * xt
    else:
        coef = gather(sched.beta / sched.sqrt_one_minus_alpha_bar, t, xt)
        mean = (xt - coef * eps_theta) / gather(sched.alpha.sqrt(), t, xt)  # seed eq. 4.3
    return mean, var, logvar


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, in nats (broadcasting):
    1/2 (logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2) - 1)."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(logvar)) elementwise, in nats (the continuous Gaussian decoder)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def _log_normal_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b, stable in both tails (reflects to the left tail)."""
    flip = a > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    log_hi = torch.special.log_ndtr(hi)
    log_lo = torch.special.log_ndtr(lo)
    gap = -1e-12 if lo.dtype == torch.float64 else -torch.finfo(lo.dtype).eps   # keeps log1p(-exp(.)) finite
    return log_hi + torch.log1p(-torch.exp((log_lo - log_hi).clamp(max=gap)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) under N(mean, exp(log_scale)^2) integrated over x's 8-bit bin: the L_0 decoder of
    Ho et al. (their eq. 13). x must lie on the 256-level grid in [-1, 1] (bin width 2/255); the
    bins at -1 and +1 extend to -inf and +inf. x, mean, log_scale broadcast; result elementwise,
    nats, computed in log space on x's device in at least float32 (float64 when the inputs are; never
    moved to the host, so the training step does not wait for it), returned in x's dtype. `log_scale` is the log
    standard deviation (1/2 log sigma_1^2)."""
    wide = torch.promote_types(torch.promote_types(x.dtype, mean.dtype), torch.float32)   # float64 inputs stay so
    xd, md = x.to(wide), mean.to(wide)
    inv_std = torch.exp(-log_scale.to(wide))
    upper = inv_std * (xd - md + 1.0 / 255.0)
    lower = inv_std * (xd - md - 1.0 / 255.0)
    log_cdf_upper = torch.special.log_ndtr(upper)           # bin at -1: (-inf, -1 + 1/255]
    log_sf_lower = torch.special.log_ndtr(-lower)           # bin at +1: [1 - 1/255, +inf)
    log_mass = _log_normal_mass(lower, upper)               # interior bins
    out = torch.where(xd < -0.999, log_cdf_upper, torch.where(xd > 0.999, log_sf_lower, log_mass))
    return out.to(x.dtype)
