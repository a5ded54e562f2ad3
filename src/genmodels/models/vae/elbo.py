"""The VAE objectives and likelihood bounds as pure functions (Kingma & Welling 2013; Burda et al.
2015; docs/vae.md).

`encoder(x) -> (mu, logvar)` is q_phi(z | x) = N(mu, diag exp(logvar)), each (N, L);
`decoder(z) -> params` gives p_theta(x | z) through a `Likelihood` (see decoders.py);
the prior is p(z) = N(0, I). All functions take model-space x (N, *shape) and return
per-example values (N,) in nats. `log_weights` is the one place that computes the log
importance weights log p(x, z) - log q(z | x): the IWAE training objective (`iwae`) and the
IWAE evaluation bound (`iwae_bound`) both use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from genmodels.errors import ConfigError
from genmodels.models.vae.decoders import Likelihood

Encoder = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Decoder = Callable[[torch.Tensor], torch.Tensor]

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) in closed form, per example.

    mu, logvar: (N, L) with logvar = log sigma^2. Returns (N,).
    """
    # Kingma & Welling 2013, appendix B: KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)
    return 0.5 * (mu ** 2 + torch.exp(logvar) - logvar - 1).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                   k: int | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2013, eq. 10).

    mu, logvar: (N, L). Returns (N, L), or (k, N, L) with k independent draws when k is given.
    """
    shape = mu.shape if k is None else (k, *mu.shape)
    eps = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z | mu, diag exp(logvar)) summed over the last dim; broadcasts. (..., L) -> (...)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log p(z) for the prior N(0, I), summed over the last dim. (..., L) -> (...)."""
    return -0.5 * (LOG_2PI + z ** 2).sum(-1)


def log_likelihood(x: torch.Tensor, z: torch.Tensor, decoder: Decoder, likelihood: Likelihood) -> torch.Tensor:
    """log p_theta(x | z_j) for k draws per example: x (N, *shape), z (k, N, L) -> (k, N).
    Every draw of an example is scored against the same x (one binarisation for all k)."""
    k, n = z.shape[0], x.shape[0]
    x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    return likelihood.log_prob(decoder(z.reshape(k * n, -1)), x_rep).view(k, n)


def log_weights(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, decoder: Decoder, likelihood: Likelihood,
                *, k: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k reparameterised draws z_j ~ q_phi(z | x) = N(mu, diag exp(logvar)) per example and their
    log importance weights (Burda et al. 2015, eq. 8)

        log w_j = log p_theta(x, z_j) - log q_phi(z_j | x) = log p_theta(x | z_j) + log p(z_j) - log q_phi(z_j | x).

    x: (N, *shape) in model space; mu, logvar: (N, L). Returns (log_w, log p_theta(x | z_j)), each (k, N);
    differentiable in the parameters of the encoder and decoder through z (reparameterisation).
    """
    z = reparameterize(mu, logvar, generator, k=k)                         # (k, N, L)
    log_px_z = log_likelihood(x, z, decoder, likelihood)
    log_w = log_px_z + log_standard_normal(z) - log_normal_diag(z, mu, logvar)   # log p(x, z_j) - log q(z_j | x)
    return log_w, log_px_z


@dataclass
class ElboTerms:
    """Per-example terms (N,): rec = log p_theta(x | z) at one z ~ q_phi(z | x) (the mean over the
    k draws when k > 1), kl = KL(q || p), and the beta-weighted objective rec - beta * kl (equal
    to the ELBO when beta = 1)."""

    rec: torch.Tensor
    kl: torch.Tensor
    objective: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """The ELBO itself, rec - kl, whatever beta was used for the objective."""
        return self.rec - self.kl


def elbo(x: torch.Tensor, encoder: Encoder, decoder: Decoder, likelihood: Likelihood, *,
         beta: float = 1.0, k: int = 1, generator: torch.Generator | None = None) -> ElboTerms:
    """ELBO(x) = E_q[log p_theta(x|z)] - KL(q_phi(z|x) || p(z)), the expectation estimated with
    k draws of z per example (one by default) and the KL in closed form (Kingma & Welling 2013,
    eq. 10; k > 1 is Burda et al. 2015's "VAE with k samples"), and the beta-VAE
    objective E_q[log p_theta(x|z)] - beta KL (Higgins et al. 2017, eq. 4).

    x: (N, *shape) in model space. Returns ElboTerms of (N,) tensors.
    """
    if k < 1:
        raise ConfigError(f"elbo: k must be >= 1, got k={k}")
    mu, logvar = encoder(x)
    z = reparameterize(mu, logvar, generator, k=k)                         # (k, N, L)
    rec = log_likelihood(x, z, decoder, likelihood).mean(0)                # (1/k) sum_j log p(x | z_j)
    kl = gaussian_kl(mu, logvar)
    return ElboTerms(rec=rec, kl=kl, objective=rec - beta * kl)


@dataclass
class IwaeTerms:
    """The IWAE training objective's terms: bound = L_k(x) (N,), the log weights log_w (k, N),
    rec = (1/k) sum_j log p_theta(x | z_j) (N,) and kl = KL(q || p) in closed form (N,)."""

    bound: torch.Tensor
    log_w: torch.Tensor
    rec: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """A k-sample ELBO estimate at the same draws, rec - kl (closed-form KL): what the ELBO
        objective's logged `elbo` estimates, so the two objectives' logs compare."""
        return self.rec - self.kl


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """t in float32 when it came out of a bf16/fp16 autocast region, else unchanged (float64 stays)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def iwae(x: torch.Tensor, encoder: Encoder, decoder: Decoder, likelihood: Likelihood, *,
         k: int, generator: torch.Generator | None = None) -> IwaeTerms:
    """The IWAE training objective (Burda et al. 2015, eq. 8)

        L_k(x) = log (1/k) sum_j p_theta(x, z_j) / q_phi(z_j | x),   z_j ~ q_phi(z | x) reparameterised,

    all k draws at once (k * N decoder rows), the log-sum-exp taken with torch.logsumexp so
    that gradients flow through it stably (each draw's gradient weighted by its normalised
    importance weight w_j / sum_i w_i, Burda et al. section 3). L_1 is the one-sample ELBO with a
    Monte-Carlo KL.
    The latent densities and the log-sum-exp are computed in at least float32 under autocast.
    x: (N, *shape) in model space. Returns IwaeTerms.
    """
    if k < 1:
        raise ConfigError(f"iwae: k must be >= 1, got k={k}")
    mu, logvar = encoder(x)
    mu, logvar = _at_least_fp32(mu), _at_least_fp32(logvar)
    log_w, log_px_z = log_weights(x, mu, logvar, decoder, likelihood, k=k, generator=generator)
    log_w = _at_least_fp32(log_w)
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)                    # Burda et al. eq. 8
    return IwaeTerms(bound=bound, log_w=log_w, rec=_at_least_fp32(log_px_z).mean(0), kl=gaussian_kl(mu, logvar))


def iwae_bound(x: torch.Tensor, encoder: Encoder, decoder: Decoder, likelihood: Likelihood, *,
               K: int, chunk: int = 500, generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-weighted bound (Burda et al. 2015, eq. 8; docs/vae.md)

        L_K(x) = log (1/K) sum_k p_theta(x, z_k) / q_phi(z_k | x),   z_k ~ q_phi(z | x),

    with L_1 = ELBO <= L_K <= L_{K+1} <= log p(x) in expectation. The K samples are drawn
    `chunk` at a time and folded into a running log-sum-exp, so memory is O(chunk * N), not
    O(K * N). x: (N, *shape) in model space. Returns (N,).
    """
    if K < 1 or chunk < 1:
        raise ConfigError(f"iwae_bound: K and chunk must be >= 1, got K={K}, chunk={chunk}")
    mu, logvar = encoder(x)
    n = x.shape[0]
    running = torch.full((n,), -math.inf, device=x.device, dtype=mu.dtype)
    done = 0
    while done < K:
        c = min(chunk, K - done)
        log_w, _ = log_weights(x, mu, logvar, decoder, likelihood, k=c, generator=generator)   # (c, N)
        running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
        done += c
    return running - math.log(K)                                           # log (1/K) sum_k w_k
