"""The VAE's maths: closed-form KL vs Monte Carlo, and the IWAE bound (Burda et al. 2015)
checked on a linear-Gaussian model whose log p(x) and exact posterior are known."""

import math

import pytest
import torch

from genmodels.errors import ConfigError
from genmodels.models.vae.decoders import make_likelihood
from genmodels.models.vae.elbo import (
    elbo,
    gaussian_kl,
    iwae_bound,
    log_normal_diag,
    log_standard_normal,
    reparameterize,
)


def test_gaussian_kl_closed_form_matches_monte_carlo_and_torch():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(4, 3, generator=g, dtype=torch.float64) * 0.7
    kl = gaussian_kl(mu, logvar)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-12)
    z = reparameterize(mu, logvar, g, k=200_000)                                  # (k, 4, 3)
    terms = log_normal_diag(z, mu, logvar) - log_standard_normal(z)               # log q - log p
    mc, se = terms.mean(0), terms.std(0) / math.sqrt(terms.shape[0])
    assert ((mc - kl).abs() < 4 * se + 1e-3).all(), (mc, kl, se)
    assert gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() == 0   # q = p


def linear_gaussian(seed=0, D=6, L=2, s=0.5):
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I) with orthogonal columns of W, so that the
    exact posterior is a diagonal Gaussian. Returns (decoder, exact encoder, log p(x), likelihood, x)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, L, generator=g, dtype=torch.float64))
    scales = torch.tensor([2.0, 0.7], dtype=torch.float64)[:L]
    W, b = Q * scales, torch.randn(D, generator=g, dtype=torch.float64) * 0.3
    post_var = 1 / (1 + scales ** 2 / s ** 2)                                      # (I + W^T W / s^2)^-1, diagonal

    def decoder(z):
        return (z @ W.T + b)[:, None]

    def exact_encoder(x):
        mu = post_var * ((x - b) @ W) / s ** 2
        return mu, torch.log(post_var).expand_as(mu)

    def log_px(x):
        cov = W @ W.T + s ** 2 * torch.eye(D, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(b, cov).log_prob(x)

    z = torch.randn(16, L, generator=g, dtype=torch.float64)
    x = decoder(z)[:, 0] + s * torch.randn(16, D, generator=g, dtype=torch.float64)
    return decoder, exact_encoder, log_px, make_likelihood("gaussian", sigma=s), x


def test_iwae_equals_log_px_with_the_exact_posterior_for_any_k_and_chunk():
    decoder, encoder, log_px, lik, x = linear_gaussian()
    g = torch.Generator().manual_seed(1)
    for K, chunk in [(1, 1), (7, 3), (100, 100), (250, 64)]:
        bound = iwae_bound(x, encoder, decoder, lik, K=K, chunk=chunk, generator=g)
        assert torch.allclose(bound, log_px(x), atol=1e-9), (K, chunk)
    # the ELBO (one-sample reconstruction, closed-form KL) equals log p(x) in expectation
    x_rep = x.repeat(500, 1)
    e = elbo(x_rep, encoder, decoder, lik, generator=g).elbo.view(500, -1)
    assert ((e.mean(0) - log_px(x)).abs() < 4 * e.std(0) / math.sqrt(500)).all()


def test_iwae_increases_with_k_stays_below_log_px_and_above_elbo():
    decoder, exact, log_px, lik, x = linear_gaussian()

    def poor_encoder(x):                       # a mis-fitted q: shifted mean, too narrow
        mu, logvar = exact(x)
        return mu + 0.4, logvar - 1.0

    g = torch.Generator().manual_seed(2)
    reps = 8                                   # average over independent repeats (fixed generator)
    elbo_mean = torch.stack([elbo(x, poor_encoder, decoder, lik, generator=g).elbo for _ in range(200)]).mean()
    bounds = {K: torch.stack([iwae_bound(x, poor_encoder, decoder, lik, K=K, chunk=250, generator=g)
                              for _ in range(reps)]).mean().item() for K in (1, 10, 100, 1000)}
    true = log_px(x).mean().item()
    assert bounds[1] == pytest.approx(elbo_mean.item(), abs=0.3)              # L_1 is the ELBO
    assert bounds[1] < bounds[10] < bounds[100] < bounds[1000] < true + 1e-3, (bounds, true)
    assert bounds[1000] > elbo_mean.item() + 1.0
    assert true - bounds[1000] < 0.5 * (true - bounds[1])                      # and closes the gap


def test_beta_weights_the_kl_in_the_objective():
    decoder, encoder, _, lik, x = linear_gaussian()

    def shifted(x):
        mu, logvar = encoder(x)
        return mu + 1.0, logvar

    t1 = elbo(x, shifted, decoder, lik, beta=4.0, generator=torch.Generator().manual_seed(0))
    t2 = elbo(x, shifted, decoder, lik, beta=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(t1.objective, t1.rec - 4.0 * t1.kl)
    assert torch.allclose(t1.elbo, t2.objective)


def test_iwae_rejects_bad_k():
    decoder, encoder, _, lik, x = linear_gaussian()
    with pytest.raises(ConfigError, match="K and chunk"):
        iwae_bound(x, encoder, decoder, lik, K=0)
