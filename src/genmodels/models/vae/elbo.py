"""The VAE objective and likelihood bounds as pure functions (SPEC section 1).

`encoder(x) -> (mu, logvar)` is q_phi(z | x) = N(mu, diag exp(logvar)), each (N, L);
`decoder(z) -> params` gives p_theta(x | z) through a `Likelihood` (see decoders.py);
the prior is p(z) = N(0, I). All functions take model-space x (N, *shape) and return
per-example values (N,) in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

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
    return 0.5 * (mu ** 2 + torch.exp(logvar) - logvar - 1).sum(-1)   # SPEC 1: KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                   k: int | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2013, eq. 10 / SPEC 1).

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


@dataclass
class ElboTerms:
    """Per-example terms (N,): rec = log p_theta(x | z) at one z ~ q_phi(z | x), kl = KL(q || p),
    and the beta-weighted objective rec - beta * kl (equal to the ELBO when beta = 1)."""

    rec: torch.Tensor
    kl: torch.Tensor
    objective: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """The ELBO itself, rec - kl, whatever beta was used for the objective."""
        return self.rec - self.kl


def elbo(x: torch.Tensor, encoder: Encoder, decoder: Decoder, likelihood: Likelihood, *,
         beta: float = 1.0, generator: torch.Generator | None = None) -> ElboTerms:
    """ELBO(x) = E_q[log p_theta(x|z)] - KL(q_phi(z|x) || p(z)), one-sample estimate of the
    expectation with the KL in closed form (Kingma & Welling 2013, eq. 10; SPEC 1), and the
    beta-VAE objective E_q[log p_theta(x|z)] - beta KL (Higgins et al. 2017, eq. 4).

    x: (N, *shape) in model space. Returns ElboTerms of (N,) tensors.
    """
    mu, logvar = encoder(x)
    z = reparameterize(mu, logvar, generator)
    rec = likelihood.log_prob(decoder(z), x)
    kl = gaussian_kl(mu, logvar)
    return ElboTerms(rec=rec, kl=kl, objective=rec - beta * kl)


def iwae_bound(x: torch.Tensor, encoder: Encoder, decoder: Decoder, likelihood: Likelihood, *,
               K: int, chunk: int = 500, generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-weighted bound (Burda et al. 2015, eq. 8; SPEC 1)

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
        z = reparameterize(mu, logvar, generator, k=c)                     # (c, N, L)
        x_rep = x.unsqueeze(0).expand(c, *x.shape).reshape(c * n, *x.shape[1:])
        log_px_z = likelihood.log_prob(decoder(z.reshape(c * n, -1)), x_rep).view(c, n)
        log_w = log_px_z + log_standard_normal(z) - log_normal_diag(z, mu, logvar)   # log p(x, z_k) - log q(z_k | x)
        running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
        done += c
    return running - math.log(K)                                           # log (1/K) sum_k w_k
