"""The model probability of seed section 4.1.3 by importance sampling (seed eq. 4.8):

    p_theta(x_0) = E_{x_{1:T} ~ q(. | x_0)} [ p(x_T) prod_{t=1}^T p_theta(x_{t-1} | x_t) / q(x_t | x_{t-1}) ],

estimated with K forward trajectories as log (1/K) sum_k w_k computed by log-sum-exp. By Jensen
(and Burda et al. 2015) its expectation is a lower bound of log p_theta(x_0) that rises with K
and converges to it; K = 1 is minus the integrand of L in eq. 4.9.

eps_fn(x_t, t) -> eps_theta is the noise predictor ((B, ...), (B,) int64 1-based -> (B, ...)); a
network that learns its variance returns (eps_theta, v) and is used with variance = "learned".
Densities are summed over the data dimensions; results are per example, in nats.
"""

from __future__ import annotations

import math

import torch

from genmodels.diffusion.gaussian import (
    Variance,
    discretized_gaussian_log_likelihood,
    gaussian_log_prob,
    host_float64,
    p_mean_var,
    q_step_mean_var,
    split_model_output,
)
from genmodels.diffusion.losses import Decoder
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, choice_error


def _sum_flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).sum(dim=1)


@torch.no_grad()
def trajectory_log_weight(eps_fn, sched: NoiseSchedule, x0: torch.Tensor, *, variance: Variance = "beta",
                          decoder: Decoder = "gaussian", generator: torch.Generator | None = None) -> torch.Tensor:
    """log w = log p(x_T) + sum_t [log p_theta(x_{t-1} | x_t) - log q(x_t | x_{t-1})] along one
    forward trajectory x_1, ..., x_T ~ q(. | x_0) per example (the integrand of eq. 4.8, and
    minus the integrand of eq. 4.9). x0 (B, ...) -> (B,) nats. The t = 1 factor p_theta(x_0 | x_1)
    uses the discretised Gaussian decoder (images on the 8-bit grid; then w estimates a
    probability mass) or a continuous Gaussian density (`decoder="gaussian"`)."""
    if decoder not in ("discretized", "gaussian"):
        raise choice_error("decoder", decoder, ("discretized", "gaussian"))
    log_w = torch.zeros(x0.shape[0], dtype=torch.float64)      # on the host (host_float64)
    x_prev = x0
    for t_int in range(1, sched.T + 1):
        t = torch.full((x0.shape[0],), t_int, dtype=torch.long, device=x0.device)
        q_mean, q_var = q_step_mean_var(sched, x_prev, t)                        # seed 4.1.1
        x_t = q_mean + q_var.sqrt() * torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        log_w -= host_float64(_sum_flat(gaussian_log_prob(x_t, q_mean, torch.log(q_var))))
        eps_theta, v = split_model_output(eps_fn(x_t, t))
        p_mean, _, p_logvar = p_mean_var(sched, eps_theta, x_t, t, variance, v=v)  # Remark 7 / N&D eq. 15
        if t_int == 1 and decoder == "discretized":
            log_w += host_float64(_sum_flat(discretized_gaussian_log_likelihood(x_prev, p_mean, 0.5 * p_logvar)))
        else:
            log_w += host_float64(_sum_flat(gaussian_log_prob(x_prev, p_mean, p_logvar)))
        x_prev = x_t
    log_w += host_float64(_sum_flat(gaussian_log_prob(x_prev, torch.zeros_like(x_prev), torch.zeros_like(x_prev))))
    return log_w


@torch.no_grad()
def log_likelihood_is(eps_fn, sched: NoiseSchedule, x0: torch.Tensor, *, num_trajectories: int,
                      variance: Variance = "beta", decoder: Decoder = "gaussian",
                      generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
    """Seed eq. 4.8 by importance sampling over K = num_trajectories forward trajectories:
    log p_theta(x_0) ~= logsumexp_k log w_k - log K. x0 (B, ...) -> (B,) float64 nats.
    Trajectories are drawn `chunk` at a time per example (batch B * chunk)."""
    if num_trajectories < 1:
        raise ConfigError(f"num_trajectories must be >= 1, got {num_trajectories}")
    B = x0.shape[0]
    log_ws = []
    done = 0
    while done < num_trajectories:
        k = min(chunk, num_trajectories - done)
        xk = x0.repeat_interleave(k, dim=0)                                  # (B*k, ...)
        lw = trajectory_log_weight(eps_fn, sched, xk, variance=variance, decoder=decoder, generator=generator)
        log_ws.append(lw.reshape(B, k))
        done += k
    log_w = torch.cat(log_ws, dim=1)                                          # (B, K)
    return torch.logsumexp(log_w, dim=1) - math.log(num_trajectories)
