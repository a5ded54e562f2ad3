"""Training objectives (seed section 4.1.4): L_simple of Algorithm 4.1, the true variational
bound L_vlb (one random term of Theorem 8's sum, rescaled), Nichol & Dhariwal's (2021) L_hybrid =
L_simple + lambda L_vlb for a learned variance (the mean seen by L_vlb through a stop-gradient),
and the plain sum "simple+vlb" (no stop-gradient; with a fixed variance its L_vlb term trains the
mean). The network may predict eps (default), x_0, v or Karras et al.'s preconditioned F ("edm",
`continuous.py`), and t may be fractional (a density over noise levels, `continuous.draw_steps`)
for L_simple.

Shapes: x0, eps, model outputs (B, ...); t (B,) int64 1-based. Per-example losses are (B,)
means over the data dimensions.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from genmodels.diffusion.continuous import SNRWeighting, alpha_bar_at, edm_output_to_eps, snr_weight_at, target_at
from genmodels.diffusion.gaussian import (
    Variance,
    discretized_gaussian_log_likelihood,
    eps_from_v,
    gaussian_log_prob,
    normal_kl,
    p_mean_var,
    predict_eps_from_x0,
    q_posterior_mean_var,
    q_sample,
    v_target,
)
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, choice_error

Prediction = Literal["eps", "x0", "v", "edm"]
PREDICTIONS = typing.get_args(Prediction)
LossType = Literal["simple", "vlb", "hybrid", "simple+vlb"]
LOSSES = typing.get_args(LossType)
Decoder = Literal["discretized", "gaussian"]
DECODERS = typing.get_args(Decoder)


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the first: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def _abar(sched: NoiseSchedule, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar at steps t (B,), integer or fractional, shaped (B, 1, ..., 1) like `like`, in its dtype."""
    return alpha_bar_at(sched, t).to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def training_target(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                    prediction: Prediction, sigma_data: float = 0.5) -> torch.Tensor:
    """What the network is trained to output at x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps:
    eps (Algorithm 4.1), x_0, v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022), or
    Karras et al.'s F_target ("edm", `continuous.target_at`). t: integer steps, or fractional ones
    (then every target is computed from abar(t), `continuous.alpha_bar_at`)."""
    if prediction == "edm" or t.is_floating_point():
        return target_at(x0, eps, _abar(sched, t, x0), prediction, sigma_data)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return v_target(sched, x0, t, eps)
    raise choice_error("prediction target", prediction, PREDICTIONS)


def output_to_eps(sched: NoiseSchedule, output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                  prediction: Prediction, sigma_data: float = 0.5) -> torch.Tensor:
    """Convert a network output of the given kind into the noise prediction eps_theta(x_t, t)."""
    if prediction == "edm":
        return edm_output_to_eps(output, xt, _abar(sched, t, xt), sigma_data)
    if prediction == "eps":
        return output
    if prediction == "x0":
        return predict_eps_from_x0(sched, xt, t, output)
    if prediction == "v":
        return eps_from_v(sched, xt, t, output)
    raise choice_error("prediction target", prediction, PREDICTIONS)


def output_to_eps_at(output: torch.Tensor, xt: torch.Tensor, alpha_bar: torch.Tensor,
                     prediction: Prediction, sigma_data: float = 0.5) -> torch.Tensor:
    """`output_to_eps` at a noise level given by abar itself (alpha_bar broadcastable to x_t), for
    fractional steps between the schedule's own (the probability-flow ODE):
    x0: eps = (x_t - sqrt(abar) x0_hat) / sqrt(1 - abar); v: eps = sqrt(1 - abar) x_t + sqrt(abar) v;
    edm: `continuous.edm_output_to_eps`."""
    if prediction == "edm":
        return edm_output_to_eps(output, xt, alpha_bar, sigma_data)
    if prediction == "eps":
        return output
    if prediction == "x0":
        return (xt - alpha_bar.sqrt() * output) / (1.0 - alpha_bar).sqrt()
    if prediction == "v":
        return (1.0 - alpha_bar).sqrt() * xt + alpha_bar.sqrt() * output
    raise choice_error("prediction target", prediction, PREDICTIONS)


def snr(sched: NoiseSchedule, t: torch.Tensor) -> torch.Tensor:
    """The signal-to-noise ratio SNR(t) = abar_t / (1 - abar_t) of x_t given x_0, (B,) float64."""
    abar = sched.alpha_bar.to(t.device)[t - 1]
    return abar / (1.0 - abar)


def min_snr_weight(sched: NoiseSchedule, t: torch.Tensor, prediction: Prediction, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023), (B,) float32.

    The paper weights the x_0 error ||x_0 - x0_hat||^2 by min(SNR(t), gamma). The same weighting
    expressed on each target's own squared error, using x_0 - x0_hat = -(eps - eps_hat) / sqrt(SNR)
    and x_0 - x0_hat = -sqrt(1 - abar_t) (v - v_hat), with 1 - abar_t = 1 / (1 + SNR):
        x0:  min(SNR, gamma)
        eps: min(SNR, gamma) / SNR
        v:   min(SNR, gamma) / (SNR + 1)
    (dividing the v error by SNR instead of SNR + 1 is a mistake that peer libraries have made)."""
    s = snr(sched, t)
    clipped = s.clamp(max=gamma)
    if prediction == "x0":
        w = clipped
    elif prediction == "eps":
        w = clipped / s
    elif prediction == "v":
        w = clipped / (s + 1.0)
    else:
        raise choice_error("prediction target", prediction, PREDICTIONS)
    return w.float()


def simple_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|| target - output ||^2 averaged over dimensions, per example (Algorithm 4.1, step 5). (B,)."""
    return mean_flat((target - output) ** 2)


def vlb_term(sched: NoiseSchedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, eps_theta: torch.Tensor,
             variance: Variance = "beta", decoder: Decoder = "discretized",
             v: torch.Tensor | None = None) -> torch.Tensor:
    """One term of Theorem 8 (seed eq. 4.10) per example, in nats per dimension, (B,):
    for t >= 2, L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) (closed-form Gaussian KL);
    for t = 1, L_0 = -log p_theta(x_0 | x_1) with the discretised Gaussian decoder of Ho et al.
    (images on the 8-bit grid) or a continuous Gaussian decoder (`decoder="gaussian"`).
    With variance = "learned", p_theta's variance is Sigma_theta from the network's v (B, ...)."""
    mu_tilde, _, log_beta_tilde = q_posterior_mean_var(sched, x0, xt, t)
    mean, _, logvar = p_mean_var(sched, eps_theta, xt, t, variance, v=v)
    kl = mean_flat(normal_kl(mu_tilde, log_beta_tilde, mean, logvar))
    if decoder == "discretized":
        nll0 = -mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar))
    elif decoder == "gaussian":
        nll0 = -mean_flat(gaussian_log_prob(x0, mean, logvar))
    else:
        raise choice_error("decoder", decoder, DECODERS)
    return torch.where(t == 1, nll0, kl)


def _check_loss(loss: str, variance: str, v: torch.Tensor | None, t: torch.Tensor) -> None:
    """ConfigError for a loss that does not go with the variance or with fractional steps."""
    if loss not in LOSSES:
        raise choice_error("loss", loss, LOSSES)
    if loss == "hybrid" and (variance != "learned" or v is None):
        raise ConfigError("loss 'hybrid' is Nichol & Dhariwal's L_hybrid, whose L_vlb term trains a learned "
                          "variance (model.learn_sigma); with a fixed variance use 'simple+vlb'")
    if loss != "simple" and t.is_floating_point():
        raise ConfigError(f"loss {loss!r} sums the Theorem 8 terms of integer steps; fractional steps (a "
                          "density over noise levels) train L_simple only")


def _example_weights(sched: NoiseSchedule, t: torch.Tensor, prediction: Prediction, snr_gamma: float,
                     snr_weighting: SNRWeighting, sigma_data: float,
                     t_weights: torch.Tensor | None) -> torch.Tensor | None:
    """(B,) weights of L_simple's per-example errors: the SNR weighting (min-SNR-gamma of Hang et al.
    2023 on integer steps, else `continuous.snr_weight_at`) times the importance weights of t, or None."""
    weights = None
    if snr_gamma > 0:
        weights = (min_snr_weight(sched, t, prediction, snr_gamma)
                   if snr_weighting == "min" and prediction != "edm" and not t.is_floating_point() else
                   snr_weight_at(alpha_bar_at(sched, t), prediction, snr_gamma, snr_weighting, sigma_data))
    if t_weights is not None:
        weights = t_weights if weights is None else weights * t_weights
    return weights


def diffusion_loss(sched: NoiseSchedule, output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor,
                   t: torch.Tensor, eps: torch.Tensor, *, loss: LossType = "simple",
                   prediction: Prediction = "eps", variance: Variance = "beta",
                   hybrid_lambda: float = 1e-3, decoder: Decoder = "discretized",
                   snr_gamma: float = 0.0, v: torch.Tensor | None = None,
                   t_weights: torch.Tensor | None = None, snr_weighting: SNRWeighting = "min",
                   sigma_data: float = 0.5) -> dict[str, torch.Tensor]:
    """The training loss for a minibatch, given the network output at (x_t, t).

    simple:     L_simple = E || target - output ||^2 (Algorithm 4.1; target by `prediction`); with
                snr_gamma > 0 each example's error is weighted by `min_snr_weight` (Hang et al. 2023),
                or with snr_weighting = "soft-min" by Crowson et al.'s soft minimum
                (`continuous.snr_weight_at`). t may be fractional (a density over noise levels).
    vlb:        L_vlb = T * L_{t-1}(x_0, t) in bits/dim, an unbiased one-sample estimate of the sum in
                eq. 4.10 without the constant L_T (t ~ Unif{1..T}); trains the mean and, when
                learned, the variance.
    hybrid:     L_hybrid = L_simple + hybrid_lambda * L_vlb (Nichol & Dhariwal 2021, sec. 3.1,
                lambda = 0.001) for a learned variance (variance = "learned", v given): L_vlb sees
                the mean through a stop-gradient, so it trains Sigma_theta alone and L_simple the mean.
    simple+vlb: L_simple + hybrid_lambda * L_vlb without the stop-gradient (with a fixed variance its
                L_vlb term trains the mean; this was called "hybrid" before learned variances existed).
    v: (B, ...) the network's variance interpolation (variance = "learned"). t_weights: (B,)
    importance weights 1 / (T p_t) when t was drawn from p_t instead of uniformly (Nichol & Dhariwal
    sec. 3.3); every per-example term is multiplied by them, so each stays an unbiased estimate.
    Returns {"loss": scalar to minimise, "l_simple": scalar (unweighted), "l_vlb": scalar (bits/dim),
    "vlb_terms": (B,) the detached per-example L_{t-1} in nats/dim (the history of `t_sampler`)}."""
    _check_loss(loss, variance, v, t)
    target = training_target(sched, x0, t, eps, prediction, sigma_data)
    per_example = simple_loss(output.float(), target.float())
    l_simple = per_example.mean()
    out = {"l_simple": l_simple}
    weights = _example_weights(sched, t, prediction, snr_gamma, snr_weighting, sigma_data, t_weights)
    weighted = l_simple if weights is None else (weights * per_example).mean()
    if loss == "simple":
        out["loss"] = weighted
        return out
    # L_hybrid: stop-gradient on the mean in the L_vlb term (Nichol & Dhariwal sec. 3.1)
    mean_output = output.detach() if loss == "hybrid" else output
    eps_theta = output_to_eps(sched, mean_output.float(), xt.float(), t, prediction, sigma_data)
    terms = vlb_term(sched, x0.float(), xt.float(), t, eps_theta, variance, decoder,
                     v=None if v is None else v.float())                             # (B,) nats/dim
    per_vlb = sched.T * terms / math.log(2.0)
    l_vlb = (per_vlb if t_weights is None else t_weights * per_vlb).mean()
    out["l_vlb"] = l_vlb
    out["vlb_terms"] = terms.detach()
    out["loss"] = l_vlb if loss == "vlb" else weighted + hybrid_lambda * l_vlb
    return out


def sample_training_inputs(sched: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator | None,
                           t: torch.Tensor | None = None):
    """Algorithm 4.1, steps 3-4: t ~ Unif{1..T}, eps ~ N(0, I), x_t = q_sample(x_0, t, eps).
    t: steps drawn elsewhere (an importance sampler, `t_sampler.py`, (B,) int64, or a density over
    noise levels, `continuous.draw_steps`, (B,) float64 fractional steps); None draws them
    uniformly. Returns (t (B,), eps (B, ...), x_t (B, ...)) on x0's device."""
    if t is None:
        t = torch.randint(1, sched.T + 1, (x0.shape[0],), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    if t.is_floating_point():
        abar = _abar(sched, t, x0)
        return t, eps, abar.sqrt() * x0 + (1.0 - abar).sqrt() * eps
    return t, eps, q_sample(sched, x0, t, eps)
