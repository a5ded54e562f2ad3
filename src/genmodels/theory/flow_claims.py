"""Flow matching on the linear path x_t = (1 - t) x_0 + t eps (`diffusion.flow`), checked where the
optimal velocity v*(x, t) = E[eps - x_0 | x_t = x] is known in closed form:

- Gaussian data N(m, s^2): v*(x, t) = -m + (t - (1 - t) s^2) / sigma_t^2 (x - (1 - t) m) with
  sigma_t^2 = (1 - t)^2 s^2 + t^2 (`flow.gaussian_velocity`). The ODE dx/dt = v* started from
  N(0, 1) at t = 1 has the path's marginal N((1 - t) m, sigma_t^2) at every t (Liu et al. 2023,
  Theorem 3.3; Lipman et al. 2023, Theorem 1), and the exact log-likelihood of that ODE
  (`flow.flow_log_likelihood`) is log N(x; m, s^2); a small network trained by the library's
  flow-matching loss learns v*.
- A 2-D Gaussian mixture: the exact v* from the mixture's posterior over components
  (`flow.mixture_velocity`) transports N(0, I) to the mixture: the ODE's log-density of points
  drawn from the mixture equals the mixture's own log-density.

Each check takes the library's functions as parameters, so that a broken formula fails its line.
"""

from __future__ import annotations

import math

import torch

from genmodels.diffusion.flow import (
    draw_times,
    flow_log_likelihood,
    flow_matching_loss,
    gaussian_marginal,
    gaussian_velocity,
    mixture_velocity,
    path_point,
)
from genmodels.diffusion.flow_samplers import heun
from genmodels.nets.denoiser_mlp import DenoiserMLP
from genmodels.theory.check import Check

GAUSSIAN_DATA = (0.5, 0.8)                   # x_0 ~ N(m, s^2)
MIXTURE = {"weights": (0.4, 0.3, 0.3), "means": ((-1.0, -0.5), (1.0, -0.5), (0.0, 1.0)), "stds": (0.3, 0.2, 0.25)}
Z_TOL = 4.0                                  # agreement within 4 standard errors
TIMES = (0.75, 0.5, 0.25, 0.0)               # where the ODE's marginal is compared with the path's


def check_gaussian_marginals(velocity_fn=gaussian_velocity, sampler=heun, *,
                             data: tuple[float, float] = GAUSSIAN_DATA, n: int = 20000, steps: int = 200,
                             seed: int = 0) -> Check:
    """The ODE dx/dt = v*(x, t) with the closed-form field, from n draws of N(0, 1) at t = 1 (Heun,
    `steps` uniform steps), has the path's marginal N((1 - t) m, (1 - t)^2 s^2 + t^2) at each t of
    TIMES: mean and variance compared in standard errors (the same draws at every t). Value: the
    largest |z|."""
    m, s = data
    g = torch.Generator().manual_seed(seed)
    x_1 = torch.randn(n, 1, generator=g, dtype=torch.float64)
    seen: dict[float, torch.Tensor] = {}

    def record(i, t, x, v):
        seen[round(t, 6)] = x.clone()

    x_0 = sampler(lambda x, t: velocity_fn(x, t, m, s), x_1, steps=steps, callback=record)
    seen[0.0] = x_0
    details, z_max = {}, 0.0
    for t in TIMES:
        x = seen[round(t, 6)]
        mean, var = gaussian_marginal(t, m, s)
        z_mean = (float(x.mean()) - mean) / math.sqrt(var / n)
        z_var = (float(x.var()) - var) / (var * math.sqrt(2.0 / (n - 1)))
        details[f"t = {t:g}"] = {"mean": float(x.mean()), "path mean": mean, "var": float(x.var()), "path var": var,
                                 "z mean": z_mean, "z var": z_var}
        z_max = max(z_max, abs(z_mean), abs(z_var))
    return Check("Flow matching, the ODE's marginals (Liu et al. Thm 3.3)",
                 f"dx/dt = v*(x, t) for N({m:g}, {s:g}^2) data from N(0, 1) at t = 1 (Heun, {steps} steps, "
                 f"n = {n}): mean and variance of x_t vs N((1-t) m, (1-t)^2 s^2 + t^2) at t = "
                 f"{', '.join(f'{t:g}' for t in TIMES)}; max |z|",
                 z_max, f"< {Z_TOL:g} s.e.", Z_TOL, z_max < Z_TOL, details=details)


def check_gaussian_likelihood(velocity_fn=gaussian_velocity, likelihood_fn=flow_log_likelihood, *,
                              data: tuple[float, float] = GAUSSIAN_DATA, n: int = 64, tol: float = 1e-4,
                              seed: int = 0) -> Check:
    """The instantaneous change of variables along the closed-form field gives the data's own
    density: log p_0(x) by `flow_log_likelihood` (exact trace, RK45 at 1e-7) against log N(x; m, s^2)
    at n points. Value: the largest |difference| in nats."""
    m, s = data
    g = torch.Generator().manual_seed(seed)
    x = m + 1.5 * s * torch.randn(n, 1, generator=g, dtype=torch.float64)
    result = likelihood_fn(lambda y, t: velocity_fn(y, t, m, s), x, trace="exact", rtol=1e-7, atol=1e-7)
    exact = (-0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)).reshape(-1)
    value = float((result.log_p - exact).abs().max())
    return Check("Flow matching, exact likelihood (instantaneous change of variables)",
                 f"log p_0(x) of the ODE with v* for N({m:g}, {s:g}^2) vs log N(x; m, s^2) at {n} points "
                 f"({result.nfe} solver evaluations); max |diff| in nats", value, "0", tol, value <= tol)


def check_trained_field(loss_fn=flow_matching_loss, *, data: tuple[float, float] = GAUSSIAN_DATA,
                        steps: int = 1500, batch: int = 512, tol: float = 0.05, seed: int = 0) -> Check:
    """A small MLP (the library's `DenoiserMLP`, width 64, 2 blocks) trained by Adam on the flow-matching
    loss (`loss_fn`; uniform t) for N(m, s^2) data learns the closed-form v*: the RMS of
    v_theta - v* over x_t drawn from the path at t = 0.05, 0.1, ..., 0.95, relative to the RMS of v*.
    Value: that relative error."""
    m, s = data
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():             # the network's initialisation draws from the global RNG
        torch.manual_seed(seed)
        net = DenoiserMLP(dim=1, width=64, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        x0 = m + s * torch.randn(batch, 1, generator=g)
        eps = torch.randn(batch, 1, generator=g)
        t = draw_times(batch, "uniform", g, "cpu")
        loss = loss_fn(net(path_point(x0, eps, t), t * 1000.0), x0, eps).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    t = torch.arange(0.05, 0.951, 0.05).repeat_interleave(200)
    x_t = path_point(m + s * torch.randn(len(t), 1, generator=g), torch.randn(len(t), 1, generator=g), t)
    with torch.no_grad():
        v_net, v_star = net(x_t, t * 1000.0), gaussian_velocity(x_t, t, m, s)
    value = float((v_net - v_star).pow(2).mean().sqrt() / v_star.pow(2).mean().sqrt())
    return Check("Flow matching, the trained field is E[eps - x_0 | x_t]",
                 f"MLP trained {steps} steps on N({m:g}, {s:g}^2) data vs the closed-form v*(x, t) at x_t from the "
                 "path, t = 0.05..0.95; RMS error / RMS of v*", value, f"< {tol:g}", tol, value < tol)


def check_mixture_transport(velocity_fn=mixture_velocity, likelihood_fn=flow_log_likelihood, *,
                            n: int = 200, tol: float = 1e-4, seed: int = 0) -> Check:
    """The exact velocity of a 2-D Gaussian mixture (MIXTURE) transports N(0, I) at t = 1 to the
    mixture at t = 0: the ODE's log-density (instantaneous change of variables, exact trace, RK45 at
    1e-7) at n points drawn from the mixture equals the mixture's log-density. Value: the mean
    |difference| in nats."""
    w, mu, sd = (torch.tensor(MIXTURE[k], dtype=torch.float64) for k in ("weights", "means", "stds"))
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(w, n, replacement=True, generator=g)
    x = mu[k] + sd[k, None] * torch.randn(n, 2, generator=g, dtype=torch.float64)
    result = likelihood_fn(lambda y, t: velocity_fn(y, t, w, mu, sd), x, trace="exact", rtol=1e-7, atol=1e-7)
    comp = torch.log(w) - ((x[:, None] - mu) ** 2).sum(-1) / (2 * sd**2) - torch.log(2 * math.pi * sd**2)
    exact = torch.logsumexp(comp, dim=1)
    diff = (result.log_p - exact).abs()
    value = float(diff.mean())
    return Check("Flow matching, a 2-D mixture's exact velocity transports N(0, I) to it",
                 f"log-density of the ODE with the posterior-weighted v* vs the mixture's, at {n} mixture draws "
                 f"(3 components; max |diff| {float(diff.max()):.2g}, {result.nfe} solver evaluations); mean |diff| "
                 "in nats", value, "0", tol, value <= tol, details={"max |diff|": float(diff.max())})
