"""Theorem 5 (Feller 1949) illustrated: for a small step beta the true reverse kernel
q(x_{t-1} | x_t) of a Gaussian diffusion is close to a Gaussian, even when q(x_{t-1}) is not.

q(x_{t-1} | x_t) is computed on a fine grid by Bayes' rule (seed eq. 4.1),
    q(x_{t-1} | x_t) = q(x_{t-1}) q(x_t | x_{t-1}) / q(x_t),
with the forward kernel q(x_t | x_{t-1}) = N(sqrt(1 - beta) x_{t-1}, beta) of the library's
schedule, and compared with the Gaussian of the same mean and variance by the KL divergence,
averaged over x_t ~ q(x_t). The divergence must shrink as beta -> 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from genmodels.diffusion.gaussian import gaussian_log_prob, q_step_mean_var
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.theory import plots
from genmodels.theory.check import Check
from genmodels.theory.densities import Mixture1D

# A bimodal, clearly non-Gaussian q(x_{t-1}).
Q_PREV = Mixture1D((0.4, 0.6), (-1.0, 0.8), (0.3, 0.4))
BETAS = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def reverse_kernel(q_prev: Mixture1D, beta: float, x_t: torch.Tensor, forward_kernel=q_step_mean_var,
                   n_grid: int = 4001) -> tuple[torch.Tensor, torch.Tensor, float]:
    """q(x_{t-1} | x_t) for each x_t (M,) on a grid of x_{t-1} (n_grid,), by Bayes (eq. 4.1).

    forward_kernel(sched, x_prev (n, 1), t (n,)) -> (mean, variance) of q(x_t | x_{t-1}), the
    library's `q_step_mean_var` by default. Returns (grid (n,), log density (M, n), spacing)."""
    x_prev, dx = q_prev.grid(n_grid, width=7.0)
    sched = NoiseSchedule.from_betas(torch.tensor([beta], dtype=torch.float64))
    t = torch.ones(n_grid, dtype=torch.long)
    mean, var = forward_kernel(sched, x_prev.unsqueeze(1), t)                 # (n, 1), (n, 1)
    log_fwd = gaussian_log_prob(x_t.unsqueeze(1), mean.T, torch.log(var).T)   # (M, n): log q(x_t | x_{t-1})
    log_joint = q_prev.log_prob(x_prev) + log_fwd                             # seed eq. 4.1 numerator
    log_kernel = log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True) - math.log(dx)
    return x_prev, log_kernel, dx


def gaussian_kl_gap(x: torch.Tensor, log_kernel: torch.Tensor, dx: float):
    """KL(k || N(mean_k, var_k)) for each row of a gridded log density (M, n): (M,), and the
    moment-matched Gaussians' log densities (M, n)."""
    k = log_kernel.exp()
    mean = (k * x).sum(1, keepdim=True) * dx
    var = (k * (x - mean) ** 2).sum(1, keepdim=True) * dx
    log_gauss = gaussian_log_prob(x, mean, torch.log(var))
    return (k * (log_kernel - log_gauss)).sum(1) * dx, log_gauss


def check_theorem5(q_prev: Mixture1D = Q_PREV, betas: Sequence[float] = BETAS, forward_kernel=q_step_mean_var,
                   *, n_xt: int = 200, tol: float = 1e-5, plots_dir=None) -> Check:
    """Theorem 5: E_{x_t ~ q(x_t)} KL(q(x_{t-1} | x_t) || moment-matched Gaussian) for each beta;
    passes when it decreases strictly as beta decreases and is below `tol` at the smallest beta.
    x_t runs over n_xt quantiles of q(x_t) = q_prev diffused by one step."""
    kls, examples = [], []
    for beta in betas:
        x_t = q_prev.diffused(1.0 - beta).quantiles(n_xt)                    # x_t ~ q(x_t)
        x, log_kernel, dx = reverse_kernel(q_prev, beta, x_t, forward_kernel)
        kl, log_gauss = gaussian_kl_gap(x, log_kernel, dx)
        kls.append(float(kl.mean()))
        if beta in (max(betas), min(betas)):
            i = int(kl.argmax())  # the least Gaussian kernel at this beta
            examples.append({"beta": beta, "x_t": float(x_t[i]), "x": x, "kernel": log_kernel[i].exp(),
                             "gaussian": log_gauss[i].exp()})
    ordered = sorted(zip(betas, kls, strict=True), reverse=True)
    decreasing = all(b < a for (_, a), (_, b) in itertools.pairwise(ordered))
    value = ordered[-1][1]
    (b1, k1), (b0, k0) = ordered[-2], ordered[-1]
    slope = math.log(k1 / k0) / math.log(b1 / b0) if k0 > 0 and k1 > 0 else float("nan")
    plot = plots.feller(plots_dir, [b for b, _ in ordered], [k for _, k in ordered], examples) if plots_dir else None
    return Check("Theorem 5 (Feller), Gaussian reverse kernel",
                 f"E KL(q(x_(t-1)|x_t) || Gaussian) at beta = {ordered[-1][0]:g} (bimodal q(x_(t-1)); "
                 f"{'strictly decreasing' if decreasing else 'NOT decreasing'} over beta = "
                 + ", ".join(f"{b:g}" for b, _ in ordered) + f"; KL ~ beta^{slope:.1f})",
                 value, "-> 0 as beta -> 0", tol, decreasing and value <= tol, plot,
                 details={"beta": [b for b, _ in ordered], "mean KL": [k for _, k in ordered],
                          "log-log slope at the smallest beta": slope})
