"""Closed forms for data x_0 ~ N(m, s^2) (each dimension independent), where a DDPM with the
optimal noise predictor is linear-Gaussian end to end, so every quantity of seed section 4 is
exact: used to test the bound (Theorem 8), the eq. 4.8 estimate and the samplers.

With x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, V_t = abar_t s^2 + 1 - abar_t = Var(x_t) and
the L_simple-optimal predictor is E[eps | x_t] = sqrt(1 - abar_t) / V_t (x_t - sqrt(abar_t) m),
linear in x_t. Then mu_theta (seed eq. 4.3) = A_t x_t + c_t, every reverse kernel is
N(A_t x_t + c_t, sigma_t^2), and the model's x_0-marginal is Gaussian (continuous Gaussian
decoder at t = 1). m, s are Python floats; x0 any shape; results elementwise, float64, nats.
With variance="learned", v (a float or a (T,) tensor, the same for every x_t) sets the learned
Sigma_t = exp(v log beta_t + (1 - v) log beta~_t) of Nichol & Dhariwal's eq. 15.

The probability-flow ODE (`ode_likelihood.py`) with the exact eps at every noise level sigma is
linear too: y(sigma) = m + (y(0) - m) sqrt((s^2 + sigma^2) / s^2) in y = x_t / sqrt(abar_t), so its
model density is also known in closed form (`ode_exact_log_likelihood`).
"""

from __future__ import annotations

import math

import torch

from genmodels.diffusion.gaussian import Variance, reverse_variance
from genmodels.diffusion.noise_levels import sigma_at, sigma_table
from genmodels.diffusion.schedule import NoiseSchedule


def optimal_eps_fn(sched: NoiseSchedule, m: float, s: float):
    """denoise(x_t, t) -> E[eps | x_t] for N(m, s^2) data: the minimiser of L_simple (Algorithm 4.1).
    x_t (B, ...), t (B,) int64 1-based -> (B, ...) in x_t's dtype."""
    ab = sched.alpha_bar
    gain = (1.0 - ab).sqrt() / (ab * s**2 + 1.0 - ab)

    def denoise(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (xt.dim() - 1)
        g = gain[t.cpu() - 1].to(xt).reshape(shape)
        sa = ab[t.cpu() - 1].sqrt().to(xt).reshape(shape)
        return g * (xt - sa * m)

    return denoise


def with_learned_v(eps_fn, v: float):
    """The denoiser eps_fn made into one that also returns a constant variance interpolation v
    (Nichol & Dhariwal eq. 15): denoise(x_t, t) -> (eps_theta, v), v shaped like eps_theta."""

    def denoise(xt: torch.Tensor, t: torch.Tensor):
        eps = eps_fn(xt, t)
        return eps, torch.full_like(eps, v)

    return denoise


def optimal_eps_at(sched: NoiseSchedule, m: float, s: float):
    """denoise(x_t, t) -> E[eps | x_t] for N(m, s^2) data at fractional steps t (float (B,)), with
    sigma = `noise_levels.sigma_at(t)`: in y = x_t sqrt(1 + sigma^2), E[eps | y] = sigma (y - m) / (s^2 + sigma^2)
    (the same as `optimal_eps_fn` at integer t). Differentiable in x_t; for the probability-flow ODE."""

    def denoise(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = sigma_at(sched, t).to(xt).reshape(-1, *([1] * (xt.dim() - 1)))
        return sigma * (xt * (1.0 + sigma**2).sqrt() - m) / (s**2 + sigma**2)

    return denoise


def ode_exact_log_likelihood(sched: NoiseSchedule, m: float, s: float, x0: torch.Tensor) -> torch.Tensor:
    """log p_0(x_0) of the probability-flow ODE's model with the exact eps for N(m, s^2) data and the
    prior x_T ~ N(0, 1): the flow y(sigma_T) = m + (x_0 - m) sqrt((s^2 + sigma_T^2) / s^2),
    x_T = y / sqrt(1 + sigma_T^2), log p = log N(x_T; 0, 1) + log(dx_T / dx_0). Elementwise, float64
    nats (exactly log N(x_0; m, s^2) only if q(x_T) were N(0, 1); the prior mismatch is of order abar_T)."""
    sigma2 = float(sigma_table(sched)[-1]) ** 2
    gain = math.sqrt((s**2 + sigma2) / s**2) / math.sqrt(1.0 + sigma2)             # dx_T / dx_0
    x_T = (m + (x0.double() - m) * math.sqrt((s**2 + sigma2) / s**2)) / math.sqrt(1.0 + sigma2)
    return -0.5 * (x_T**2 + math.log(2 * math.pi)) + math.log(gain)


def reverse_coefficients(sched: NoiseSchedule, m: float, s: float, variance: Variance = "beta",
                         v: float | torch.Tensor | None = None):
    """(A, c, sigma2), each (T,) float64 with index t-1 for step t: the optimal reverse kernel is
    p_theta(x_{t-1} | x_t) = N(A_t x_t + c_t, sigma2_t), from seed eq. 4.3 and Remark 7 (or the
    learned Sigma_t of v, variance="learned")."""
    ab, beta, alpha = sched.alpha_bar, sched.beta, sched.alpha
    V = ab * s**2 + 1.0 - ab
    # (x_t - beta_t / sqrt(1 - abar_t) * gain (x_t - sqrt(abar_t) m)) / sqrt(alpha_t)
    A = (1.0 - beta / V) / alpha.sqrt()
    c = beta * ab.sqrt() * m / (V * alpha.sqrt())
    ts = torch.arange(1, sched.T + 1)
    v_t = None if v is None else torch.as_tensor(v, dtype=torch.float64).expand(sched.T)
    sigma2 = reverse_variance(sched, ts, torch.zeros(sched.T, dtype=torch.float64), variance, v_t)[0].reshape(-1)
    return A, c, sigma2


def model_marginal(sched: NoiseSchedule, m: float, s: float, variance: Variance = "beta",
                   v: float | torch.Tensor | None = None):
    """(mean, variance) of the model's x_0 under p(x_T) prod_t p_theta(x_{t-1} | x_t) (seed eq. 4.2),
    by the recursion m_{t-1} = A_t m_t + c_t, v_{t-1} = A_t^2 v_t + sigma2_t from m_T = 0, v_T = 1."""
    A, c, sigma2 = reverse_coefficients(sched, m, s, variance, v)
    mean, var = 0.0, 1.0
    for i in range(sched.T - 1, -1, -1):
        mean = float(A[i]) * mean + float(c[i])
        var = float(A[i]) ** 2 * var + float(sigma2[i])
    return mean, var


def exact_log_likelihood(sched: NoiseSchedule, m: float, s: float, x0: torch.Tensor,
                         variance: Variance = "beta", v: float | torch.Tensor | None = None) -> torch.Tensor:
    """log p_theta(x_0) of the optimal model (seed eq. 4.4, exactly), elementwise, float64 nats."""
    mean, var = model_marginal(sched, m, s, variance, v)
    x = x0.double()
    return -0.5 * (math.log(2 * math.pi * var) + (x - mean) ** 2 / var)


def exact_bound_terms(sched: NoiseSchedule, m: float, s: float, x0: torch.Tensor,
                      variance: Variance = "beta", v: float | torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The terms of Theorem 8 (eq. 4.10) for the optimal model with every expectation over
    x_t ~ q(x_t | x_0) done in closed form: "L_T", "L_1:T-1", "L_0", "total", elementwise, float64 nats.
    L_{t-1} = 1/2 [log(sigma2/beta~) + beta~/sigma2 + E(mu~ - mu_theta)^2 / sigma2 - 1], with
    mu~ - mu_theta = (Q_t - A_t) x_t + P_t x_0 - c_t and x_t ~ N(sqrt(abar_t) x_0, 1 - abar_t)."""
    x = x0.double()
    A, c, sigma2 = reverse_coefficients(sched, m, s, variance, v)
    ab, P, Q, bt = sched.alpha_bar, sched.posterior_coef_x0, sched.posterior_coef_xt, sched.beta_tilde
    L_T = 0.5 * (ab[-1] * x**2 + (1.0 - ab[-1]) - torch.log(1.0 - ab[-1]) - 1.0)
    mid = torch.zeros_like(x)
    for i in range(1, sched.T):                       # steps t = i + 1 = 2..T
        d_mean = ((Q[i] - A[i]) * ab[i].sqrt() + P[i]) * x - c[i]
        d_sq = d_mean**2 + (Q[i] - A[i]) ** 2 * (1.0 - ab[i])
        mid += 0.5 * (torch.log(sigma2[i] / bt[i]) + bt[i] / sigma2[i] + d_sq / sigma2[i] - 1.0)
    r_mean = x - A[0] * ab[0].sqrt() * x - c[0]
    L_0 = 0.5 * torch.log(2 * math.pi * sigma2[0]) + (r_mean**2 + A[0] ** 2 * (1.0 - ab[0])) / (2 * sigma2[0])
    return {"L_T": L_T, "L_1:T-1": mid, "L_0": L_0, "total": L_T + mid + L_0}
