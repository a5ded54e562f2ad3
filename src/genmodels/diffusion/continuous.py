"""Training at any noise level: densities over the noise levels, Karras et al.'s (2022)
preconditioning and soft-min-SNR weighting, all written in the variables of the seed's
variance-preserving chain.

A DDPM's x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps is, divided by sqrt(abar),

    y = x_0 + sigma eps,   sigma^2 = (1 - abar) / abar,   abar = 1 / (1 + sigma^2)

(`noise_levels.py`; Karras et al. 2022, Table 1, "VP"). The network's time input is the step t,
fractional between the schedule's integer steps (`noise_levels.sigma_at`, log-linear in t), so a
density over sigma is a density over t. Every function here takes abar per example, shaped to
broadcast against x_0 (B, 1, ..., 1), so it serves integer and fractional steps alike.

Noise-level densities (`draw_steps`):
- uniform: t ~ Unif{1..T} (Algorithm 4.1, step 3); the integer steps of the schedule.
- lognormal: ln sigma ~ N(P_mean, P_std^2), Karras et al. 2022 sec. 5 ("training"), P_mean = -1.2,
  P_std = 1.2.
- logit-normal: Esser et al. 2024 eq. 19 draw the rectified-flow time t' = sigmoid(u), u ~ N(m, s^2),
  m = 0, s = 1. On the linear path x_t' = (1 - t') x_0 + t' eps, y = x_t' / (1 - t') has
  sigma = t' / (1 - t'), so ln sigma = logit(t') = u: their density is the lognormal one with
  (m, s) in place of (P_mean, P_std), and it is drawn as such here.
sigma is clipped to the schedule's range [sigma_1, sigma_T] (for the linear schedule 0.01..157;
EDM's lognormal puts 0.2% of its mass below sigma_1).

Preconditioning (`prediction = "edm"`; Karras et al. 2022, Table 1 and eq. 7): the denoiser is
D(y; sigma) = c_skip y + c_out F(c_in y; c_noise) with

    c_skip = sigma_d^2 / (sigma^2 + sigma_d^2),  c_out = sigma sigma_d / sqrt(sigma^2 + sigma_d^2),
    c_in = 1 / sqrt(sigma^2 + sigma_d^2),

and their loss weight lambda(sigma) = 1 / c_out^2 makes lambda ||D - x_0||^2 = ||F - F_target||^2,
F_target = (x_0 - c_skip y) / c_out: the network F is trained with unit weight. The network reads
c_in y = x_t c_in / sqrt(abar) and, in place of c_noise = ln(sigma) / 4, the step t (a monotone
function of sigma: the same information, in the scale the U-Net's time embedding was made for).
With sigma_d = 1, c_in y = x_t and F = -v: v prediction is this preconditioning with sigma_d = 1.
"""

from __future__ import annotations

import typing
from typing import Literal

import torch

from genmodels.diffusion.noise_levels import sigma_at, sigma_table, step_at
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import choice_error

NoiseDensity = Literal["uniform", "lognormal", "logit-normal"]
NOISE_DENSITIES = typing.get_args(NoiseDensity)
DENSITY_DEFAULTS = {"lognormal": (-1.2, 1.2), "logit-normal": (0.0, 1.0)}   # Karras et al.; Esser et al.
SNRWeighting = Literal["min", "soft-min"]
SNR_WEIGHTINGS = typing.get_args(SNRWeighting)


def draw_steps(sched: NoiseSchedule, n: int, density: NoiseDensity, generator: torch.Generator | None,
               device: torch.device | str, mean: float | None = None, std: float | None = None) -> torch.Tensor:
    """n training steps t from `density` (module docstring): uniform gives int64 steps 1..T (as
    Algorithm 4.1 draws them); lognormal and logit-normal give float64 fractional steps in
    [1, T] whose sigma = sigma_at(t) has ln sigma ~ N(mean, std^2) (None: the paper's values)."""
    if density == "uniform":
        return torch.randint(1, sched.T + 1, (n,), generator=generator, device=device)
    if density not in DENSITY_DEFAULTS:
        raise choice_error("noise-level density", density, NOISE_DENSITIES)
    m0, s0 = DENSITY_DEFAULTS[density]
    m, s = m0 if mean is None else mean, s0 if std is None else std
    u = torch.randn((n,), generator=generator, device=device, dtype=torch.float64)
    table = sigma_table(sched)
    sigma = torch.exp(m + s * u).clamp(float(table[1]), float(table[-1]))
    return step_at(sched, sigma).clamp(1.0, float(sched.T))


def alpha_bar_at(sched: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """abar at steps t (B,), integer (the schedule's table) or fractional (1 / (1 + sigma_at(t)^2)),
    float64 on t's device."""
    if not t.is_floating_point():
        return sched.alpha_bar.to(t.device)[t - 1]
    return 1.0 / (1.0 + sigma_at(sched, t) ** 2)


def edm_scalings(abar: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in) of Karras et al. (2022), Table 1, at sigma^2 = (1 - abar) / abar."""
    s2 = (1.0 - abar) / abar
    d2 = sigma_data**2
    return d2 / (s2 + d2), (s2 * d2).sqrt() / (s2 + d2).sqrt(), 1.0 / (s2 + d2).sqrt()


def net_input_scale(abar: torch.Tensor, prediction: str, sigma_data: float) -> torch.Tensor | None:
    """The factor the network's input x_t is multiplied by: c_in / sqrt(abar) for "edm" (so the
    network reads c_in y), None (x_t as it is) for eps, x0 and v."""
    if prediction != "edm":
        return None
    return edm_scalings(abar, sigma_data)[2] / abar.sqrt()


def target_at(x0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor, prediction: str,
              sigma_data: float) -> torch.Tensor:
    """What the network is trained to output at x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps: eps, x_0,
    v = sqrt(abar) eps - sqrt(1 - abar) x_0 (Salimans & Ho 2022) or F_target = (x_0 - c_skip y) / c_out
    with y = x_0 + sigma eps (Karras et al. 2022, eq. 8)."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return abar.sqrt() * eps - (1.0 - abar).sqrt() * x0
    if prediction == "edm":
        c_skip, c_out, _ = edm_scalings(abar, sigma_data)
        y = x0 + ((1.0 - abar) / abar).sqrt() * eps
        return (x0 - c_skip * y) / c_out
    raise choice_error("prediction target", prediction, ("eps", "x0", "v", "edm"))


def edm_output_to_eps(output: torch.Tensor, xt: torch.Tensor, abar: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """eps_theta from the preconditioned network's F: D = c_skip y + c_out F at y = x_t / sqrt(abar),
    then eps = (y - D) / sigma (y = x_0 + sigma eps)."""
    c_skip, c_out, _ = edm_scalings(abar, sigma_data)
    y = xt / abar.sqrt()
    denoised = c_skip * y + c_out * output
    return (y - denoised) / ((1.0 - abar) / abar).sqrt()


def snr_weight_at(abar: torch.Tensor, prediction: str, gamma: float, weighting: SNRWeighting = "min",
                  sigma_data: float = 0.5) -> torch.Tensor:
    """Loss weights for each target's squared error that weight the x_0 error by w(SNR),
    SNR = abar / (1 - abar) = 1 / sigma^2:

        min:      w = min(SNR, gamma)                (Hang et al. 2023, min-SNR-gamma)
        soft-min: w = SNR gamma / (SNR + gamma)      (Crowson et al. 2024, sec. 4: 1 / (1/SNR + 1/gamma),
                                                      a smooth min; gamma = 0 is no weighting)

    carried to each target as `losses.min_snr_weight` does (x_0 - x0_hat = -(eps - eps_hat) / sqrt(SNR)
    = -sqrt(1 - abar) (v - v_hat) = -c_out (F - F_hat)): x0 w, eps w / SNR, v w / (SNR + 1),
    edm w c_out^2 (unit weight on F is EDM's own lambda). gamma = 0: 1 (no weighting)."""
    if gamma <= 0:
        return torch.ones_like(abar, dtype=torch.float32)
    s = abar / (1.0 - abar)
    if weighting == "min":
        w = s.clamp(max=gamma)
    elif weighting == "soft-min":
        w = s * gamma / (s + gamma)
    else:
        raise choice_error("SNR weighting", weighting, SNR_WEIGHTINGS)
    if prediction == "eps":
        w = w / s
    elif prediction == "v":
        w = w / (s + 1.0)
    elif prediction == "edm":
        w = w * edm_scalings(abar, sigma_data)[1] ** 2
    elif prediction != "x0":
        raise choice_error("prediction target", prediction, ("eps", "x0", "v", "edm"))
    return w.float()

