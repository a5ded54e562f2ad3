"""Gaussian Parzen-window log-likelihood (Goodfellow et al. 2014 protocol)."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from genmodels.errors import DataError
from genmodels.metrics.parzen import GOODFELLOW_SIGMAS, images_to_unit, parzen_log_density, parzen_log_likelihood


def brute_force(x, s, sigma):
    """log (1/N) sum_i N(x; s_i, sigma^2 I), one x at a time, in numpy."""
    x, s = np.asarray(x, dtype=np.float64), np.asarray(s, dtype=np.float64)
    d = s.shape[1]
    out = []
    for xi in x:
        log_k = -((xi - s) ** 2).sum(1) / (2 * sigma ** 2) - d / 2 * math.log(2 * math.pi * sigma ** 2)
        out.append(logsumexp(log_k) - math.log(len(s)))
    return np.array(out)


def test_density_matches_brute_force_for_every_sigma_and_batch_size():
    g = torch.Generator().manual_seed(0)
    s, x = torch.rand(300, 16, generator=g), torch.rand(37, 16, generator=g)
    sigmas = [0.05, 0.2, 1.0]
    got = parzen_log_density(x, s, sigmas, batch_size=8)
    assert got.shape == (37, 3)
    for j, sg in enumerate(sigmas):
        np.testing.assert_allclose(got[:, j].numpy(), brute_force(x, s, sg), rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(parzen_log_density(x, s, sigmas, batch_size=1000).numpy(), got.numpy(), rtol=1e-12)


def test_kernel_density_of_a_gaussian_approaches_the_smoothed_density():
    # samples s_i ~ N(0.5, t^2): the Parzen window tends to N(0.5, t^2 + sigma^2), so the mean
    # log-likelihood of test points from N(0.5, t^2) tends to a closed form.
    g = torch.Generator().manual_seed(1)
    t, sigma = 0.05, 0.03
    s = (0.5 + t * torch.randn(10000, 1, generator=g)).clamp(0, 1)
    x = (0.5 + t * torch.randn(2000, 1, generator=g)).clamp(0, 1)
    v = t * t + sigma * sigma
    expected = -0.5 * math.log(2 * math.pi * v) - 0.5 * t * t / v
    r = parzen_log_likelihood(s, x, sigmas=[sigma])
    assert r["mean"] == pytest.approx(expected, abs=3 * r["stderr"] + 0.01)


def test_sigma_is_chosen_on_validation_and_stderr_is_std_over_sqrt_n():
    g = torch.Generator().manual_seed(2)
    s = torch.rand(500, 8, generator=g) * 0.5
    val, test = torch.rand(100, 8, generator=g) * 0.5, torch.rand(64, 8, generator=g) * 0.5
    r = parzen_log_likelihood(s, test, val)
    val_means = parzen_log_density(val, s, GOODFELLOW_SIGMAS).mean(0)
    best = int(val_means.argmax())
    assert r["sigma"] == pytest.approx(GOODFELLOW_SIGMAS[best])
    assert r["validation_mean"] == pytest.approx(float(val_means[best]))
    ll = brute_force(test, s, r["sigma"])
    assert r["mean"] == pytest.approx(ll.mean(), rel=1e-9)
    assert r["stderr"] == pytest.approx(ll.std() / math.sqrt(len(ll)), rel=1e-9)
    # validation points on top of samples prefer the narrowest kernel, far-off ones a wide one
    assert parzen_log_likelihood(s, test, s[:10])["sigma"] == pytest.approx(0.1)
    assert parzen_log_likelihood(s, test, torch.ones(10, 8))["sigma"] > 0.5


def test_goodfellow_sigma_grid():
    np.testing.assert_allclose(GOODFELLOW_SIGMAS, np.logspace(-1, 0, 10))


def test_images_are_mapped_to_unit_interval():
    x = torch.tensor([[[[-1.0, 0.0], [0.5, 1.0]]]])
    np.testing.assert_allclose(images_to_unit(x).numpy(), [[0.0, 0.5, 0.75, 1.0]])


def test_bad_inputs_are_refused_with_clear_errors():
    s = torch.rand(10, 4)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        parzen_log_likelihood(s * 2 - 1, s, s)
    with pytest.raises(DataError, match="dimensions"):
        parzen_log_likelihood(s, torch.rand(5, 3), s)
    with pytest.raises(DataError, match="validation"):
        parzen_log_likelihood(s, s)
