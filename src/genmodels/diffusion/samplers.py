"""Samplers: stateless functions that turn x_T ~ N(0, I) into x_0 with a trained noise predictor.

All share one signature (k-diffusion style):

    sampler(denoise, x_T, sched, *, steps=None, generator=None, clip_x0=False, callback=None,
            spacing=..., **extra)

denoise(x_t, t) -> eps_theta: x_t (B, ...) and t (B,) int64 1-based steps of `sched`, returns
the noise prediction (B, ...), or the pair (eps_theta, v) for a network that learns its variance
(Nichol & Dhariwal eq. 15; only `ancestral` uses v, with variance="learned"). steps: number of
visited noise levels, which is the number of network evaluations for every sampler but `heun`
(2 steps - 1); None = all T. generator: the explicit RNG for the noise drawn along the way.
clip_x0: clip the predicted x_0 to [-1, 1] at every step. callback(i, t, x_t, x0_hat) is called
before each update (i counts down). spacing: how the visited steps
`timestep_sequence(sched, steps, spacing)` = T = tau_K > ... > tau_1 = 1 are chosen ("uniform",
"logsnr" or "karras"). Every sampler returns x_0 (B, ...).

`SAMPLERS` is the registry, name -> `SamplerSpec` (the function, its default steps and spacing,
its extra options): the one place a sampler's name and defaults are written; the DDPM's sample
options and their help are read from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Literal, get_args

import torch

from genmodels.diffusion.gaussian import (
    Variance,
    p_mean_var,
    predict_eps_from_x0,
    predict_x0_from_eps,
    split_model_output,
)
from genmodels.diffusion.noise_levels import karras_steps, sigma_table
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, choice_error

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


Spacing = Literal["uniform", "logsnr", "karras"]
SPACINGS: tuple[str, ...] = get_args(Spacing)


def timestep_sequence(sched: NoiseSchedule, steps: int | None, spacing: Spacing = "uniform") -> list[int]:
    """The visited steps [tau_K = T, ..., tau_1 = 1, 0] for K = steps network calls, then 0 (the
    clean data, abar_0 = 1). spacing "uniform": K integers evenly spaced from T down to 1 (DDIM's
    uniform skip, keeping the last call at t = 1); "logsnr": the steps nearest to K values of
    lambda_t = log(sqrt(abar_t) / sqrt(1 - abar_t)) evenly spaced between lambda_T and lambda_1
    (Lu et al. 2022's recommendation for DPM-Solver; repeated steps are dropped, so at most K);
    "karras": the steps nearest to Karras et al.'s (2022) K levels sigma_i with rho = 7 between
    sigma_1 and sigma_T (`noise_levels.karras_steps`; repeats dropped as well).
    K = T gives every step T, T-1, ..., 1, 0."""
    T = sched.T
    K = T if steps is None else int(steps)
    if not 1 <= K <= T:
        raise ConfigError(f"the number of sampling steps must lie in 1..{T} (T), got {steps}")
    if spacing not in SPACINGS:
        raise choice_error("timestep spacing", spacing, SPACINGS)
    if K == 1:
        return [T, 0]
    if spacing == "karras" and K < T:
        return karras_steps(sched, K)
    if spacing == "uniform" or K == T:
        return torch.linspace(T, 1, K, dtype=torch.float64).round().long().tolist() + [0]
    lam = 0.5 * torch.log(sched.alpha_bar / (1.0 - sched.alpha_bar))            # decreasing in t
    targets = torch.linspace(float(lam[-1]), float(lam[0]), K, dtype=torch.float64)
    taus: list[int] = []
    for value in targets:
        t = int((lam - value).abs().argmin()) + 1
        if not taus or t < taus[-1]:
            taus.append(t)
    taus[0], taus[-1] = T, 1
    return taus + [0]


def _abar(sched: NoiseSchedule, t: int) -> float:
    """abar_t as a Python float, with abar_0 = 1."""
    return 1.0 if t == 0 else float(sched.alpha_bar[t - 1])


def respaced_schedule(sched: NoiseSchedule, taus: list[int]) -> NoiseSchedule:
    """The schedule of the sub-chain tau_K > ... > tau_1 > 0 with the same abar at the visited
    steps (Nichol & Dhariwal 2021, sec. 4): beta_i = 1 - abar_{tau_i} / abar_{tau_{i-1}}."""
    up = taus[::-1]  # 0, tau_1, ..., tau_K
    betas = [1.0 - _abar(sched, t) / _abar(sched, s) for s, t in pairwise(up)]
    return NoiseSchedule.from_betas(torch.tensor(betas, dtype=torch.float64))


def _full(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)


@torch.no_grad()
def ancestral(denoise: Denoiser, x_T: torch.Tensor, sched: NoiseSchedule, *, steps: int | None = None,
              generator: torch.Generator | None = None, clip_x0: bool = False,
              callback: Callable | None = None, spacing: Spacing = "uniform",
              variance: Variance = "beta") -> torch.Tensor:
    """Ancestral sampling, seed Algorithm 4.2 (Ho et al. 2020, Algorithm 2):
    x_{t-1} = (x_t - (1 - alpha_t) / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z,
    z ~ N(0, I) for t > 1 and z = 0 at t = 1; sigma_t^2 = beta_t or beta~_t (Remark 7, `variance`),
    or, with variance="learned", Sigma_theta = exp(v log beta_t + (1 - v) log beta~_t) from the
    network's v (Nichol & Dhariwal 2021, eq. 15). With steps < T it runs the same algorithm on the
    respaced sub-chain (`respaced_schedule`; a learned v then interpolates its beta_i and beta~_i,
    as in Nichol & Dhariwal sec. 4)."""
    taus = timestep_sequence(sched, steps, spacing)
    sub = sched if len(taus) == sched.T + 1 else respaced_schedule(sched, taus)
    x = x_T
    K = len(taus) - 1
    for i in range(K, 0, -1):                                      # Algorithm 4.2, step 2
        t = taus[K - i]
        eps, v = split_model_output(denoise(x, _full(x, t)))
        if callback is not None:
            callback(i, t, x, predict_x0_from_eps(sched, x, _full(x, t), eps))
        mean, var, _ = p_mean_var(sub, eps, x, _full(x, i), variance, clip_x0, v)  # seed eq. 4.3
        if i > 1:                                                  # step 3: z = 0 at the last step
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = mean + var.sqrt() * z                              # step 4
        else:
            x = mean
    return x


def _denoised(denoise: Denoiser, sched: NoiseSchedule, x: torch.Tensor, t: int,
              clip_x0: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One network evaluation at step t: (eps_theta, x0_hat). With clip_x0, x0_hat is clamped to
    [-1, 1] and eps re-derived from it, so that the pair stays consistent with x_t."""
    tt = _full(x, t)
    eps, _ = split_model_output(denoise(x, tt))
    x0_hat = predict_x0_from_eps(sched, x, tt, eps)
    if clip_x0:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
        eps = predict_eps_from_x0(sched, x, tt, x0_hat)
    return eps, x0_hat


@torch.no_grad()
def ddim(denoise: Denoiser, x_T: torch.Tensor, sched: NoiseSchedule, *, steps: int | None = None,
         generator: torch.Generator | None = None, clip_x0: bool = False,
         callback: Callable | None = None, spacing: Spacing = "uniform", eta: float = 0.0) -> torch.Tensor:
    """DDIM (Song, Meng & Ermon 2021, eq. 12), from step t to the previous visited step s:
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_theta + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s) (their eq. 16).
    eta = 0 is deterministic; eta = 1 with all T steps is ancestral sampling with sigma_t^2 = beta~_t."""
    if eta < 0:
        raise ConfigError(f"DDIM eta must be >= 0, got {eta}")
    taus = timestep_sequence(sched, steps, spacing)
    x = x_T
    K = len(taus) - 1
    for i in range(K, 0, -1):
        t, s = taus[K - i], taus[K - i + 1]
        eps, x0_hat = _denoised(denoise, sched, x, t, clip_x0)
        if callback is not None:
            callback(i, t, x, x0_hat)
        a_t, a_s = _abar(sched, t), _abar(sched, s)
        sigma = eta * math.sqrt((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s))
        x = math.sqrt(a_s) * x0_hat + math.sqrt(max(1.0 - a_s - sigma**2, 0.0)) * eps
        if s > 0:
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + sigma * z
    return x


@torch.no_grad()
def dpm_solver_pp_2m(denoise: Denoiser, x_T: torch.Tensor, sched: NoiseSchedule, *, steps: int | None = 20,
                     generator: torch.Generator | None = None, clip_x0: bool = False,
                     callback: Callable | None = None, spacing: Spacing = "logsnr") -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), the multistep second-order solver of the
    diffusion ODE in data-prediction form, for 10-25 steps. With alpha_t = sqrt(abar_t),
    sigma_t = sqrt(1 - abar_t), lambda_t = log(alpha_t / sigma_t), h_i = lambda_{t_i} - lambda_{t_{i-1}}:
    x_{t_i} = sigma_{t_i} / sigma_{t_{i-1}} x_{t_{i-1}} - alpha_{t_i} (e^{-h_i} - 1) D_i,
    D_i = (1 + 1/(2 r_i)) x0_{i-1} - 1/(2 r_i) x0_{i-2}, r_i = h_{i-1} / h_i; the first step and
    the last (to sigma = 0) are first order. Steps are spaced uniformly in lambda by default.
    Deterministic: `generator` is unused."""
    del generator
    taus = timestep_sequence(sched, steps, spacing)
    x = x_T
    K = len(taus) - 1
    x0_prev: torch.Tensor | None = None
    h_prev = 0.0                                       # read only once x0_prev is set
    for i in range(K, 0, -1):
        t, s = taus[K - i], taus[K - i + 1]
        _, x0_hat = _denoised(denoise, sched, x, t, clip_x0)
        if callback is not None:
            callback(i, t, x, x0_hat)
        if s == 0:                                     # sigma_s = 0: the update returns x0_hat
            x = x0_hat
            break
        a_t, a_s = _abar(sched, t), _abar(sched, s)
        alpha_t, sigma_t = math.sqrt(a_t), math.sqrt(1.0 - a_t)
        alpha_s, sigma_s = math.sqrt(a_s), math.sqrt(1.0 - a_s)
        h = math.log(alpha_s / sigma_s) - math.log(alpha_t / sigma_t)
        if x0_prev is None:
            D = x0_hat                                 # first step: DPM-Solver++(1) = DDIM
        else:
            r = h_prev / h
            D = (1.0 + 0.5 / r) * x0_hat - (0.5 / r) * x0_prev
        x = (sigma_s / sigma_t) * x - alpha_s * math.expm1(-h) * D
        x0_prev, h_prev = x0_hat, h
    return x


def _karras_denoised(denoise: Denoiser, sched: NoiseSchedule, y: torch.Tensor, t: int, sigma_t: float,
                     clip_x0: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Karras et al.'s denoiser D(y; sigma_t) = y - sigma_t eps_theta(x_t, t) at x_t = y / sqrt(1 + sigma_t^2)
    (their Table 1, VP), through `_denoised` (so clip_x0 clips D). Returns (x_t, D)."""
    x_t = y / math.sqrt(1.0 + sigma_t**2)
    return x_t, _denoised(denoise, sched, x_t, t, clip_x0)[1]


def _karras_levels(sched: NoiseSchedule, x_T: torch.Tensor, steps: int | None,
                   spacing: Spacing) -> tuple[list[tuple[int, int, int, float, float]], torch.Tensor]:
    """The visited steps as (i, t, s, sigma_t, sigma_s) from the first to the last (i counts down to
    1, as the other samplers' callbacks do), and the start y_T = x_T sqrt(1 + sigma_T^2) = x_T / sqrt(abar_T)."""
    taus = timestep_sequence(sched, steps, spacing)
    sig = sigma_table(sched).tolist()
    K = len(taus) - 1
    levels = [(i, taus[K - i], taus[K - i + 1], sig[taus[K - i]], sig[taus[K - i + 1]]) for i in range(K, 0, -1)]
    return levels, x_T * math.sqrt(1.0 + sig[taus[0]] ** 2)


@torch.no_grad()
def heun(denoise: Denoiser, x_T: torch.Tensor, sched: NoiseSchedule, *, steps: int | None = 18,
         generator: torch.Generator | None = None, clip_x0: bool = False,
         callback: Callable | None = None, spacing: Spacing = "karras") -> torch.Tensor:
    """Karras et al. (2022), Algorithm 1: Heun's second-order method for the probability-flow ODE
    dy/dsigma = (y - D(y; sigma)) / sigma in y = x_t / sqrt(abar_t), over the levels sigma_i of the
    visited steps (Karras spacing with rho = 7 by default, their eq. 5). Per level:
    d_i = (y_i - D(y_i; sigma_i)) / sigma_i, y_{i+1} = y_i + (sigma_{i+1} - sigma_i) d_i (Euler), then,
    unless sigma_{i+1} = 0, y_{i+1} = y_i + (sigma_{i+1} - sigma_i) (d_i + d'_i) / 2 with d'_i the slope
    at the Euler point. `steps` is their N (noise levels), so 2N - 1 network evaluations (N = 18:
    35). Starts from y_T = x_T / sqrt(abar_T). Deterministic: `generator` is unused."""
    del generator
    levels, y = _karras_levels(sched, x_T, steps, spacing)
    for i, t, s, sigma_t, sigma_s in levels:
        x_t, D = _karras_denoised(denoise, sched, y, t, sigma_t, clip_x0)
        if callback is not None:
            callback(i, t, x_t, D)
        d = (y - D) / sigma_t                                             # Algorithm 1, line 4
        y_next = y + (sigma_s - sigma_t) * d                              # line 5: Euler step
        if s > 0:                                                         # line 6: second-order correction
            _, D_next = _karras_denoised(denoise, sched, y_next, s, sigma_s, clip_x0)
            d_next = (y_next - D_next) / sigma_s                          # line 7
            y_next = y + (sigma_s - sigma_t) * (0.5 * d + 0.5 * d_next)   # line 8
        y = y_next
    return y


@torch.no_grad()
def euler_ancestral(denoise: Denoiser, x_T: torch.Tensor, sched: NoiseSchedule, *, steps: int | None = 50,
                    generator: torch.Generator | None = None, clip_x0: bool = False,
                    callback: Callable | None = None, spacing: Spacing = "karras") -> torch.Tensor:
    """Euler-ancestral sampling in Karras et al.'s variables y = x_t / sqrt(abar_t) (Karras spacing
    with rho = 7 by default): each step from sigma_t to sigma_s draws from the DDPM posterior
    q(y_s | y_t, x_0 = D(y_t; sigma_t)) = N(D + sigma_s^2 / sigma_t^2 (y_t - D), sigma_up^2), written as
    an Euler step of the ODE to sigma_down followed by fresh noise (k-diffusion's `sample_euler_ancestral`;
    docs/ddpm.md, "Samplers"):
        sigma_up = sigma_s sqrt(1 - sigma_s^2 / sigma_t^2),  sigma_down = sigma_s^2 / sigma_t,
        y_s = y_t + (sigma_down - sigma_t) d + sigma_up z,   d = (y_t - D) / sigma_t,  z ~ N(0, I),
    and no noise on the last step (sigma_s = 0 gives y = D). This is DDIM with eta = 1 (Song et al.
    2021, eq. 16); with all T steps it is ancestral sampling with sigma_t^2 = beta~_t. `steps`
    network evaluations; noise from `generator`."""
    levels, y = _karras_levels(sched, x_T, steps, spacing)
    for i, t, s, sigma_t, sigma_s in levels:
        x_t, D = _karras_denoised(denoise, sched, y, t, sigma_t, clip_x0)
        if callback is not None:
            callback(i, t, x_t, D)
        sigma_up = sigma_s * math.sqrt(max(1.0 - sigma_s**2 / sigma_t**2, 0.0))   # posterior std
        sigma_down = sigma_s**2 / sigma_t
        d = (y - D) / sigma_t
        y = y + (sigma_down - sigma_t) * d                                 # Euler step to sigma_down
        if s > 0:
            z = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
            y = y + sigma_up * z                                           # fresh noise
    return y


SpacingSetting = Literal["auto", Spacing]     # auto: the sampler's own spacing (SamplerSpec.spacing)


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler of the registry: its function and what `genmodels sample` uses by default.

    steps: the visited noise levels when none are asked for (None = all T); it is the function's
    own default except for ddim, whose function visits all T (so that eta = 1 is ancestral
    sampling) while genmodels takes Song et al.'s cheaper 50. spacing: the function's default
    spacing. extra: the keyword options it takes beyond the common signature (module docstring),
    filled by the caller (DDPM: eta from the sample options, variance from the model)."""

    fn: Callable
    steps: int | None
    spacing: Spacing
    extra: tuple[str, ...]
    summary: str

    def resolve(self, steps: int, spacing: SpacingSetting) -> tuple[int | None, Spacing]:
        """(steps, spacing) for one call: steps 0 and spacing "auto" mean this sampler's defaults."""
        return (steps or self.steps), (self.spacing if spacing == "auto" else spacing)


SAMPLERS: dict[str, SamplerSpec] = {
    "ancestral": SamplerSpec(ancestral, None, "uniform", ("variance",), "Algorithm 4.2"),
    "ddim": SamplerSpec(ddim, 50, "uniform", ("eta",), "Song et al."),
    "dpm++": SamplerSpec(dpm_solver_pp_2m, 20, "logsnr", (), "DPM-Solver++(2M)"),
    "heun": SamplerSpec(heun, 18, "karras", (), "Karras et al. Algorithm 1"),
    "euler-ancestral": SamplerSpec(euler_ancestral, 50, "karras", (), "Karras et al.'s variables"),
}
if TYPE_CHECKING:
    SamplerName = str
else:
    SamplerName = Literal[tuple(SAMPLERS)]   # the registry's names, for option fields (one definition)


def get_spec(name: str) -> SamplerSpec:
    """The registry's entry for sampler `name`; ConfigError listing the names otherwise."""
    if name not in SAMPLERS:
        raise choice_error("sampler", name, SAMPLERS)
    return SAMPLERS[name]


def get_sampler(name: str) -> Callable:
    """The sampler function of `name`, one of SAMPLERS."""
    return get_spec(name).fn


def describe_samplers() -> str:
    """'ancestral (Algorithm 4.2), ddim (Song et al.), ...': the names with what each one is."""
    return ", ".join(f"{name} ({spec.summary})" for name, spec in SAMPLERS.items())


def describe_default_steps() -> str:
    """'T for ancestral, 50 for ddim, ...': each sampler's default number of visited levels."""
    return ", ".join(f"{'T' if spec.steps is None else spec.steps} for {name}" for name, spec in SAMPLERS.items())


def describe_default_spacings() -> str:
    """'uniform for ancestral/ddim, logsnr for dpm++, ...': the samplers grouped by default spacing."""
    groups: dict[str, list[str]] = {}
    for name, spec in SAMPLERS.items():
        groups.setdefault(spec.spacing, []).append(name)
    return ", ".join(f"{spacing} for {'/'.join(names)}" for spacing, names in groups.items())
