"""The probability-flow ODE log-likelihood (Song et al. 2021) against closed forms: Gaussian data,
where the ODE with the exact eps is a linear map, isotropic (`gaussian_data`) and correlated (here);
the exact trace and Hutchinson's estimator; uniform dequantisation against the exact bin mass."""

import math

import pytest
import torch

from genmodels.data.toys import grid25_modes
from genmodels.diffusion.gaussian_data import ode_exact_log_likelihood, optimal_eps_at
from genmodels.diffusion.noise_levels import sigma_at, sigma_table
from genmodels.diffusion.ode_likelihood import (
    dequantise,
    dequantised_bits_per_dim,
    divergence,
    make_probes,
    ode_log_likelihood,
)
from genmodels.diffusion.schedule import NoiseSchedule, cosine_betas
from genmodels.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

SCHED = NoiseSchedule.named("linear", 1000)
M, S = 0.3, 0.5
X0 = torch.tensor([[-1.0, 0.3], [0.3, 1.2], [2.0, -0.5]], dtype=torch.float64)


def test_ode_matches_the_closed_form_on_gaussian_data_within_its_tolerance():
    exact = ode_exact_log_likelihood(SCHED, M, S, X0).sum(dim=1)
    errors = {}
    for tol in (1e-3, 1e-5, 1e-7):
        r = ode_log_likelihood(optimal_eps_at(SCHED, M, S), SCHED, X0, trace="exact", rtol=tol, atol=tol)
        errors[tol] = float((r.log_p - exact).abs().max())
        assert r.log_p.dtype == torch.float64 and r.nfe > 10
    assert errors[1e-5] < 2e-4 and errors[1e-7] < 1e-5 and errors[1e-3] > errors[1e-5] > errors[1e-7]
    # the closed form is the data density up to the prior's mismatch with q(x_T) (abar_T ~ 4e-5)
    true = (-0.5 * ((X0 - M) / S) ** 2 - math.log(S * math.sqrt(2 * math.pi))).sum(dim=1)
    assert torch.allclose(exact, true, atol=0.02)
    # a wrong model is told apart: eps optimal for s = 0.6 gives another density
    other = ode_log_likelihood(optimal_eps_at(SCHED, M, 0.6), SCHED, X0, trace="exact")
    assert float((other.log_p - exact).abs().min()) > 0.05
    # another schedule (cosine, sigma_T ~ 6e2) works the same way
    cos = NoiseSchedule.from_betas(cosine_betas(200))
    r = ode_log_likelihood(optimal_eps_at(cos, M, S), cos, X0, trace="exact")
    assert torch.allclose(r.log_p, ode_exact_log_likelihood(cos, M, S, X0).sum(dim=1), atol=5e-4)


# correlated Gaussian data N(mu, C), C = R diag(s^2) R^T: E[eps | y] = sigma (C + sigma^2 I)^-1 (y - mu)
MU = torch.tensor([0.2, -0.1], dtype=torch.float64)
ANGLE = 0.6
R = torch.tensor([[math.cos(ANGLE), -math.sin(ANGLE)], [math.sin(ANGLE), math.cos(ANGLE)]], dtype=torch.float64)
SD = torch.tensor([0.8, 0.2], dtype=torch.float64)


def correlated_eps(xt, t):
    sigma = sigma_at(SCHED, t).to(xt).reshape(-1, 1)
    y = xt * (1 + sigma**2).sqrt()
    coeff = (y - MU) @ R                                       # coordinates in the eigenbasis
    return sigma * (coeff / (SD**2 + sigma**2)) @ R.T


def correlated_exact(x0):
    """log p of the ODE's model: y_T = mu + R diag(sqrt((s^2 + sigma_T^2) / s^2)) R^T (x_0 - mu)."""
    s2 = float(sigma_table(SCHED)[-1]) ** 2
    gain = ((SD**2 + s2) / SD**2).sqrt()
    x_T = (MU + (((x0 - MU) @ R) * gain) @ R.T) / math.sqrt(1 + s2)
    log_det = float(torch.log(gain).sum()) - math.log(1 + s2)           # log |dx_T / dx_0|, D = 2
    return (-0.5 * (x_T**2 + math.log(2 * math.pi))).sum(dim=1) + log_det


def test_exact_trace_and_hutchinson_on_a_non_diagonal_jacobian():
    exact = correlated_exact(X0)
    r = ode_log_likelihood(correlated_eps, SCHED, X0, trace="exact")
    assert torch.allclose(r.log_p, exact, atol=5e-4)
    # Hutchinson: each example repeated with its own fixed probe; unbiased, so the means agree
    n = 300
    xs = X0.repeat(n, 1)
    for probe in ("rademacher", "gaussian"):
        h = ode_log_likelihood(correlated_eps, SCHED, xs, trace="hutchinson", probes=2, probe=probe,
                               generator=torch.Generator().manual_seed(1)).log_p.reshape(n, 3)
        se = h.std(0) / math.sqrt(n)
        assert (h.std(0) > 1e-3).all(), probe                  # the probes do vary (off-diagonal terms)
        assert ((h.mean(0) - exact).abs() < 4 * se).all(), (probe, h.mean(0), exact, se)
    # trace="auto" is exact in low dimension; the same generator gives the same probes
    auto = ode_log_likelihood(correlated_eps, SCHED, X0)
    assert torch.allclose(auto.log_p, r.log_p, rtol=0, atol=1e-12)
    a = make_probes((3, 2), 4, "rademacher", torch.Generator().manual_seed(2), "cpu", torch.float64)
    b = make_probes((3, 2), 4, "rademacher", torch.Generator().manual_seed(2), "cpu", torch.float64)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {-1.0, 1.0}


# grid25 (25 Gaussians of std 0.05 at spacing 2, `data/toys.py`): the noised mixture
# p_sigma(y) = mean_k N(y; mu_k, (s^2 + sigma^2) I) is closed-form, and so is its eps = -sigma grad_y log p_sigma
GRID_MU = grid25_modes().double()


def grid_log_density(y, var):
    """log mean_k N(y; mu_k, var I), D = 2; var a float or (B, 1)."""
    d2 = ((y[:, None, :] - GRID_MU[None]) ** 2).sum(-1)
    var = torch.as_tensor(var, dtype=y.dtype)
    return torch.logsumexp(-0.5 * d2 / var - torch.log(2 * math.pi * var), dim=1) - math.log(len(GRID_MU))


def grid_eps(s):
    def eps(xt, t):
        sigma = sigma_at(SCHED, t).to(xt).reshape(-1, 1)
        with torch.enable_grad():
            y = xt * (1 + sigma**2).sqrt()
            lp = grid_log_density(y, s**2 + sigma**2).sum()
            (g,) = torch.autograd.grad(lp, y, create_graph=True)
        return -sigma * g
    return eps


def test_ode_recovers_the_density_of_sharp_gaussian_mixtures_with_the_exact_eps():
    """The solver resolves grid25's sharp modes (std 0.05, 1/40 of their spacing) when the score is
    exact: the ODE's log-density equals the mixture's to 1e-3 nats, so a trained model's ODE figure
    measures its score, not the solver. A score blind to the modes' width (the optimal one for
    std 0.15) loses about log(0.15 / 0.05) nats per dimension at the modes' centres."""
    g = torch.Generator().manual_seed(0)
    x0 = GRID_MU[torch.randint(0, 25, (6,), generator=g)] + 0.05 * torch.randn(6, 2, generator=g, dtype=torch.float64)
    r = ode_log_likelihood(grid_eps(0.05), SCHED, x0, trace="exact")
    true = grid_log_density(x0, 0.05**2)
    assert torch.allclose(r.log_p, true, atol=1e-3), (r.log_p, true)
    blurred = ode_log_likelihood(grid_eps(0.15), SCHED, x0, trace="exact").log_p
    assert torch.allclose(blurred, grid_log_density(x0, 0.15**2), atol=1e-3)
    assert float((true - blurred).mean()) > 1.0


def test_divergence_of_a_linear_map():
    A = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0], [0.0, 0.0, 4.0]], dtype=torch.float64)
    y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    f = y @ A.T
    assert torch.allclose(divergence(f, y, None), torch.full((5,), 5.0, dtype=torch.float64))
    z = make_probes((5, 3), 2000, "gaussian", torch.Generator().manual_seed(0), "cpu", torch.float64)
    assert torch.allclose(divergence(f, y, z), torch.full((5,), 5.0, dtype=torch.float64), atol=0.6)


def test_dequantised_bits_per_dim_bound_the_discrete_mass():
    """1-D Gaussian model density: E_u[-log p(x + u)] - log w >= -log P(bin) (Jensen), and close."""
    w = 2 / 255
    grid = torch.tensor([[-0.6], [0.3], [0.9]], dtype=torch.float64)
    n = 200
    xs = dequantise(grid.repeat(n, 1), torch.Generator().manual_seed(3))
    assert ((xs - grid.repeat(n, 1)).abs() <= w / 2).all()
    ode = ode_log_likelihood(optimal_eps_at(SCHED, M, S), SCHED, xs, trace="exact").log_p
    bpd = dequantised_bits_per_dim(ode, 1).reshape(n, 3).mean(0)
    # the ODE's model is Gaussian: log p(x) = log N(a x + b; 0, 1) + log a (`ode_exact_log_likelihood`)
    s2 = float(sigma_table(SCHED)[-1]) ** 2
    a = math.sqrt((S**2 + s2) / S**2) / math.sqrt(1 + s2)
    b = (M - M * math.sqrt((S**2 + s2) / S**2)) / math.sqrt(1 + s2)
    normal = torch.distributions.Normal(0.0, 1.0)
    mass = normal.cdf(a * (grid + w / 2) + b) - normal.cdf(a * (grid - w / 2) + b)
    exact_bits = (-torch.log(mass) / math.log(2)).flatten()
    assert (bpd >= exact_bits - 1e-4).all() and (bpd - exact_bits).abs().max() < 2e-3, (bpd, exact_bits)


def test_options_are_checked():
    eps = optimal_eps_at(SCHED, M, S)
    with pytest.raises(ConfigError, match="auto, exact, hutchinson"):
        ode_log_likelihood(eps, SCHED, X0, trace="stochastic")
    with pytest.raises(ConfigError, match="probes"):
        ode_log_likelihood(eps, SCHED, X0, trace="hutchinson", probes=0)
    with pytest.raises(ConfigError, match="gaussian, rademacher"):
        ode_log_likelihood(eps, SCHED, X0, trace="hutchinson", probe="uniform")
    with pytest.raises(ConfigError, match="tolerances"):
        ode_log_likelihood(eps, SCHED, X0, rtol=0.0)
