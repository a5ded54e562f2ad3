"""Conditioning a trained unconditional DDPM on an image: inpainting (RePaint) and image-to-image (SDEdit).

Both are stateless functions in the samplers' style (`samplers.py`): they take the noise
predictor denoise(x_t, t) -> eps_theta (or (eps_theta, v)), the schedule and an explicit
`torch.Generator`, and return x_0 (B, C, H, W). Nothing is trained: the known image enters only
through draws from the forward process q.

- `repaint`: Lugmayr et al. (2022), "RePaint: Inpainting using Denoising Diffusion Probabilistic
  Models", Algorithm 1 with the jump schedule of their section 4.2 (`repaint_schedule`).
- `sdedit`: Meng et al. (2022), "SDEdit: Guided Image Synthesis and Editing with Stochastic
  Differential Equations": noise the image to t0 = round(S T) with q(x_t0 | x_0), then run any
  sampler from t0 to 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from genmodels.diffusion.gaussian import (
    Variance,
    p_mean_var,
    predict_x0_from_eps,
    q_sample,
    q_step_mean_var,
    split_model_output,
)
from genmodels.diffusion.samplers import Denoiser, Spacing, _full, respaced_schedule, timestep_sequence
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, DataError


def check_known(x_known: torch.Tensor, mask: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate an inpainting problem for images of `shape` (C, H, W): x_known (B, C, H, W) in
    [-1, 1]; mask (B or 1, 1 or C, H, W) with values 0 (fill) and 1 (keep, known). Returns
    (x_known float, mask bool). DataError (one line) on a wrong shape or value."""
    C, H, W = shape
    if x_known.dim() != 4 or tuple(x_known.shape[1:]) != (C, H, W):
        raise DataError(f"inpainting: the known images must have shape (B, {C}, {H}, {W}), got {tuple(x_known.shape)}")
    if mask.dim() != 4 or mask.shape[0] not in (1, x_known.shape[0]) or mask.shape[1] not in (1, C) \
            or tuple(mask.shape[2:]) != (H, W):
        raise DataError(f"inpainting: the mask must have shape ({x_known.shape[0]} or 1, 1 or {C}, {H}, {W}), "
                        f"got {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise DataError("inpainting: the mask must hold only 0 (fill) and 1 (keep)")
    x_known = x_known.float()
    if not bool(torch.isfinite(x_known).all()) or float(x_known.abs().max()) > 1.0:
        raise DataError("inpainting: the known images must be finite and in [-1, 1]")
    return x_known, mask.bool()


def repaint_schedule(K: int, jump_length: int, resample: int) -> list[int]:
    """The steps RePaint visits on a chain of K steps, K -> ... -> 0 (Lugmayr et al. 2022, sec. 4.2):
    going down one step at a time, at every step t = j, 2j, ... with t + j <= K it jumps back up
    j steps (j forward kernels q(x_{t+1} | x_t)) and comes down again, r - 1 times at each such t.
    Each -1 move is one reverse step (one network call), each +1 move one forward step.
    j = 1 is their Algorithm 1 with U = r resamplings per step; r = 1 is plain ancestral sampling."""
    if jump_length < 1 or resample < 1:
        raise ConfigError(f"RePaint needs jump_length >= 1 and resample >= 1, got {jump_length} and {resample}")
    jumps_left = {t: resample - 1 for t in range(jump_length, K - jump_length + 1, jump_length)}
    t, visited = K, [K]
    while t > 0:
        t -= 1
        visited.append(t)
        if jumps_left.get(t, 0) > 0:                 # sec. 4.2: jump back j steps, r - 1 times per position
            jumps_left[t] -= 1
            for _ in range(jump_length):
                t += 1
                visited.append(t)
    return visited


@torch.no_grad()
def repaint(denoise: Denoiser, x_T: torch.Tensor, sched: NoiseSchedule, x_known: torch.Tensor, mask: torch.Tensor,
            *, steps: int | None = None, generator: torch.Generator | None = None, clip_x0: bool = False,
            callback: Callable | None = None, spacing: Spacing = "uniform", variance: Variance = "beta",
            jump_length: int = 10, resample: int = 10) -> torch.Tensor:
    """RePaint (Lugmayr et al. 2022, Algorithm 1 with the jump schedule of sec. 4.2).

    x_T (B, C, H, W) ~ N(0, I); x_known (B or 1, C, H, W) the image whose known pixels are kept;
    mask (B or 1, 1 or C, H, W) bool or {0, 1}, 1 = known (keep), 0 = unknown (fill). On each
    reverse step i -> i - 1 of the chain (all T steps, or the respaced sub-chain of `steps` levels
    as in `samplers.ancestral`):
        x_{i-1}^known   = sqrt(abar_{i-1}) x_0 + sqrt(1 - abar_{i-1}) z,  a draw of q(x_{i-1} | x_0)  (Alg. 1, line 5)
        x_{i-1}^unknown = mu_theta(x_i, i) + sigma_i z                                        (line 7, seed eq. 4.3)
        x_{i-1} = m * x^known + (1 - m) * x^unknown                                           (line 8)
    z ~ N(0, I) for i > 1, none at the last step (x_0^known = x_0). One z serves both terms: they
    are read at disjoint pixels, so the noise stays independent, and with an all-zero mask and
    r = 1 the draws are those of `samplers.ancestral`, one for one. The resampling moves of
    `repaint_schedule` go back up with the forward kernel q(x_i | x_{i-1}) = N(sqrt(1 - beta_i)
    x_{i-1}, beta_i I) (line 10; the paper's beta_{t-1} there is this beta_i). The known pixels
    of the result equal x_known exactly. About r K network calls (K = steps)."""
    keep = mask.to(torch.bool)
    x0 = x_known.to(x_T.dtype).expand_as(x_T)
    taus = timestep_sequence(sched, steps, spacing)
    sub = sched if len(taus) == sched.T + 1 else respaced_schedule(sched, taus)
    K = len(taus) - 1
    x = x_T
    path = repaint_schedule(K, jump_length, resample)
    for i, nxt in itertools.pairwise(path):
        if nxt == i + 1:                                            # resampling: forward kernel q(x_{i+1} | x_i)
            mean, var = q_step_mean_var(sub, x, _full(x, nxt))
            x = mean + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            continue
        t = taus[K - i]                                             # the network's step for sub-chain step i
        eps, v = split_model_output(denoise(x, _full(x, t)))
        if callback is not None:
            callback(i, t, x, predict_x0_from_eps(sched, x, _full(x, t), eps))
        mean, var, _ = p_mean_var(sub, eps, x, _full(x, i), variance, clip_x0, v)    # seed eq. 4.3
        if i > 1:
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            unknown = mean + var.sqrt() * z                                           # Alg. 1, line 7
            known = q_sample(sub, x0, _full(x, i - 1), z)                            # line 5: q(x_{i-1} | x_0)
        else:
            unknown, known = mean, x0
        x = torch.where(keep, known, unknown)                                        # line 8
    return x


def sdedit_t0(sched: NoiseSchedule, strength: float) -> int:
    """SDEdit's starting step t0 = round(S T) (Meng et al. 2022, their t0 in [0, 1] times T), S in [0, 1]."""
    if not 0.0 <= strength <= 1.0 or math.isnan(strength):
        raise ConfigError(f"SDEdit strength must lie in [0, 1] (0 = return the image, 1 = start from T), "
                          f"got {strength}")
    return int(math.floor(strength * sched.T + 0.5))


def truncated_schedule(sched: NoiseSchedule, t0: int) -> NoiseSchedule:
    """The schedule of the first t0 steps, beta_1..beta_t0: the same abar_t for t <= t0, so that any
    sampler run on it starts at step t0 and calls the network at the original steps."""
    return sched if t0 == sched.T else NoiseSchedule.from_betas(sched.beta[:t0])


@torch.no_grad()
def sdedit(sampler: Callable, denoise: Denoiser, x0: torch.Tensor, sched: NoiseSchedule, strength: float, *,
           steps: int | None = None, generator: torch.Generator | None = None, **extra) -> torch.Tensor:
    """SDEdit (Meng et al. 2022, Algorithm 1 for VP models): x_t0 = sqrt(abar_t0) x_0 + sqrt(1 - abar_t0) eps,
    a draw of q(x_t0 | x_0) with t0 = round(S T), then x_0' = sampler(x_t0) from t0 down to 0.

    sampler: one of `samplers.SAMPLERS` (its keyword options in **extra); x0 (B, ...) the guide
    image in model space; steps: the sampler's visited levels in [t0, 0] (capped at t0; None = its
    default, or all t0 for ancestral). S = 0 returns x0 unchanged (no draw); S = 1 is the sampler
    started from q(x_T | x_0) instead of N(0, I). Returns (B, ...)."""
    t0 = sdedit_t0(sched, strength)
    if t0 == 0:
        return x0.clone()
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t0 = q_sample(sched, x0, _full(x0, t0), eps)                       # q(x_t0 | x_0), seed 4.1.1
    if steps is not None:
        extra["steps"] = min(int(steps), t0)
    return sampler(denoise, x_t0, truncated_schedule(sched, t0), generator=generator, **extra)
