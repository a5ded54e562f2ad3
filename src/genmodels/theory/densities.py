"""Known 1-D densities for the checks: Gaussian mixtures on a grid, their quantiles, their
diffused marginals q(x_t) and the exact noise predictor E[eps | x_t] of Algorithm 4.1.

All tensors are float64. A mixture sum_k w_k N(m_k, s_k^2) is the "p_data" / "p_g" of the GAN
checks and the q(x_0) of the diffusion checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genmodels.diffusion.schedule import NoiseSchedule, gather
from genmodels.errors import ConfigError


@dataclass(frozen=True)
class Mixture1D:
    """p(x) = sum_k w_k N(x; m_k, s_k^2). weights are normalised on construction."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]

    def __post_init__(self):
        if not (len(self.weights) == len(self.means) == len(self.stds) >= 1):
            raise ConfigError("a mixture needs as many weights, means and stds (at least one)")
        if min(self.weights) <= 0 or min(self.stds) <= 0:
            raise ConfigError("mixture weights and stds must be positive")
        total = float(sum(self.weights))
        object.__setattr__(self, "weights", tuple(float(w) / total for w in self.weights))

    @classmethod
    def gaussian(cls, mean: float, std: float) -> Mixture1D:
        """A single Gaussian N(mean, std^2)."""
        return cls((1.0,), (float(mean),), (float(std),))

    def _params(self):
        w = torch.tensor(self.weights, dtype=torch.float64)
        m = torch.tensor(self.means, dtype=torch.float64)
        s = torch.tensor(self.stds, dtype=torch.float64)
        return w, m, s

    def component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; m_k, s_k^2): x (...) -> (..., K)."""
        w, m, s = self._params()
        z = (x.double().unsqueeze(-1) - m) / s
        return torch.log(w) - 0.5 * z**2 - torch.log(s) - 0.5 * math.log(2 * math.pi)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), elementwise: x (...) -> (...)."""
        return torch.logsumexp(self.component_log_probs(x), dim=-1)

    def prob(self, x: torch.Tensor) -> torch.Tensor:
        """p(x), elementwise."""
        return self.log_prob(x).exp()

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """P(X <= x), elementwise."""
        w, m, s = self._params()
        return (w * torch.special.ndtr((x.double().unsqueeze(-1) - m) / s)).sum(-1)

    @property
    def mean(self) -> float:
        w, m, _ = self._params()
        return float((w * m).sum())

    @property
    def var(self) -> float:
        w, m, s = self._params()
        return float((w * (s**2 + m**2)).sum()) - self.mean**2

    def quantiles(self, n: int) -> torch.Tensor:
        """The n quantiles F^{-1}((i + 1/2) / n), i = 0..n-1, by bisection: (n,).

        A deterministic "sample" whose empirical averages are midpoint-rule integrals, so that a
        loss written as a minibatch mean (e.g. `discriminator_loss`) becomes an expectation."""
        u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        w, m, s = self._params()
        lo = torch.full_like(u, float((m - 12 * s).min()))
        hi = torch.full_like(u, float((m + 12 * s).max()))
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n independent draws: (n,)."""
        w, m, s = self._params()
        k = torch.multinomial(w, n, replacement=True, generator=generator)
        return m[k] + s[k] * torch.randn(n, generator=generator, dtype=torch.float64)

    def diffused(self, alpha_bar: float) -> Mixture1D:
        """q(x_t) = int q(x_0) q(x_t | x_0) dx_0 for q(x_0) = self and abar_t = alpha_bar:
        the mixture with means sqrt(abar) m_k and variances abar s_k^2 + 1 - abar (seed 4.1.1)."""
        a = float(alpha_bar)
        return Mixture1D(self.weights, tuple(math.sqrt(a) * m for m in self.means),
                         tuple(math.sqrt(a * s**2 + 1.0 - a) for s in self.stds))

    def entropy(self, n: int = 20001) -> float:
        """Differential entropy -int p log p, by the midpoint rule on a wide grid (nats)."""
        x, dx = self.grid(n)
        lp = self.log_prob(x)
        return float(-(lp.exp() * lp).sum() * dx)

    def grid(self, n: int, width: float = 8.0) -> tuple[torch.Tensor, float]:
        """n evenly spaced points covering every component +- width stds, and the spacing."""
        _, m, s = self._params()
        lo, hi = float((m - width * s).min()), float((m + width * s).max())
        x = torch.linspace(lo, hi, n, dtype=torch.float64)
        return x, (hi - lo) / (n - 1)


def optimal_eps(mixture: Mixture1D, sched: NoiseSchedule):
    """The noise predictor that minimises Algorithm 4.1's loss for q(x_0) = `mixture`:
    eps*(x_t, t) = E[eps | x_t] = sum_k r_k(x_t) sqrt(1 - abar_t) (x_t - sqrt(abar_t) m_k) / v_k,
    v_k = abar_t s_k^2 + 1 - abar_t, r_k(x_t) the posterior probability of component k.

    Returns eps_fn(x_t (B, 1), t (B,) int64 1-based) -> (B, 1), in x_t's dtype."""
    w, m, s = mixture._params()

    def eps_fn(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = gather(sched.alpha_bar, t, xt).double()                      # (B, 1)
        v = abar * s**2 + 1.0 - abar                                        # (B, K)
        diff = xt.double() - abar.sqrt() * m                                # (B, K)
        log_r = torch.log(w) - 0.5 * diff**2 / v - 0.5 * torch.log(v)
        r = torch.softmax(log_r, dim=-1)
        eps = (r * (1.0 - abar).sqrt() * diff / v).sum(-1, keepdim=True)
        return eps.to(xt.dtype)

    return eps_fn


def wasserstein1(samples: torch.Tensor, mixture: Mixture1D, n_grid: int = 4001) -> float:
    """W_1(empirical distribution of `samples` (N,), mixture) = int |F_N(x) - F(x)| dx (grid)."""
    x, dx = mixture.grid(n_grid, width=10.0)
    lo = min(float(x[0]), float(samples.min()))
    hi = max(float(x[-1]), float(samples.max()))
    x = torch.linspace(lo, hi, n_grid, dtype=torch.float64)
    dx = (hi - lo) / (n_grid - 1)
    sorted_s = samples.double().flatten().sort().values
    f_n = torch.searchsorted(sorted_s, x, right=True).double() / sorted_s.numel()
    return float((f_n - mixture.cdf(x)).abs().sum() * dx)
