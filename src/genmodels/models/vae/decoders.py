"""The decoder likelihoods log p_theta(x | z) of the VAE (docs/vae.md, "The model", names each
one's paper).

A decoder network maps z to distribution parameters `params` of shape (N, P, *shape), P being
`n_params` of the likelihood (1 for Bernoulli logits or a fixed-variance Gaussian mean, 2 for a
mean and a log-scale). Every `log_prob` sums over the data dimensions and returns (N,).

The likelihood also fixes the space the model works in: the Bernoulli decoder models pixels in
{0, 1} (x01 = (x + 1) / 2), all others model x in [-1, 1] directly.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch
import torch.nn.functional as F

from genmodels.errors import choice_error

LOG_SCALE_MIN = -7.0   # floor on log sigma / log s (PixelCNN++ uses -7): keeps 1/s finite
BINS = 256             # 8-bit images: x in [-1, 1] on the grid -1 + 2k/255, k = 0..255
HALF_BIN = 1.0 / (BINS - 1)   # half the bin width 2/255


def bernoulli_log_prob(logits: torch.Tensor, x01: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x | sigmoid(logits)) summed over data dims.

    logits, x01: (N, *shape) with x01 in {0, 1} (grey levels in [0, 1] are accepted but then
    the value is a cross-entropy, not a normalised log-likelihood). Returns (N,).
    Computed on the logits (no sigmoid, no log(0)): -BCE_with_logits.
    """
    return -F.binary_cross_entropy_with_logits(logits, x01, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(mean: torch.Tensor, logvar: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x | mean, exp(logvar)) summed over data dims; all (N, *shape) (logvar broadcasts).
    Returns (N,)."""
    logvar = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device).expand_as(mean)
    lp = -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))
    return lp.flatten(1).sum(1)


def _log1mexp(t: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(t)) for t < 0, accurate at both ends (Maechler 2012)."""
    t = t.clamp(max=-1e-12)
    near_zero = t > -math.log(2)
    # each branch only sees inputs it is accurate for, so that no inf enters the backward pass
    a = torch.log(-torch.expm1(torch.where(near_zero, t, -1.0)))
    b = torch.log1p(-torch.exp(torch.where(near_zero, -1.0, t)))
    return torch.where(near_zero, a, b)


def _log_bin_mass(x: torch.Tensor, log_cdf, log_sf, log_density) -> torch.Tensor:
    """log P(x's bin) for x on the 8-bit grid in [-1, 1], per pixel.

    The edge bins take the whole tails (x = -1: (-inf, -1 + 1/255]; x = 1: [1 - 1/255, inf)),
    as in PixelCNN++ (Salimans et al. 2017) and Ho et al. 2020 (eq. 13).
    log_cdf(u), log_sf(u): log F(u) and log (1 - F(u)) of the continuous distribution;
    log_density(u): its log density (used where the bin mass underflows).
    """
    upper, lower = x + HALF_BIN, x - HALF_BIN
    log_cdf_upper, log_cdf_lower = log_cdf(upper), log_cdf(lower)
    log_sf_lower, log_sf_upper = log_sf(lower), log_sf(upper)
    # F(upper) - F(lower) = S(lower) - S(upper): factor out the smaller of F(upper), S(lower)
    # so that the subtraction happens in the tail where it is exact.
    left = log_cdf_upper + _log1mexp(log_cdf_lower - log_cdf_upper)
    right = log_sf_lower + _log1mexp(log_sf_upper - log_sf_lower)
    log_mid = torch.where(log_cdf_upper < log_sf_lower, left, right)
    # a bin mass below e^-20 is replaced by density * bin width
    log_mid = torch.where(log_mid > -20.0, log_mid, log_density(x) + math.log(2 * HALF_BIN))
    return torch.where(x < -1 + HALF_BIN, log_cdf_upper, torch.where(x > 1 - HALF_BIN, log_sf_lower, log_mid))


def discretized_logistic_log_prob(mu: torch.Tensor, log_s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log P(x) of a logistic(mu, s) discretised to 256 bins on [-1, 1] (PixelCNN++ /
    Kingma et al. 2016 IAF). mu, log_s, x: (N, *shape). Returns (N,)."""
    log_s = log_s.clamp(min=LOG_SCALE_MIN)
    inv_s = torch.exp(-log_s)

    def log_cdf(u):       # log sigmoid((u - mu) / s)
        return F.logsigmoid((u - mu) * inv_s)

    def log_sf(u):        # log (1 - sigmoid(t)) = log sigmoid(-t)
        return F.logsigmoid(-(u - mu) * inv_s)

    def log_density(u):   # logistic pdf = sigmoid(t) sigmoid(-t) / s
        t = (u - mu) * inv_s
        return F.logsigmoid(t) + F.logsigmoid(-t) - log_s

    return _log_bin_mass(x, log_cdf, log_sf, log_density).flatten(1).sum(1)


def discretized_gaussian_log_prob(mean: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log P(x) of N(mean, sigma^2) discretised to 256 bins on [-1, 1] (Ho et al. 2020, eq. 13).
    mean, log_sigma, x: (N, *shape). Returns (N,)."""
    log_sigma = log_sigma.clamp(min=LOG_SCALE_MIN)
    inv_sigma = torch.exp(-log_sigma)

    def log_cdf(u):
        return torch.special.log_ndtr((u - mean) * inv_sigma)

    def log_sf(u):
        return torch.special.log_ndtr(-(u - mean) * inv_sigma)

    def log_density(u):
        t = (u - mean) * inv_sigma
        return -0.5 * (t ** 2 + math.log(2 * math.pi)) - log_sigma

    return _log_bin_mass(x, log_cdf, log_sf, log_density).flatten(1).sum(1)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round x to the 8-bit grid in [-1, 1] (clamping first)."""
    k = torch.round((x.clamp(-1, 1) + 1) * (BINS - 1) / 2)
    return k * 2 / (BINS - 1) - 1


class Likelihood:
    """p_theta(x | z) given the decoder's output `params` (N, P, *shape).

    `to_model` / `to_data` map between data space ([-1, 1]) and the space the likelihood
    models; `log_prob`, `mean` and `sample` work in model space.
    """

    name: str = ""
    n_params: int = 1
    discrete: bool = False   # True when log_prob is a probability of a discrete x (bits/dim exact)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[:, 0]

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError


def _randn_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)


def _rand_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(t.shape, generator=generator, device=t.device, dtype=t.dtype)


class Bernoulli(Likelihood):
    """Bernoulli pixels (binarised images); params[:, 0] are the logits."""

    name, n_params, discrete = "bernoulli", 1, True

    def to_model(self, x):
        return (x + 1) / 2            # [-1, 1] -> [0, 1]

    def to_data(self, x):
        return x * 2 - 1

    def log_prob(self, params, x):
        return bernoulli_log_prob(params[:, 0], x)

    def mean(self, params):
        return torch.sigmoid(params[:, 0])

    def sample(self, params, generator=None):
        return torch.bernoulli(self.mean(params), generator=generator)


class Gaussian(Likelihood):
    """Gaussian with a fixed standard deviation sigma (params[:, 0] = mean) or, when
    `learned`, a per-dimension one (params[:, 1] = log sigma^2, floored at 2 * LOG_SCALE_MIN)."""

    name, discrete = "gaussian", False

    def __init__(self, sigma: float = 0.1, learned: bool = False):
        self.sigma = sigma
        self.learned = learned
        self.n_params = 2 if learned else 1
        if learned:
            self.name = "gaussian_learned"

    def logvar(self, params):
        if self.learned:
            return params[:, 1].clamp(min=2 * LOG_SCALE_MIN)
        return torch.full_like(params[:, 0], 2 * math.log(self.sigma))

    def log_prob(self, params, x):
        return gaussian_log_prob(params[:, 0], self.logvar(params), x)

    def sample(self, params, generator=None):
        return params[:, 0] + torch.exp(0.5 * self.logvar(params)) * _randn_like(params[:, 0], generator)


class DiscretizedLogistic(Likelihood):
    """8-bit images: logistic(mu = params[:, 0], log s = params[:, 1]) discretised to 256 bins."""

    name, n_params, discrete = "discretized_logistic", 2, True

    def log_prob(self, params, x):
        return discretized_logistic_log_prob(params[:, 0], params[:, 1], x)

    def mean(self, params):
        return params[:, 0].clamp(-1, 1)

    def sample(self, params, generator=None):
        u = _rand_like(params[:, 0], generator).clamp(1e-5, 1 - 1e-5)
        s = torch.exp(params[:, 1].clamp(min=LOG_SCALE_MIN))
        return quantize(params[:, 0] + s * (torch.log(u) - torch.log1p(-u)))   # inverse logistic CDF


class DiscretizedGaussian(Likelihood):
    """8-bit images: N(mean = params[:, 0], sigma = exp(params[:, 1])) discretised to 256 bins."""

    name, n_params, discrete = "discretized_gaussian", 2, True

    def log_prob(self, params, x):
        return discretized_gaussian_log_prob(params[:, 0], params[:, 1], x)

    def mean(self, params):
        return params[:, 0].clamp(-1, 1)

    def sample(self, params, generator=None):
        sigma = torch.exp(params[:, 1].clamp(min=LOG_SCALE_MIN))
        return quantize(params[:, 0] + sigma * _randn_like(params[:, 0], generator))


DecoderName = Literal["bernoulli", "gaussian", "gaussian_learned", "discretized_logistic", "discretized_gaussian"]
DECODERS = typing.get_args(DecoderName)


def make_likelihood(name: str, sigma: float = 0.1) -> Likelihood:
    """The likelihood called `name` (one of DECODERS); `sigma` is the fixed Gaussian's std."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(sigma=sigma, learned=False)
    if name == "gaussian_learned":
        return Gaussian(learned=True)
    if name == "discretized_logistic":
        return DiscretizedLogistic()
    if name == "discretized_gaussian":
        return DiscretizedGaussian()
    raise choice_error("decoder", name, DECODERS)
