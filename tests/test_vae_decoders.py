"""The VAE decoder likelihoods: each is normalised and agrees with torch.distributions."""

import math

import pytest
import torch

from genmodels.errors import ConfigError
from genmodels.models.vae.decoders import (
    BINS,
    bernoulli_log_prob,
    discretized_gaussian_log_prob,
    discretized_logistic_log_prob,
    gaussian_log_prob,
    make_likelihood,
    quantize,
)

GRID = torch.linspace(-1, 1, BINS, dtype=torch.float64)   # the 256 values of an 8-bit pixel


def test_bernoulli_matches_torch_and_is_stable():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 4, 4, generator=g) * 3
    x = torch.bernoulli(torch.full_like(logits, 0.5), generator=g)
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_prob(logits, x), ref, atol=1e-5)
    # normalised: p(x=0) + p(x=1) = 1 for every pixel
    flat = logits.reshape(-1, 1)
    p0 = bernoulli_log_prob(flat, torch.zeros_like(flat)).exp()
    p1 = bernoulli_log_prob(flat, torch.ones_like(flat)).exp()
    assert torch.allclose(p0 + p1, torch.ones_like(p0), atol=1e-6)
    # huge logits give finite, exact values (no sigmoid then log)
    big = torch.tensor([[100.0, -100.0]])
    lp = bernoulli_log_prob(big, torch.tensor([[0.0, 1.0]]))
    assert torch.isfinite(lp).all() and lp.item() == pytest.approx(-200.0, rel=1e-6)


def test_gaussian_matches_torch_normal():
    g = torch.Generator().manual_seed(1)
    mean, logvar, x = (torch.randn(3, 2, 5, generator=g) for _ in range(3))
    ref = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_log_prob(mean, logvar, x), ref, atol=1e-5)
    fixed = make_likelihood("gaussian", sigma=0.3)
    ref_fixed = torch.distributions.Normal(mean, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(fixed.log_prob(mean[:, None], x), ref_fixed, atol=1e-5)
    learned = make_likelihood("gaussian_learned")
    assert torch.allclose(learned.log_prob(torch.stack([mean, logvar], 1), x), ref, atol=1e-5)


@pytest.mark.parametrize("fn", [discretized_logistic_log_prob, discretized_gaussian_log_prob])
@pytest.mark.parametrize("loc,log_scale", [(0.0, -1.0), (0.3, -4.0), (-0.97, -6.5), (1.4, -3.0), (0.51, 0.5)])
def test_discretized_likelihoods_sum_to_one_over_256_values(fn, loc, log_scale):
    x = GRID.view(BINS, 1)
    lp = fn(torch.full_like(x, loc), torch.full_like(x, log_scale), x)
    assert torch.isfinite(lp).all()
    assert torch.logsumexp(lp, 0).item() == pytest.approx(0.0, abs=1e-6)


def test_discretized_gaussian_bins_match_normal_cdf_and_logistic_tails_are_exact():
    mean, sigma = 0.2, 0.15
    x = GRID.view(BINS, 1)
    lp = discretized_gaussian_log_prob(torch.full_like(x, mean), torch.full_like(x, math.log(sigma)), x).exp()
    normal = torch.distributions.Normal(torch.tensor(mean, dtype=torch.float64), sigma)
    h = 1 / (BINS - 1)
    ref = normal.cdf(x[:, 0] + h) - normal.cdf(x[:, 0] - h)
    ref[0], ref[-1] = normal.cdf(x[0, 0] + h), 1 - normal.cdf(x[-1, 0] - h)
    assert torch.allclose(lp, ref, atol=1e-9, rtol=1e-6)
    # logistic: a bin far in the right tail is computed from the survival function, not 1 - 1
    mu, log_s = torch.tensor([[-0.9]]), torch.tensor([[math.log(0.01)]])
    xr = torch.tensor([[0.5 + 1 / 255]])   # on the grid, 140 scale units to the right
    lp_tail = discretized_logistic_log_prob(mu, log_s, quantize(xr))
    t = (quantize(xr) - mu) / 0.01
    approx = (-t - math.log(0.01) + math.log(2 / 255))   # log pdf * width, pdf ~ e^-t / s in the tail
    assert torch.isfinite(lp_tail).all() and lp_tail.item() == pytest.approx(approx.item(), abs=0.05)


def test_discretized_samples_lie_on_the_grid_and_follow_the_mean():
    lik = make_likelihood("discretized_logistic")
    params = torch.stack([torch.full((2000, 1), 0.25), torch.full((2000, 1), math.log(0.05))], 1)
    s = lik.sample(params, torch.Generator().manual_seed(0))
    assert torch.allclose(quantize(s), s) and s.min() >= -1 and s.max() <= 1
    assert s.mean().item() == pytest.approx(0.25, abs=0.01)


def test_unknown_decoder_lists_choices():
    with pytest.raises(ConfigError, match="bernoulli.*discretized_gaussian"):
        make_likelihood("poisson")
