"""Exact log-likelihood of a DDPM through the probability-flow ODE (Song et al. 2021, "Score-based
generative modeling through stochastic differential equations", sec. 4.3 and Appendix D).

In the variables y = x_t / sqrt(abar_t) and sigma = sqrt((1 - abar_t) / abar_t) (`noise_levels.py`)
the probability-flow ODE of the DDPM's variance-preserving process is

    dy / dsigma = eps_theta(x_t, t(sigma)),   x_t = y / sqrt(1 + sigma^2)

(Song, Meng & Ermon 2021, DDIM eq. 14; docs/ddpm.md, "Three likelihood estimates"), a deterministic,
invertible map from the data y(0) = x_0 to y(sigma_T). The instantaneous change of variables
(Chen et al. 2018; Song et al. eq. 39) gives d log p_sigma(y(sigma)) / dsigma = -div_y eps_theta, so

    log p_0(x_0) = log p_T(y(sigma_T)) + integral_0^{sigma_T} div_y eps_theta(x_t, t(sigma)) dsigma,

with the prior x_T = y(sigma_T) / sqrt(1 + sigma_T^2) ~ N(0, I), that is
log p_T(y) = log N(x_T; 0, I) - D/2 log(1 + sigma_T^2). The result is the log-density of the
ODE's model, which shares eps_theta with the ancestral sampler but is a different model from
p_theta of Theorem 8; it is exact up to the solver's tolerance and, with Hutchinson's estimator,
an unbiased estimate (the integral is linear in the divergence).

Divergence: exact (D backward passes, for low dimension), or Hutchinson's estimate
z^T (d eps_theta / dy) z averaged over a fixed number of probes z (Rademacher or Gaussian) drawn
once from an explicit generator and held fixed along the path, as Song et al. do, so that the ODE
stays one deterministic function for the solver.

eps_theta between the schedule's integer steps: `eps_fn(x_t, t)` is called with fractional steps
t = `noise_levels.step_at(sigma)` (float64 (B,)); the networks take t as a real number. Below
sigma_1, t runs through [0, 1), time inputs slightly below the first trained step (Song et al.
likewise evaluate DDPM networks from t = 1e-5 in continuous time, below their first step).

Solver: scipy.integrate.solve_ivp with RK45 (Dormand-Prince 5(4), adaptive step), the solver and
tolerances (rtol = atol = 1e-5) of Song et al.'s likelihoods. Chosen over torchdiffeq because it is
already a dependency (torchdiffeq would be a new one), evaluation needs no gradients through the
solver (torchdiffeq's adjoint method serves training), and moving the state to the CPU once per
function evaluation costs little next to the network call. The whole batch is one ODE system:
the steps are shared and the error control covers every example.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
import torch

from genmodels.diffusion.gaussian import host_float64
from genmodels.diffusion.noise_levels import sigma_table, step_at
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, GenmodelsError, choice_error

Trace = Literal["auto", "exact", "hutchinson"]
TRACES = typing.get_args(Trace)
Probe = Literal["rademacher", "gaussian"]
PROBES = typing.get_args(Probe)
EXACT_MAX_DIM = 16      # trace="auto" computes the divergence exactly up to this many dimensions


class ODELikelihood(NamedTuple):
    """log_p: (B,) float64, log p_0(x_0) in nats summed over dimensions; nfe: drift evaluations
    (each one network call plus one backward pass per probe, or D for the exact trace)."""

    log_p: torch.Tensor
    nfe: int


def make_probes(shape: tuple[int, ...], probes: int, kind: Probe, generator: torch.Generator | None,
                device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
    """Hutchinson probes z with E[z z^T] = I: (probes, *shape), Rademacher (+-1) or standard Gaussian."""
    if kind == "rademacher":
        return torch.randint(0, 2, (probes, *shape), generator=generator, device=device).to(dtype) * 2 - 1
    if kind == "gaussian":
        return torch.randn((probes, *shape), generator=generator, device=device, dtype=dtype)
    raise choice_error("Hutchinson probe distribution", kind, PROBES)


def divergence(f: torch.Tensor, y: torch.Tensor, probes: torch.Tensor | None) -> torch.Tensor:
    """div_y f per example, (B,): exactly (sum over d of d f_d / d y_d, one backward pass per
    dimension) when probes is None, else Hutchinson's mean over probes z of z^T (df/dy) z. f, y
    (B, ...) with f computed from y per example (no coupling across the batch); probes (P, B, ...).
    Summed in float64 on the host (`host_float64`: no float64 on the model's device)."""
    B = y.shape[0]
    out = torch.zeros(B, dtype=torch.float64)
    if probes is None:
        flat = f.reshape(B, -1)
        for d in range(flat.shape[1]):
            (g,) = torch.autograd.grad(flat[:, d].sum(), y, retain_graph=True, allow_unused=True)
            if g is not None:
                out += host_float64(g.reshape(B, -1)[:, d])
        return out
    for z in probes:
        (g,) = torch.autograd.grad((f * z).sum(), y, retain_graph=True, allow_unused=True)   # z^T df/dy
        if g is not None:
            out += host_float64((g * z).reshape(B, -1).sum(dim=1))
    return out / probes.shape[0]


def integrate_log_density(f: Callable[[torch.Tensor, float], torch.Tensor], x0: torch.Tensor, t_end: float,
                          log_prior: Callable[[torch.Tensor], torch.Tensor], *, trace: Trace = "auto",
                          probes: int = 1, probe: Probe = "rademacher", rtol: float = 1e-5, atol: float = 1e-5,
                          generator: torch.Generator | None = None) -> ODELikelihood:
    """The instantaneous change of variables (Chen et al. 2018, Theorem 1) for an ODE dx/dt = f(x, t)
    from x(0) = x_0 to t_end: d log p_t(x(t)) / dt = -div_x f, so

        log p_0(x_0) = log p_{t_end}(x(t_end)) + integral_0^{t_end} div_x f(x(t), t) dt,

    integrated together with x by RK45 (module docstring), the batch as one system.

    f(x (B, ...) with requires_grad, t float) -> dx/dt (B, ...), computed per example and
    differentiable in x. x0: (B, ...). log_prior(x(t_end) as (B, D) float64 on the CPU) -> (B,),
    the log-density at the end. trace: "exact", "hutchinson" (`probes` probes of kind `probe` from
    `generator`, fixed along the path) or "auto" (exact up to EXACT_MAX_DIM dimensions). rtol, atol:
    the solver's tolerances. The DDPM's probability-flow ODE (`ode_log_likelihood`) and the flow
    family's likelihood (`flow_likelihood.py`) both are this integral."""
    if trace not in TRACES:
        raise choice_error("divergence trace", trace, TRACES)
    if probes < 1:
        raise ConfigError(f"the number of Hutchinson probes must be >= 1, got {probes}")
    if not (rtol > 0 and atol > 0):
        raise ConfigError(f"the ODE solver tolerances must be > 0, got rtol={rtol}, atol={atol}")
    from scipy.integrate import solve_ivp  # lazy: scipy.integrate is slow to import and only this estimate needs it

    B, shape = x0.shape[0], tuple(x0.shape[1:])
    D = math.prod(shape)
    exact = trace == "exact" or (trace == "auto" and D <= EXACT_MAX_DIM)
    z = None if exact else make_probes((B, *shape), probes, probe, generator, x0.device, x0.dtype)

    def drift(t: float, state: np.ndarray) -> np.ndarray:
        x = torch.tensor(state[: B * D]).reshape(B, *shape).to(device=x0.device, dtype=x0.dtype)
        with torch.enable_grad():
            x.requires_grad_(True)
            dx = f(x, t)
            div = divergence(dx, x, z)                                           # -d log p / dt
        return np.concatenate([dx.detach().float().reshape(-1).cpu().numpy().astype(np.float64),
                               div.numpy()])                             # div: float64 on the host already

    start = np.concatenate([x0.detach().float().reshape(-1).cpu().numpy().astype(np.float64), np.zeros(B)])
    sol = solve_ivp(drift, (0.0, t_end), start, method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise GenmodelsError(f"the ODE solver of the log-likelihood failed: {sol.message}")
    end = torch.from_numpy(sol.y[:, -1])
    x_end, integral = end[: B * D].reshape(B, D), end[B * D:]
    return ODELikelihood(log_p=log_prior(x_end) + integral, nfe=int(sol.nfev))     # float64, on the host


def standard_normal_log_density(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I) summed over the last dimension: (B, D) -> (B,)."""
    return (-0.5 * (x**2 + math.log(2 * math.pi))).sum(dim=1)


def ode_log_likelihood(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sched: NoiseSchedule,
                       x0: torch.Tensor, *, trace: Trace = "auto", probes: int = 1, probe: Probe = "rademacher",
                       rtol: float = 1e-5, atol: float = 1e-5,
                       generator: torch.Generator | None = None) -> ODELikelihood:
    """log p_0(x_0) of the probability-flow ODE's model, per example (module docstring).

    eps_fn(x_t (B, ...), t (B,) float64 fractional steps in [0, T] on the host) -> eps_theta (B, ...),
    differentiable in x_t. x0: (B, ...) points in the model's space (for 8-bit images, already
    dequantised). trace: "exact", "hutchinson" (`probes` probes of kind `probe` from `generator`)
    or "auto" (exact up to EXACT_MAX_DIM dimensions). rtol, atol: the solver's tolerances."""
    B, D = x0.shape[0], x0[0].numel()
    sigma_max = float(sigma_table(sched)[-1])

    def dy_dsigma(y: torch.Tensor, sigma: float) -> torch.Tensor:
        t = step_at(sched, torch.full((B,), sigma, dtype=torch.float64))        # float64, on the host
        return eps_fn(y / math.sqrt(1.0 + sigma**2), t)                         # dy/dsigma (DDIM eq. 14)

    def log_prior(y_T: torch.Tensor) -> torch.Tensor:                           # x_T = y_T / sqrt(1 + sigma_T^2)
        x_T = y_T / math.sqrt(1.0 + sigma_max**2)
        return standard_normal_log_density(x_T) - 0.5 * D * math.log1p(sigma_max**2)

    return integrate_log_density(dy_dsigma, x0, sigma_max, log_prior, trace=trace, probes=probes, probe=probe,
                                 rtol=rtol, atol=atol, generator=generator)


def dequantise(x0: torch.Tensor, generator: torch.Generator | None, bin_width: float = 2.0 / 255.0) -> torch.Tensor:
    """Uniform dequantisation of 8-bit images in [-1, 1]: x_0 + u, u ~ U(-w/2, w/2) per pixel, w the
    width of the bins of Ho et al.'s discretised decoder (2/255). Then
    log P(x_0) >= E_u[log p(x_0 + u)] + D log w (Jensen), see `dequantised_bits_per_dim`."""
    u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return x0 + (u - 0.5) * bin_width


def dequantised_bits_per_dim(log_p: torch.Tensor, dim: int, bin_width: float = 2.0 / 255.0) -> torch.Tensor:
    """-(log p(x_0 + u) + D log w) / (D ln 2): bits/dim of the discrete data, an upper bound on
    -log2 P(x_0) / D in expectation over u (Theis et al. 2016; docs/ddpm.md,
    "Three likelihood estimates"). log_p (B,) nats -> (B,)."""
    return -(log_p + dim * math.log(bin_width)) / (dim * math.log(2.0))
