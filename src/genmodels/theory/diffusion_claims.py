"""Seed section 4 checked with the library's DDPM functions on 1-D problems whose optimal noise
predictor is known in closed form: Theorem 8 (eq. 4.9 = eq. 4.10, and eq. 4.8 converging to the
exact log p_theta(x_0) on Gaussian data), both also with a learned variance Sigma_t =
exp(v log beta_t + (1 - v) log beta~_t) (Nichol & Dhariwal eq. 15, the network's v fixed), and
Remark 7 (sigma_t^2 = beta_t vs beta~_t).

The schedule is Ho et al.'s linear one rescaled to T = 100 steps (beta from 1e-3 to 0.2, the
same beta_t T), so that everything runs in seconds. Results are nats per example (D = 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genmodels.diffusion.bound import bound_terms, direct_bound_mc
from genmodels.diffusion.gaussian_data import exact_bound_terms, exact_log_likelihood, optimal_eps_fn, with_learned_v
from genmodels.diffusion.loglik import log_likelihood_is
from genmodels.diffusion.samplers import ancestral
from genmodels.diffusion.schedule import NoiseSchedule, linear_betas
from genmodels.theory import plots
from genmodels.theory.check import Check
from genmodels.theory.densities import Mixture1D, optimal_eps, wasserstein1

GAUSSIAN_DATA = (0.5, 0.8)                                   # x_0 ~ N(m, s^2)
MODEL_FIT = (0.5, 0.3)                                       # eps_theta optimal for N(m', s'^2)
MIXTURE_DATA = Mixture1D((0.5, 0.5), (-0.8, 0.8), (0.2, 0.2))
Z_TOL = 4.0                                                  # agreement within 4 standard errors


def small_schedule(T: int = 100) -> NoiseSchedule:
    """Ho et al.'s linear schedule (1e-4 to 0.02 over 1000 steps) with beta_t T held fixed:
    beta from 0.1 / T to 20 / T (capped at 0.5 for T < 40)."""
    return NoiseSchedule.from_betas(linear_betas(T, 0.1 / T, min(20.0 / T, 0.5)))


def _mean_se(x: torch.Tensor) -> tuple[float, float]:
    return float(x.mean()), float(x.std() / math.sqrt(x.numel()))


def _model(sched: NoiseSchedule, m: float, s: float, v: float | None):
    """(eps_fn, variance): the optimal noise predictor for N(m, s^2) with sigma_t^2 = beta_t, or, with v,
    one that also returns v for the learned variance of Nichol & Dhariwal's eq. 15."""
    eps_fn = optimal_eps_fn(sched, m, s)
    return (eps_fn, "beta") if v is None else (with_learned_v(eps_fn, v), "learned")


def check_theorem8_bound(bound_terms_fn=bound_terms, direct_bound_fn=direct_bound_mc, *,
                         sched: NoiseSchedule | None = None, data: tuple[float, float] = GAUSSIAN_DATA,
                         n: int = 60000, seed: int = 0, v: float | None = None) -> Check:
    """Theorem 8: the bound L written as eq. 4.9 (one forward trajectory per x_0,
    `direct_bound_mc`) and as eq. 4.10 (closed-form KLs, `bound_terms`) agree. Both are Monte-Carlo
    estimates over n examples x_0 ~ N(m, s^2) with the optimal eps_theta; each is compared with
    the other and with eq. 4.10's expectation in closed form (`exact_bound_terms`), on the same
    x_0 (paired differences). With v, the model's variance is the learned Sigma_t of that v (eq. 15).
    Value: the largest |difference| in standard errors."""
    sched = sched or small_schedule()
    m, s = data
    g = torch.Generator().manual_seed(seed)
    x0 = (m + s * torch.randn(n, 1, generator=g, dtype=torch.float64))
    eps_fn, variance = _model(sched, m, s, v)
    l49 = direct_bound_fn(eps_fn, sched, x0, variance=variance, decoder="gaussian", generator=g)   # eq. 4.9
    terms = bound_terms_fn(eps_fn, sched, x0, variance=variance, decoder="gaussian", generator=g)  # eq. 4.10
    l410 = terms["total"]
    exact = exact_bound_terms(sched, m, s, x0, variance=variance, v=v)["total"].reshape(-1)
    pairs = {"eq. 4.9 - eq. 4.10": l49 - l410, "eq. 4.9 - closed form": l49 - exact,
             "eq. 4.10 - closed form": l410 - exact}
    details: dict = {"L eq. 4.9 (mean, s.e.)": _mean_se(l49), "L eq. 4.10 (mean, s.e.)": _mean_se(l410),
                     "L closed form (mean)": float(exact.mean())}
    z = {}
    for name, d in pairs.items():
        mean, se = _mean_se(d)
        z[name] = abs(mean) / se
        details[name] = {"mean": mean, "s.e.": se, "z": z[name]}
    value = max(z.values())
    L49, se49 = details["L eq. 4.9 (mean, s.e.)"]
    L410, se410 = details["L eq. 4.10 (mean, s.e.)"]
    return Check("Theorem 8, eq. 4.9 = eq. 4.10" + ("" if v is None else ", learned Sigma"),
                 f"L by eq. 4.9 = {L49:.4f} +- {se49:.4f}, by eq. 4.10 = {L410:.4f} +- {se410:.4f}, closed form "
                 f"{float(exact.mean()):.4f} (nats, N(m,s^2) data, T = {sched.T}, n = {n}"
                 f"{'' if v is None else f', Sigma_t of v = {v:g} (eq. 15)'}); max |diff| / s.e.",
                 value, f"< {Z_TOL:g} s.e.", Z_TOL, value < Z_TOL, details=details)


def check_theorem8_loglik(log_likelihood_fn=log_likelihood_is, *, sched: NoiseSchedule | None = None,
                          data: tuple[float, float] = GAUSSIAN_DATA, model: tuple[float, float] = MODEL_FIT,
                          ks: Sequence[int] = (1, 4, 16, 64, 256, 1024), n: int = 400, tol: float = 0.01,
                          seed: int = 0, plots_dir=None, v: float | None = None) -> Check:
    """Seed eq. 4.8: the importance-sampling estimate of log p_theta(x_0) over K forward
    trajectories (`log_likelihood_is`) converges to the exact log p_theta(x_0) as K grows; with
    K = 1 it is minus the integrand of eq. 4.9, a lower bound in expectation (Jensen).

    x_0 ~ N(m, s^2) (`data`); p_theta is the DDPM whose eps_theta is optimal for N(m', s'^2)
    (`model`, a deliberately mis-fitted model, so that q(x_{1:T} | x_0) differs from
    p_theta(x_{1:T} | x_0) and the importance weights vary), whose log p_theta(x_0) is known
    exactly (`exact_log_likelihood`: the model is linear-Gaussian). T = 20 steps. With v, the
    model's variance is the learned Sigma_t of that v (Nichol & Dhariwal eq. 15). Value:
    |mean over n x_0 of (estimate at the largest K - exact)|; the K = 1 gap must be negative."""
    sched = sched or small_schedule(20)
    m, s = data
    g = torch.Generator().manual_seed(seed)
    x0 = m + s * torch.randn(n, 1, generator=g, dtype=torch.float64)
    eps_fn, variance = _model(sched, *model, v)
    exact = exact_log_likelihood(sched, *model, x0, variance=variance, v=v).reshape(-1)
    bound = bound_terms(eps_fn, sched, x0, variance=variance, decoder="gaussian", generator=g)["total"]
    gaps, ses, ests = [], [], []
    for k in ks:
        est = log_likelihood_fn(eps_fn, sched, x0, num_trajectories=k, variance=variance, decoder="gaussian",
                                generator=g)                                              # seed eq. 4.8
        gap, se = _mean_se(est - exact)
        gaps.append(gap)
        ses.append(se)
        ests.append(float(est.mean()))
    value = abs(gaps[-1])
    jensen = gaps[0] < -2.0 * ses[0]
    plot = None
    if plots_dir is not None:
        plot = plots.loglik_convergence(plots_dir, list(ks), ests, ses, float(exact.mean()), float(bound.mean()))
    return Check("Theorem 8 / eq. 4.8, log p_theta(x_0)" if v is None else "Theorem 8 / eq. 4.8, learned Sigma",
                 f"|eq. 4.8 estimate - exact log p_theta(x_0)|, K = {ks[-1]} trajectories, mean over {n} x_0 "
                 f"(+- {ses[-1]:.4f}; at K = {ks[0]}: {gaps[0]:+.3f} +- {ses[0]:.3f}"
                 f"{'' if jensen else ', NOT below'}{'' if v is None else f'; Sigma_t of v = {v:g} (eq. 15)'})",
                 value, "0", tol, value <= tol and jensen, plot,
                 details={"K": list(ks), "mean(estimate - exact)": gaps, "s.e.": ses,
                          "exact (mean)": float(exact.mean()), "-L eq. 4.10 (mean)": -float(bound.mean())})


def check_remark7(eps_fn=None, *, bound_terms_fn=bound_terms, data: Mixture1D = MIXTURE_DATA,
                  sched: NoiseSchedule | None = None,
                  n: int = 20000, n_nll: int = 300, k_nll: int = 128, w1_tol: float = 0.04, seed: int = 0,
                  plots_dir=None) -> list[Check]:
    """Remark 7: sigma_t^2 = beta_t and sigma_t^2 = beta~_t, compared on a bimodal 1-D q(x_0) with
    the exact noise predictor E[eps | x_t] (T = 100; `eps_fn` replaces it, `bound_terms_fn` replaces
    the library's eq. 4.10). Returns two checks:

    bound:   for each choice, H(q) <= E[-log p_theta(x_0)] <= L, with L of eq. 4.10 (`bound_terms`,
             Gaussian decoder, n examples) and -log p_theta from eq. 4.8 (`log_likelihood_is`,
             k_nll trajectories on the first n_nll examples); both inequalities are tested on
             paired differences (KL(q || p_theta) = E[log q - log p_theta] >= 0 and
             E[L - (-log p_theta)] >= 0); the largest violation in standard errors.
    samples: the Wasserstein-1 distance of n ancestral samples (Algorithm 4.2) to q(x_0), for
             each choice, at most `w1_tol` (5% of q's standard deviation); n exact draws give
             the sampling-noise floor."""
    sched = sched or small_schedule()
    eps_fn = eps_fn or optimal_eps(data, sched)
    g = torch.Generator().manual_seed(seed)
    x0 = data.sample(n, g).unsqueeze(1)
    entropy = data.entropy()
    floor = wasserstein1(data.sample(n, g), data)
    rows, samples = {}, {}
    for variance in ("beta", "beta_tilde"):
        L = bound_terms_fn(eps_fn, sched, x0, variance=variance, decoder="gaussian", generator=g)["total"]
        nll = -log_likelihood_is(eps_fn, sched, x0[:n_nll], num_trajectories=k_nll, variance=variance,
                                 decoder="gaussian", generator=g)
        x_T = torch.randn(n, 1, generator=g, dtype=torch.float64)
        samples[variance] = ancestral(eps_fn, x_T, sched, generator=g, variance=variance)   # Algorithm 4.2
        log_q = data.log_prob(x0[:n_nll, 0])
        (L_mean, L_se), (nll_mean, nll_se) = _mean_se(L), _mean_se(nll)
        kl, kl_se = _mean_se(nll + log_q)                    # KL(q || p_theta) >= 0, paired on x_0
        slack, slack_se = _mean_se(L[:n_nll] - nll)          # L - (-log p_theta) >= 0, paired on x_0
        rows[variance] = {"L": L_mean, "L s.e.": L_se, "NLL": nll_mean, "NLL s.e.": nll_se,
                          "KL(q||p_theta)": kl, "KL s.e.": kl_se, "L - NLL": slack, "L - NLL s.e.": slack_se,
                          "W1": wasserstein1(samples[variance].reshape(-1), data),
                          # violations of H <= NLL <= L, in standard errors (positive = violated)
                          "z(H > NLL)": -kl / kl_se, "z(NLL > L)": -slack / slack_se}
    z = max(max(r["z(H > NLL)"], r["z(NLL > L)"]) for r in rows.values())
    w1 = max(r["W1"] for r in rows.values())
    b, bt = rows["beta"], rows["beta_tilde"]
    plot = None
    if plots_dir is not None:
        x, _ = data.grid(1001, width=5.0)
        plot = plots.remark7(plots_dir, x, data.prob(x), samples)
    return [
        Check("Remark 7, bound with beta_t vs beta~_t",
              f"H(q) <= -log p_theta (eq. 4.8) <= L (eq. 4.10) for both (bimodal q(x_0), T = {sched.T}): "
              f"L = {b['L']:.3f} vs {bt['L']:.3f} nats, KL(q || p_theta) = {b['KL(q||p_theta)']:.4f} vs "
              f"{bt['KL(q||p_theta)']:.4f}; largest violation in s.e.",
              z, f"< {Z_TOL:g} s.e.", Z_TOL, z < Z_TOL, details={"H(q)": entropy, **rows}),
        Check("Remark 7, samples with beta_t vs beta~_t",
              f"max W1(ancestral samples, q(x_0)): beta {b['W1']:.4f}, beta~ {bt['W1']:.4f} "
              f"(floor for {n} exact draws {floor:.4f})",
              w1, "similar, small", w1_tol, w1 <= w1_tol, plot,
              details={"W1 beta": b["W1"], "W1 beta~": bt["W1"], "W1 floor": floor}),
    ]
