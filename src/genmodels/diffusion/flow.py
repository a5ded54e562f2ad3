"""Flow matching on the linear path (rectified flow; conditional optimal transport): the path, the
velocity target, the training-time densities and the minibatch OT coupling.

Sign convention: t = 0 is the data, t = 1 the noise. For a data point x_0 and noise eps ~ N(0, I),

    x_t = (1 - t) x_0 + t eps,        d x_t / dt = eps - x_0,                       (1)

the straight line of Liu et al. 2023 ("Flow straight and fast", eq. 1, with their X_0 / X_1 swapped
to keep the seed's "x_0 is data") and the conditional OT path of Lipman et al. 2023 ("Flow matching
for generative modeling", eq. 20-23, with sigma_min = 0). The network v_theta(x_t, t) is trained by
least squares on the target u = eps - x_0 (Liu et al. eq. 1; Lipman et al.'s conditional flow
matching loss, eq. 9), whose minimiser is v*(x, t) = E[eps - x_0 | x_t = x]; the ODE dx/dt = v*(x, t)
has the path's marginals at every t (Liu et al. Theorem 3.3; Lipman et al. Theorem 1) and is
integrated from t = 1 (noise) to t = 0 (data) to sample (`flow_samplers.py`).

Training times (`draw_times`): uniform, or logit-normal t = sigmoid(u), u ~ N(m, s^2) with m = 0,
s = 1 (Esser et al. 2024, "Scaling rectified flow transformers", eq. 19, their best of 61 variants;
`continuous.py` gives the same density in the DDPM's variables), or U-shaped,
p(t) = a cosh(a (t - 1/2)) / (2 sinh(a / 2)) with a = 4 (Lee et al. 2024, "Improving the training of
rectified flows", sec. 4.1: for a reflow, whose straight paths make the middle times easy, the
weight goes to the ends). Losses (`flow_matching_loss`, `pseudo_huber_loss`): squared error, or the
pseudo-Huber sqrt(||v - u||^2 + c^2) - c with c = 0.00054 sqrt(D) (Song & Dhariwal 2023, "Improved
techniques for training consistency models", sec. 3.3; Lee et al. 2024 train reflows with it).
Couplings (`couple`): independent (x_0 and eps drawn apart), or the exact optimal-transport
assignment within each minibatch under squared Euclidean cost (Tong et al. 2023, "Improving and
generalizing flow-based generative models with minibatch optimal transport", OT-CFM, sec. 3.2),
found with scipy's linear_sum_assignment: with uniform weights on two equal-sized batches the
optimal plan is a permutation.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from genmodels.diffusion.continuous import DENSITY_DEFAULTS
from genmodels.diffusion.ode_likelihood import (
    ODELikelihood,
    Probe,
    Trace,
    integrate_log_density,
    standard_normal_log_density,
)
from genmodels.errors import choice_error

TimeDensity = Literal["uniform", "logit-normal", "u-shaped"]
TIME_DENSITIES = typing.get_args(TimeDensity)
LOGIT_NORMAL = DENSITY_DEFAULTS["logit-normal"]     # (m, s) = (0, 1), Esser et al. 2024
U_SHAPE_A = 4.0                                     # Lee et al. 2024, sec. 4.1
FlowLoss = Literal["mse", "pseudo-huber"]
PSEUDO_HUBER_C = 0.00054                            # c = 0.00054 sqrt(D), Song & Dhariwal 2023, sec. 3.3
Coupling = Literal["independent", "ot"]
COUPLINGS = typing.get_args(Coupling)
TIME_SCALE = 1000.0   # the networks read 1000 t: the range of the DDPM's steps their time embedding was made for


def _expand(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """t (B,) shaped to broadcast against x (B, ...)."""
    return t.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def path_point(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t eps (eq. 1). x0, eps (B, ...); t (B,) in [0, 1]. Returns (B, ...)."""
    t = _expand(t, x0)
    return (1.0 - t) * x0 + t * eps


def velocity_target(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """u = d x_t / dt = eps - x_0 (eq. 1), the regression target of v_theta(x_t, t). (B, ...)."""
    return eps - x0


def draw_times(n: int, density: TimeDensity, generator: torch.Generator | None, device: torch.device | str,
               mean: float = LOGIT_NORMAL[0], std: float = LOGIT_NORMAL[1], a: float = U_SHAPE_A) -> torch.Tensor:
    """n training times in [0, 1], float32 (n,): uniform, logit-normal t = sigmoid(mean + std u),
    u ~ N(0, 1) (Esser et al. 2024, eq. 19), or U-shaped with parameter a (Lee et al. 2024; drawn by
    inverting its CDF at one uniform per example, `u_shaped_quantile`)."""
    if density == "uniform":
        return torch.rand((n,), generator=generator, device=device)
    if density == "logit-normal":
        u = torch.randn((n,), generator=generator, device=device)
        return torch.sigmoid(mean + std * u)
    if density == "u-shaped":
        return u_shaped_quantile(torch.rand((n,), generator=generator, device=device), a)
    raise choice_error("time density", density, TIME_DENSITIES)


def u_shaped_density(t: torch.Tensor, a: float = U_SHAPE_A) -> torch.Tensor:
    """p(t) = a cosh(a (t - 1/2)) / (2 sinh(a / 2)) on [0, 1] (Lee et al. 2024, sec. 4.1: the even
    mixture of densities proportional to exp(a t) and exp(a (1 - t)), which is this). a > 0."""
    return a * torch.cosh(a * (t - 0.5)) / (2.0 * math.sinh(a / 2.0))


def u_shaped_quantile(u: torch.Tensor, a: float = U_SHAPE_A) -> torch.Tensor:
    """The inverse of the U-shaped CDF F(t) = (sinh(a (t - 1/2)) / sinh(a / 2) + 1) / 2 at u in [0, 1]:
    t = 1/2 + asinh((2 u - 1) sinh(a / 2)) / a, computed in float64, returned in u's dtype."""
    z = (2.0 * u.double() - 1.0) * math.sinh(a / 2.0)
    return (0.5 + torch.asinh(z) / a).clamp(0.0, 1.0).to(u.dtype)


def ot_permutation(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The permutation p (B,) int64 minimising sum_i ||x0_i - eps_{p(i)}||^2 (exact, Hungarian
    method: scipy.optimize.linear_sum_assignment), Tong et al. 2023's minibatch OT plan."""
    from scipy.optimize import linear_sum_assignment  # lazy: scipy is slow to import

    cost = torch.cdist(x0.flatten(1).double(), eps.flatten(1).double()) ** 2
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    perm = torch.empty(len(rows), dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return perm.to(x0.device)


def couple(x0: torch.Tensor, eps: torch.Tensor, coupling: Coupling) -> torch.Tensor:
    """The noise paired with each x_0: eps as drawn (independent) or reordered by the minibatch OT
    assignment (ot). (B, ...)."""
    if coupling == "independent":
        return eps
    if coupling == "ot":
        return eps[ot_permutation(x0, eps)]
    raise choice_error("coupling", coupling, COUPLINGS)


def flow_matching_loss(v: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-example mean squared error ||v_theta(x_t, t) - (eps - x_0)||^2 / D, (B,) (Lipman et al.
    eq. 9 / Liu et al. eq. 1, averaged over the D dimensions)."""
    return (v.float() - velocity_target(x0, eps).float()).pow(2).flatten(1).mean(dim=1)


def pseudo_huber_c(dims: int) -> float:
    """c = 0.00054 sqrt(D) for data of D dimensions (Song & Dhariwal 2023, sec. 3.3)."""
    return PSEUDO_HUBER_C * math.sqrt(dims)


def pseudo_huber_loss(v: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, c: float) -> torch.Tensor:
    """Per-example pseudo-Huber distance sqrt(||v_theta(x_t, t) - (eps - x_0)||^2 + c^2) - c, (B,), the
    norm over all D dimensions (Song & Dhariwal 2023, sec. 3.3; Lee et al. 2024 for reflow): about
    ||.||^2 / (2 c) for errors much smaller than c and ||.|| for larger ones, so that a few large
    errors do not dominate the gradient. c > 0."""
    d2 = (v.float() - velocity_target(x0, eps).float()).pow(2).flatten(1).sum(dim=1)
    return d2 / (torch.sqrt(d2 + c * c) + c)    # = sqrt(d2 + c^2) - c, without its cancellation for d2 << c^2


def gaussian_velocity(x: torch.Tensor, t: torch.Tensor, m: float, s: float) -> torch.Tensor:
    """The optimal velocity v*(x, t) = E[eps - x_0 | x_t = x] for data x_0 ~ N(m, s^2 I), in closed form:
    (x_0, eps, x_t) are jointly Gaussian with Cov(eps - x_0, x_t) = t - (1 - t) s^2 and
    x_t ~ N((1 - t) m, sigma_t^2), sigma_t^2 = (1 - t)^2 s^2 + t^2, so

        v*(x, t) = -m + (t - (1 - t) s^2) / sigma_t^2 (x - (1 - t) m),

    linear in x. x (B, ...), t (B,). Differentiable in x (for the exact divergence)."""
    t = _expand(t, x)
    var = (1.0 - t) ** 2 * s**2 + t**2
    return -m + (t - (1.0 - t) * s**2) / var * (x - (1.0 - t) * m)


def mixture_velocity(x: torch.Tensor, t: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                     stds: torch.Tensor) -> torch.Tensor:
    """The optimal velocity E[eps - x_0 | x_t = x] for data from the mixture sum_k pi_k N(mu_k, s_k^2 I):
    each component's field (`gaussian_velocity`, per coordinate) weighted by the posterior
    P(k | x_t = x) proportional to pi_k N(x; (1 - t) mu_k, sigma_{k,t}^2 I), sigma_{k,t}^2 = (1 - t)^2 s_k^2 + t^2.
    x (B, D), t (B,), weights (K,), means (K, D), stds (K,). Returns (B, D), differentiable in x."""
    t = t.to(x.dtype)[:, None, None]                                      # (B, 1, 1)
    mu, s2 = means.to(x.dtype)[None], (stds.to(x.dtype) ** 2)[None, :, None]
    var = (1.0 - t) ** 2 * s2 + t**2                                      # (B, K, 1)
    centred = x[:, None, :] - (1.0 - t) * mu                              # (B, K, D)
    log_w = torch.log(weights.to(x.dtype))[None] - 0.5 * (centred**2 / var + torch.log(2 * torch.pi * var)).sum(-1)
    post = torch.softmax(log_w, dim=1)[:, :, None]                        # P(k | x_t)
    v_k = -mu + (t - (1.0 - t) * s2) / var * centred
    return (post * v_k).sum(dim=1)


def gaussian_marginal(t: float, m: float, s: float) -> tuple[float, float]:
    """(mean, variance) of x_t for x_0 ~ N(m, s^2): ((1 - t) m, (1 - t)^2 s^2 + t^2)."""
    return (1.0 - t) * m, (1.0 - t) ** 2 * s**2 + t**2


def flow_log_likelihood(velocity, x0: torch.Tensor, *, trace: Trace = "auto", probes: int = 1,
                        probe: Probe = "rademacher", rtol: float = 1e-5, atol: float = 1e-5,
                        generator: torch.Generator | None = None) -> ODELikelihood:
    """The exact log-density log p_0(x_0) of the flow's model (Chen et al. 2018; Lipman et al. 2023,
    sec. 2): the ODE dx/dt = v(x, t) from the data at t = 0 to t = 1, where x_1 ~ N(0, I), with
    log p_0(x_0) = log N(x_1; 0, I) + integral_0^1 div_x v(x_t, t) dt (`ode_likelihood.integrate_log_density`,
    its trace and solver options). velocity(x (B, ...), t (B,) float32) -> (B, ...), differentiable in x;
    x0 (B, ...) in the model's space (8-bit images already dequantised)."""
    B = x0.shape[0]

    def f(x: torch.Tensor, t: float) -> torch.Tensor:
        return velocity(x, torch.full((B,), t, dtype=torch.float32, device=x.device))

    return integrate_log_density(f, x0, 1.0, standard_normal_log_density, trace=trace, probes=probes, probe=probe,
                                 rtol=rtol, atol=atol, generator=generator)
