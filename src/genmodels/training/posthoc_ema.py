"""Power-function EMA and its post-hoc reconstruction (Karras et al. 2024, "Analyzing and Improving
the Training Dynamics of Diffusion Models", sec. 3 and appendix C).

The power-function EMA of the weights theta(1), theta(2), ... is

    theta_hat(t) = beta(t) theta_hat(t - 1) + (1 - beta(t)) theta(t),   beta(t) = (1 - 1/t)^(gamma + 1)

(their eq. 2), which weights step tau of the first t by exactly

    w_t(tau) = (tau^(gamma + 1) - (tau - 1)^(gamma + 1)) / t^(gamma + 1),   tau = 1..t,

the integral over [tau - 1, tau] of the profile (gamma + 1) tau^gamma / t^(gamma + 1): its length grows
with training, and its relative width sigma_rel = sqrt(gamma + 1) / ((gamma + 2) sqrt(gamma + 3)) (their
eq. 3) names it. Keeping two such averages (sigma_rel 0.05 and 0.10 in the paper) and storing them
every few steps is enough to rebuild, after training, the average of any other sigma_rel at any stored
step: the stored averages are linear in theta, so the one whose weights w come nearest (least
squares) to the target's weights is a linear combination of them (their appendix C.3; here the
inner products are the exact sums over steps of the discrete weights above).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch


def sigma_rel_to_gamma(sigma_rel: float) -> float:
    """The exponent gamma of a profile of relative width sigma_rel (Karras et al. 2024, eq. 3 solved:
    gamma^3 + 7 gamma^2 + (16 - 1/sigma_rel^2) gamma + 12 - 1/sigma_rel^2 = 0, its largest real root)."""
    if not 0.0 < sigma_rel < 0.2886:       # gamma -> 0 gives sigma_rel = 1 / sqrt(12) (a uniform average)
        raise ValueError(f"sigma_rel must be in (0, 0.2886), got {sigma_rel}")
    k = sigma_rel**-2
    roots = np.roots([1.0, 7.0, 16.0 - k, 12.0 - k])
    return float(max(r.real for r in roots if abs(r.imag) < 1e-9))


def gamma_to_sigma_rel(gamma: float) -> float:
    """Relative width of the profile tau^gamma (Karras et al. 2024, eq. 3)."""
    return math.sqrt(gamma + 1.0) / ((gamma + 2.0) * math.sqrt(gamma + 3.0))


def beta(step: int, gamma: float) -> float:
    """The decay (1 - 1/t)^(gamma + 1) at step t >= 1 (0 at t = 1: the average starts at theta(1))."""
    return (1.0 - 1.0 / step) ** (gamma + 1.0)


def profile_weights(step: int, gamma: float, length: int) -> np.ndarray:
    """w_t(tau) for tau = 1..length (zero after t), float64 (length,)."""
    tau = np.arange(1, length + 1, dtype=np.float64)
    w = (tau ** (gamma + 1.0) - (tau - 1.0) ** (gamma + 1.0)) / float(step) ** (gamma + 1.0)
    w[tau > step] = 0.0
    return w


def solve_weights(snapshots: Sequence[tuple[int, float]], step: int, sigma_rel: float) -> np.ndarray:
    """Coefficients x (len(snapshots),) such that sum_i x_i theta_hat_i is the least-squares nearest
    average to the power-function EMA of `sigma_rel` at `step`, for snapshots given as (step_i, gamma_i)."""
    if not snapshots:
        raise ValueError("post-hoc EMA needs at least one stored average")
    length = max(step, *(s for s, _ in snapshots))
    basis = np.stack([profile_weights(s, g, length) for s, g in snapshots])         # (K, length)
    target = profile_weights(step, sigma_rel_to_gamma(sigma_rel), length)
    gram = basis @ basis.T
    x, *_ = np.linalg.lstsq(gram, basis @ target, rcond=None)
    return x


def reconstruction_error(snapshots: Sequence[tuple[int, float]], step: int, sigma_rel: float) -> float:
    """|| sum_i x_i w_i - w_target || / || w_target ||: how closely the stored averages span the target."""
    length = max(step, *(s for s, _ in snapshots))
    basis = np.stack([profile_weights(s, g, length) for s, g in snapshots])
    target = profile_weights(step, sigma_rel_to_gamma(sigma_rel), length)
    x = solve_weights(snapshots, step, sigma_rel)
    return float(np.linalg.norm(x @ basis - target) / np.linalg.norm(target))


class PowerEMA:
    """Power-function EMAs of a set of tensors, one per sigma_rel. `update(step, tensors)` after each
    optimiser step (step counts from 1); `averages[sigma_rel]` holds the current averages, in float32."""

    def __init__(self, sigma_rels: Iterable[float], tensors: Mapping[str, torch.Tensor]):
        self.sigma_rels = tuple(float(s) for s in sigma_rels)
        self.gammas = {s: sigma_rel_to_gamma(s) for s in self.sigma_rels}
        self.averages = {s: {k: v.detach().float().clone() for k, v in tensors.items()} for s in self.sigma_rels}

    @torch.no_grad()
    def update(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:  # noqa: D102
        for s, avg in self.averages.items():
            b = beta(step, self.gammas[s])
            for k, v in tensors.items():
                avg[k].lerp_(v.detach().float(), 1.0 - b)


def reconstruct(snapshots: Sequence[tuple[int, float, Mapping[str, torch.Tensor]]], step: int,
                sigma_rel: float) -> dict[str, torch.Tensor]:
    """The post-hoc average of `sigma_rel` at `step` from stored averages (step_i, gamma_i, tensors_i)."""
    x = solve_weights([(s, g) for s, g, _ in snapshots], step, sigma_rel)
    names = snapshots[0][2].keys()
    return {k: sum(float(c) * snap[2][k].double() for c, snap in zip(x, snapshots, strict=True)).float()
            for k in names}
