"""Seed section 2 checked on known 1-D densities: Remark 1 (V is minus the BCE of eq. 2.2),
Proposition 2 (D* = p_data / (p_data + p_g), eq. 2.4), Theorem 3 (C(G) = -log 4 + 2 JSD) and
Proposition 4 (with D at its optimum, improving p_g drives C(G) to -log 4).

A discriminator D is handled by its logit l, D = sigmoid(l), as in `genmodels.models.gan.losses`;
at the optimum l*(x) = log p_data(x) - log p_g(x) (eq. 2.4 in logit form). Expectations are
midpoint-rule integrals on a fine grid, or minibatch means over quantile "samples" (deterministic
points whose averages are integrals), so that the library's minibatch losses become expectations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from genmodels.models.gan.losses import discriminator_loss, generator_loss
from genmodels.nets.mlp import MLP
from genmodels.theory import plots
from genmodels.theory.check import Check
from genmodels.theory.densities import Mixture1D

LOG4 = math.log(4.0)

# The densities of the checks: a bimodal p_data and a broad Gaussian p_g that overlaps it.
P_DATA = Mixture1D((0.5, 0.5), (-1.5, 1.0), (0.45, 0.6))
P_G = Mixture1D.gaussian(0.0, 1.3)
# Theorem 3's pairs (p_data, p_g); the last two have p_g = p_data.
PAIRS: tuple[tuple[str, Mixture1D, Mixture1D], ...] = (
    ("bimodal vs broad Gaussian", P_DATA, P_G),
    ("bimodal vs far Gaussian", P_DATA, Mixture1D.gaussian(3.0, 0.5)),
    ("N(0,1) vs N(0.5,1)", Mixture1D.gaussian(0.0, 1.0), Mixture1D.gaussian(0.5, 1.0)),
    ("N(0,1) vs N(0,2^2)", Mixture1D.gaussian(0.0, 1.0), Mixture1D.gaussian(0.0, 2.0)),
    ("bimodal vs itself", P_DATA, P_DATA),
    ("N(0,1) vs itself", Mixture1D.gaussian(0.0, 1.0), Mixture1D.gaussian(0.0, 1.0)),
)


def optimal_logit(log_p_data: torch.Tensor, log_p_g: torch.Tensor) -> torch.Tensor:
    """The logit of D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (seed eq. 2.4): log p_data - log p_g."""
    return log_p_data - log_p_g


def joint_grid(p: Mixture1D, q: Mixture1D, n: int = 20001) -> tuple[torch.Tensor, float]:
    """A grid covering both densities (each component +- 12 stds), and its spacing."""
    lo = min(float(p.grid(2, 12.0)[0][0]), float(q.grid(2, 12.0)[0][0]))
    hi = max(float(p.grid(2, 12.0)[0][-1]), float(q.grid(2, 12.0)[0][-1]))
    return torch.linspace(lo, hi, n, dtype=torch.float64), (hi - lo) / (n - 1)


def value_function(log_p_data: torch.Tensor, log_p_g: torch.Tensor, logit: torch.Tensor, dx: float) -> torch.Tensor:
    """V(D, G) = int p_data log D + p_g log(1 - D) dx (seed eq. 2.5) for D = sigmoid(logit) on a grid,
    with log D = -softplus(-l) and log(1 - D) = -softplus(l). All (n,) -> scalar."""
    return -(log_p_data.exp() * F.softplus(-logit) + log_p_g.exp() * F.softplus(logit)).sum() * dx


def jsd(log_p: torch.Tensor, log_q: torch.Tensor, dx: float) -> torch.Tensor:
    """D_JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, on a grid (nats)."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_pm = (log_p.exp() * (log_p - log_m)).sum() * dx
    kl_qm = (log_q.exp() * (log_q - log_m)).sum() * dx
    return 0.5 * kl_pm + 0.5 * kl_qm


def criterion(p_data: Mixture1D, p_g: Mixture1D, optimal_logit_fn=optimal_logit, n: int = 20001) -> float:
    """C(G) = max_D V(D, G) = V(D*_G, G) (seed eq. 2.6), by quadrature."""
    x, dx = joint_grid(p_data, p_g, n)
    lp, lq = p_data.log_prob(x), p_g.log_prob(x)
    return float(value_function(lp, lq, optimal_logit_fn(lp, lq), dx))


# ---------------------------------------------------------------------------------------------
# Remark 1


def check_remark1(discriminator_loss_fn=discriminator_loss, generator_loss_fn=generator_loss,
                  m: int = 512, seed: int = 0) -> Check:
    """Remark 1: on a minibatch, V(D, G) of eq. 2.1 (Algorithm 2.1 step 5) equals minus the
    discriminator's loss, i.e. -2 x the BCE of eq. 2.2 on the pooled data with real = 1, fake = 0,
    so maximising V over D is minimising the BCE (values and gradients agree). The generator's
    losses are eq. 2.3 (minimax) and -log D(G(z)) = BCE with label 1 (non-saturating)."""
    g = torch.Generator().manual_seed(seed)
    real_l = (3.0 * torch.randn(m, generator=g, dtype=torch.float64)).requires_grad_(True)
    fake_l = (3.0 * torch.randn(m, generator=g, dtype=torch.float64)).requires_grad_(True)
    d_real, d_fake = torch.sigmoid(real_l), torch.sigmoid(fake_l)
    V = torch.log(d_real).mean() + torch.log(1.0 - d_fake).mean()             # seed eq. 2.1
    h = torch.cat([d_real, d_fake])
    y = torch.cat([torch.ones(m), torch.zeros(m)]).double()
    bce = (-y * torch.log(h) - (1.0 - y) * torch.log(1.0 - h)).mean()          # seed eq. 2.2, N = 2m
    loss_d = discriminator_loss_fn(real_l, fake_l, "minimax")
    grad_V = torch.autograd.grad(V, (real_l, fake_l), retain_graph=True)
    grad_d = torch.autograd.grad(loss_d, (real_l, fake_l), retain_graph=True)
    with torch.no_grad():
        loss_g_minimax = generator_loss_fn(fake_l, "minimax")
        loss_g_nonsat = generator_loss_fn(fake_l, "nonsaturating")
        dev = {
            "|V + loss_D|": abs(float(V + loss_d)),
            "|V + 2 BCE_eq2.2|": abs(float(V + 2.0 * bce)),
            "max|grad V + grad loss_D|": max(float((a + b).abs().max()) for a, b in zip(grad_V, grad_d, strict=True)),
            "|loss_G(minimax) - mean log(1-D(G(z)))|":
                abs(float(loss_g_minimax - torch.log(1.0 - d_fake).mean())),                # seed eq. 2.3
            "|loss_G(nonsat.) + mean log D(G(z))|":
                abs(float(loss_g_nonsat + torch.log(d_fake).mean())),                       # seed Remark 1
        }
    value = max(dev.values())
    tol = 1e-9
    return Check("Remark 1 (eq. 2.1 vs 2.2)",
                 "max deviation of V(D,G) from -loss_D = -2 BCE(real=1, fake=0), gradients included; "
                 "generator losses vs eq. 2.3 / -log D",
                 value, "0", tol, value <= tol, details=dev)


# ---------------------------------------------------------------------------------------------
# Proposition 2


def train_discriminator(p_data: Mixture1D, p_g: Mixture1D, discriminator_loss_fn=discriminator_loss, *,
                        n: int = 512, steps: int = 1000, lr: float = 1e-2, hidden: int = 32,
                        seed: int = 0) -> tuple[torch.nn.Module, list[float]]:
    """Train an MLP discriminator l(x) (1 -> hidden -> hidden -> 1, SiLU) to convergence by full-
    batch Adam on discriminator_loss_fn(l(x_data), l(x_g), "minimax"), where x_data and x_g are the n
    quantiles of p_data and p_g (the loss is then the expectation of eq. 2.5 by the midpoint rule).
    Returns (net mapping (N, 1) -> (N, 1) logits, loss per step)."""
    g = torch.Generator().manual_seed(seed)
    net = MLP([1, hidden, hidden, 1], activation="silu").double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * (1.0 / math.sqrt(max(p.shape[-1], 1))))
    x_data = p_data.quantiles(n).unsqueeze(1)
    x_g = p_g.quantiles(n).unsqueeze(1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in range(steps):
        loss = discriminator_loss_fn(net(x_data).squeeze(1), net(x_g).squeeze(1), "minimax")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return net, losses


def check_prop2_trained(p_data: Mixture1D = P_DATA, p_g: Mixture1D = P_G, discriminator_loss_fn=discriminator_loss,
                        optimal_logit_fn=optimal_logit, *, steps: int = 1000, tol: float = 0.03,
                        seed: int = 0, plots_dir=None) -> Check:
    """Proposition 2: a discriminator trained to convergence matches D* = p_data / (p_data + p_g)
    (eq. 2.4). Value: max |D_net(x) - D*(x)| where (p_data + p_g) / 2 >= 2% of its maximum."""
    net, losses = train_discriminator(p_data, p_g, discriminator_loss_fn, steps=steps, seed=seed)
    x, dx = joint_grid(p_data, p_g, 2001)
    lp, lq = p_data.log_prob(x), p_g.log_prob(x)
    with torch.no_grad():
        d_net = torch.sigmoid(net(x.unsqueeze(1)).squeeze(1))
    d_star = torch.sigmoid(optimal_logit_fn(lp, lq))
    mix = 0.5 * (lp.exp() + lq.exp())
    region = mix >= 0.02 * mix.max()
    value = float((d_net - d_star).abs()[region].max())
    c_star = float(value_function(lp, lq, optimal_logit_fn(lp, lq), dx))
    plot = None
    if plots_dir is not None:
        plot = plots.discriminator(plots_dir, x, lp.exp(), lq.exp(), d_star, d_net, region)
    return Check("Proposition 2 (eq. 2.4), trained D",
                 f"max |D_net - D*| over the support, MLP trained {steps} steps with discriminator_loss",
                 value, "0", tol, value <= tol, plot,
                 details={"final loss_D": losses[-1], "-C(G) = min loss_D": -c_star,
                          "region": [float(x[region][0]), float(x[region][-1])]})


def check_prop2_argmax(p_data: Mixture1D = P_DATA, p_g: Mixture1D = P_G, optimal_logit_fn=optimal_logit, *,
                       trials: int = 200, seed: int = 0) -> Check:
    """Proposition 2 (exact): V(D*, G) >= V(D, G) for D = D* perturbed in logit space (random
    smooth and pointwise perturbations), and V's derivative in D vanishes at D*: the pointwise
    maximiser of a log y + b log(1 - y) is a / (a + b). Value: max_D V(D) - V(D*) (must be <= 0)
    and the norm of dV/dl at l*."""
    g = torch.Generator().manual_seed(seed)
    x, dx = joint_grid(p_data, p_g, 4001)
    lp, lq = p_data.log_prob(x), p_g.log_prob(x)
    l_star = optimal_logit_fn(lp, lq).detach().requires_grad_(True)
    v_star = value_function(lp, lq, l_star, dx)
    (grad,) = torch.autograd.grad(v_star, l_star)
    best = -math.inf
    for i in range(trials):
        scale = 0.5 * float(torch.rand(1, generator=g, dtype=torch.float64)) + 1e-3
        if i % 2 == 0:  # smooth perturbation: a random low-frequency wave
            freq, phase = torch.rand(2, generator=g, dtype=torch.float64)
            delta = scale * torch.sin(3.0 * freq * x + 6.283 * phase)
        else:           # pointwise noise
            delta = scale * torch.randn(x.shape, generator=g, dtype=torch.float64)
        best = max(best, float(value_function(lp, lq, l_star.detach() + delta, dx) - v_star.detach()))
    grad_norm = float(grad.abs().max() / dx)
    value = max(best, grad_norm)
    tol = 1e-9
    return Check("Proposition 2 (eq. 2.4), argmax of V",
                 f"max over {trials} perturbed D of V(D,G) - V(D*,G), and max |dV/dD| at D*",
                 value, "<= 0", tol, value <= tol,
                 details={"max V(D) - V(D*)": best, "max |dV/dl(x)| at l*": grad_norm})


# ---------------------------------------------------------------------------------------------
# Theorem 3


def check_theorem3(pairs: Sequence[tuple[str, Mixture1D, Mixture1D]] = PAIRS, optimal_logit_fn=optimal_logit,
                   jsd_fn=jsd, discriminator_loss_fn=discriminator_loss, *, n_quantiles: int = 20000,
                   plots_dir=None) -> list[Check]:
    """Theorem 3: C(G) = -log 4 + 2 JSD(p_data, p_g) for every pair (quadrature of eq. 2.6 at D*
    vs the JSD from its KL definition), and C(G) = -log 4 exactly when p_g = p_data (otherwise
    C(G) > -log 4). The library's discriminator_loss at D* on quantile samples gives -C(G) too.
    Returns two checks: the identity, and the minimum."""
    rows = []
    for name, p, q in pairs:
        x, dx = joint_grid(p, q)
        lp, lq = p.log_prob(x), q.log_prob(x)
        c = float(value_function(lp, lq, optimal_logit_fn(lp, lq), dx))      # seed eq. 2.6
        j = float(jsd_fn(lp, lq, dx))
        xd, xg = p.quantiles(n_quantiles), q.quantiles(n_quantiles)
        with torch.no_grad():
            c_lib = -float(discriminator_loss_fn(optimal_logit_fn(p.log_prob(xd), q.log_prob(xd)),
                                                 optimal_logit_fn(p.log_prob(xg), q.log_prob(xg)), "minimax"))
        rows.append({"pair": name, "same": p == q, "C(G)": c, "JSD": j, "-log4 + 2 JSD": -LOG4 + 2 * j,
                     "C(G) from discriminator_loss": c_lib})
    identity = max(abs(r["C(G)"] - r["-log4 + 2 JSD"]) for r in rows)
    lib_dev = max(abs(r["C(G)"] - r["C(G) from discriminator_loss"]) for r in rows)
    tol_identity, tol_lib = 1e-9, 2e-3
    equal_dev = max(abs(r["C(G)"] + LOG4) for r in rows if r["same"])
    min_gap = min(r["C(G)"] + LOG4 for r in rows if not r["same"])
    plot = plots.theorem3(plots_dir, rows) if plots_dir is not None else None
    return [
        Check("Theorem 3, C(G) = -log 4 + 2 JSD",
              f"max over {len(rows)} pairs of |C(G) - (-log 4 + 2 JSD)|; C(G) also via discriminator_loss "
              f"(max dev {lib_dev:.1e}, tolerance {tol_lib:g})",
              identity, "0", tol_identity,
              identity <= tol_identity and lib_dev <= tol_lib, plot, details={"pairs": rows}),
        Check("Theorem 3, minimum -log 4 iff p_g = p_data",
              "max |C(G) + log 4| over pairs with p_g = p_data (others: min C(G) + log 4 "
              f"= {min_gap:.3f} > 0)",
              equal_dev, "0 (= -log 4)", 1e-12, equal_dev <= 1e-12 and min_gap > 1e-6,
              details={"min over p_g != p_data of C(G) + log 4": min_gap}),
    ]


# ---------------------------------------------------------------------------------------------
# Proposition 4


def check_prop4(p_data: Mixture1D = Mixture1D.gaussian(1.0, 0.6), init: tuple[float, float] = (-1.5, 1.5),
                generator_loss_fn=generator_loss, optimal_logit_fn=optimal_logit, *, iterations: int = 300,
                lr: float = 0.05, n: int = 4000, tol: float = 1e-4, plots_dir=None) -> Check:
    """Proposition 4: the generator G(z) = mu + sigma z, z ~ N(0, 1) (p_g = N(mu, sigma^2)) is
    updated by gradient descent on the minimax generator loss E_z[log(1 - D*(G(z)))] (eq. 2.3),
    with D = D*_G recomputed at its optimum (eq. 2.4) before every step (Algorithm 2.1 with the
    inner loop run to convergence). C(G) is computed after every step; it must decrease to
    -log 4. z are the n quantiles of N(0, 1). Value: C(G_final) + log 4."""
    z = Mixture1D.gaussian(0.0, 1.0).quantiles(n)
    mu = torch.tensor(init[0], dtype=torch.float64, requires_grad=True)
    log_sigma = torch.tensor(math.log(init[1]), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([mu, log_sigma], lr=lr)
    history = []
    for _ in range(iterations + 1):
        p_g = Mixture1D.gaussian(mu.item(), log_sigma.exp().item())
        history.append(criterion(p_data, p_g, optimal_logit_fn, n=4001))
        if len(history) > iterations:
            break
        x = mu + log_sigma.exp() * z                                             # G(z)
        logit = optimal_logit_fn(p_data.log_prob(x), p_g.log_prob(x))            # D* of the current G, fixed
        loss = generator_loss_fn(logit, "minimax")                               # seed eq. 2.3
        opt.zero_grad()
        loss.backward()
        opt.step()
    increases = sum(b > a + 1e-12 for a, b in itertools.pairwise(history))
    value = history[-1] + LOG4
    plot = plots.criterion_curve(plots_dir, history) if plots_dir is not None else None
    return Check("Proposition 4, C(G) -> -log 4",
                 f"C(G) + log 4 after {iterations} generator steps with D = D* each step "
                 f"(from {history[0] + LOG4:.3f}; {increases} increases)",
                 value, "0", tol, 0.0 <= value <= tol and increases == 0, plot,
                 details={"C(G) start": history[0], "C(G) end": history[-1], "increases": increases,
                          "mu": mu.item(), "sigma": log_sigma.exp().item(),
                          "target": [p_data.mean, math.sqrt(p_data.var)]})
