"""Theorem 8 (eq. 4.10), eq. 4.9 and eq. 4.8 on Gaussian data N(m, s^2), where the model with
the optimal eps_theta is linear-Gaussian and its log p_theta(x_0) is known exactly."""

import math

import pytest
import torch

from genmodels.diffusion.bound import bits_per_dim, bound_terms, direct_bound_mc, prior_term
from genmodels.diffusion.gaussian_data import (
    exact_bound_terms,
    exact_log_likelihood,
    model_marginal,
    optimal_eps_fn,
)
from genmodels.diffusion.loglik import log_likelihood_is
from genmodels.diffusion.samplers import ancestral
from genmodels.diffusion.schedule import NoiseSchedule, cosine_betas

pytestmark = pytest.mark.usefixtures("one_thread")


M, S = 0.3, 0.5
X0 = torch.tensor([[-0.5], [0.3], [1.2]], dtype=torch.float64)
SCHED_100 = NoiseSchedule.from_betas(cosine_betas(100))
SCHED_1000 = NoiseSchedule.named("linear", 1000)


def true_nll(x):
    return 0.5 * (math.log(2 * math.pi * S * S) + (x - M) ** 2 / S**2)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_optimal_model_is_close_to_the_data_and_its_samples_follow_the_exact_marginal(variance):
    mean, var = model_marginal(SCHED_1000, M, S, variance)
    assert mean == pytest.approx(M, abs=1e-3) and math.sqrt(var) == pytest.approx(S, rel=0.02)
    # Algorithm 4.2 with the optimal eps_theta draws from that marginal
    g = torch.Generator().manual_seed(0)
    x = ancestral(optimal_eps_fn(SCHED_100, M, S), torch.randn(40_000, 1, generator=g, dtype=torch.float64),
                  SCHED_100, generator=g, variance=variance)
    m100, v100 = model_marginal(SCHED_100, M, S, variance)
    n = x.shape[0]
    assert x.mean().item() == pytest.approx(m100, abs=4 * math.sqrt(v100 / n))
    assert x.var().item() == pytest.approx(v100, rel=4 * math.sqrt(2 / n))


@pytest.mark.parametrize("sched", [SCHED_100, SCHED_1000], ids=["cosine100", "linear1000"])
@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_theorem_8_bound_is_never_below_the_exact_nll(sched, variance):
    x = torch.linspace(-2.5, 3.0, 56, dtype=torch.float64)
    nll = -exact_log_likelihood(sched, M, S, x, variance)
    bound = exact_bound_terms(sched, M, S, x, variance)["total"]
    assert (bound >= nll - 1e-9).all(), (bound - nll).min()
    # a worse model (wrong mean) has both a larger exact NLL and a bound above it
    nll_bad = -exact_log_likelihood(sched, M + 0.5, S, x, variance)
    assert (exact_bound_terms(sched, M + 0.5, S, x, variance)["total"] >= nll_bad - 1e-9).all()


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_monte_carlo_bound_terms_match_their_closed_form(variance):
    g = torch.Generator().manual_seed(1)
    R = 400
    xs = X0.repeat(R, 1)
    mc = bound_terms(optimal_eps_fn(SCHED_100, M, S), SCHED_100, xs, variance=variance, decoder="gaussian", generator=g)
    exact = exact_bound_terms(SCHED_100, M, S, X0, variance)
    for key in ("L_T", "L_1:T-1", "L_0", "total"):
        est = mc[key].reshape(R, 3)
        se = est.std(0) / math.sqrt(R)
        assert ((est.mean(0) - exact[key].flatten()).abs() <= 4 * se + 1e-9).all(), key
    assert torch.allclose(prior_term(SCHED_100, X0), exact["L_T"].flatten())


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_eq_4_9_direct_monte_carlo_equals_the_decomposition_of_eq_4_10(variance):
    g = torch.Generator().manual_seed(2)
    R = 2000
    direct = direct_bound_mc(optimal_eps_fn(SCHED_100, M, S), SCHED_100, X0.repeat(R, 1), variance=variance,
                             decoder="gaussian", generator=g).reshape(R, 3)
    decomposed = exact_bound_terms(SCHED_100, M, S, X0, variance)["total"].flatten()
    se = direct.std(0) / math.sqrt(R)
    assert ((direct.mean(0) - decomposed).abs() <= 4 * se).all(), (direct.mean(0), decomposed, se)


def test_eq_4_8_estimate_converges_to_the_exact_log_likelihood():
    """beta_tilde gives a loose bound (gap ~0.5 nats) so the convergence in K is visible."""
    g = torch.Generator().manual_seed(3)
    eps_fn = optimal_eps_fn(SCHED_100, M, S)
    exact = exact_log_likelihood(SCHED_100, M, S, X0, "beta_tilde").flatten()
    R, errors = 40, []
    for K in (1, 16, 256):
        est = log_likelihood_is(eps_fn, SCHED_100, X0.repeat(R, 1), num_trajectories=K, variance="beta_tilde",
                                generator=g, chunk=256).reshape(R, 3)
        errors.append((exact - est.mean(0)).mean().item())   # >= 0 on average (Jensen)
    bound_gap = (exact_bound_terms(SCHED_100, M, S, X0, "beta_tilde")["total"].flatten() + exact).mean().item()
    assert errors[0] == pytest.approx(bound_gap, abs=0.25)   # K = 1 is minus the bound, on average
    assert errors[0] > errors[1] > abs(errors[2]) - 0.01
    assert abs(errors[2]) < 0.05


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)
