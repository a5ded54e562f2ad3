"""Training objectives (seed section 4.1.4): L_simple of Algorithm 4.1, the true variational
bound L_vlb (one random term of Theorem 8's sum, rescaled), and the hybrid L_simple + lambda
L_vlb of Nichol & Dhariwal (2021). The network may predict eps (default), x_0 or v.

Shapes: x0, eps, model outputs (B, ...); t (B,) int64 1-based. Per-example losses are (B,)
means over the data dimensions.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from genmodels.diffusion.gaussian import (
    Variance,
    discretized_gaussian_log_likelihood,
    eps_from_v,
    gaussian_log_prob,
    normal_kl,
    p_mean_var,
    predict_eps_from_x0,
    predict_x0_from_eps,
    q_posterior_mean_var,
    q_sample,
    v_target,
)
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import choice_error

Prediction = Literal["eps", "x0", "v"]
PREDICTIONS = ("eps", "x0", "v")
LossType = Literal["simple", "vlb", "hybrid"]
LOSSES = ("simple", "vlb", "hybrid")
Decoder = Literal["discretized", "gaussian"]
DECODERS = ("discretized", "gaussian")


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the first: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def training_target(sched: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                    prediction: Prediction) -> torch.Tensor:
    """What the network is trained to output at x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps:
    eps (Algorithm 4.1), x_0, or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022)."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return v_target(sched, x0, t, eps)
    raise choice_error("prediction target", prediction, PREDICTIONS)


def output_to_eps(sched: NoiseSchedule, output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                  prediction: Prediction) -> torch.Tensor:
    """Convert a network output of the given kind into the noise prediction eps_theta(x_t, t)."""
    if prediction == "eps":
        return output
    if prediction == "x0":
        return predict_eps_from_x0(sched, xt, t, output)
    if prediction == "v":
        return eps_from_v(sched, xt, t, output)
    raise choice_error("prediction target", prediction, PREDICTIONS)


def simple_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|| target - output ||^2 averaged over dimensions, per example (Algorithm 4.1, step 5). (B,)."""
    return mean_flat((target - output) ** 2)


def vlb_term(sched: NoiseSchedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, eps_theta: torch.Tensor,
             variance: Variance = "beta", decoder: Decoder = "discretized") -> torch.Tensor:
    """One term of Theorem 8 (seed eq. 4.10) per example, in nats per dimension, (B,):
    for t >= 2, L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) (closed-form Gaussian KL);
    for t = 1, L_0 = -log p_theta(x_0 | x_1) with the discretised Gaussian decoder of Ho et al.
    (images on the 8-bit grid) or a continuous Gaussian decoder (`decoder="gaussian"`)."""
    mu_tilde, _, log_beta_tilde = q_posterior_mean_var(sched, x0, xt, t)
    mean, _, logvar = p_mean_var(sched, eps_theta, xt, t, variance)
    kl = mean_flat(normal_kl(mu_tilde, log_beta_tilde, mean, logvar))
    if decoder == "discretized":
        nll0 = -mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar))
    elif decoder == "gaussian":
        nll0 = -mean_flat(gaussian_log_prob(x0, mean, logvar))
    else:
        raise choice_error("decoder", decoder, DECODERS)
    return torch.where(t == 1, nll0, kl)


def diffusion_loss(sched: NoiseSchedule, output: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor,
                   t: torch.Tensor, eps: torch.Tensor, *, loss: LossType = "simple",
                   prediction: Prediction = "eps", variance: Variance = "beta",
                   hybrid_lambda: float = 1e-3, decoder: Decoder = "discretized") -> dict[str, torch.Tensor]:
    """The training loss for a minibatch, given the network output at (x_t, t).

    simple: L_simple = E || target - output ||^2 (Algorithm 4.1; target by `prediction`).
    vlb:    L_vlb = T * L_{t-1}(x_0, t) in bits/dim, an unbiased one-sample estimate of the sum in
            eq. 4.10 without the constant L_T (t ~ Unif{1..T}).
    hybrid: L_simple + hybrid_lambda * L_vlb (Nichol & Dhariwal 2021, lambda = 0.001).
    Returns {"loss": scalar to minimise, "l_simple": scalar, "l_vlb": scalar (bits/dim)}."""
    if loss not in LOSSES:
        raise choice_error("loss", loss, LOSSES)
    target = training_target(sched, x0, t, eps, prediction)
    l_simple = simple_loss(output.float(), target.float()).mean()
    out = {"l_simple": l_simple}
    if loss == "simple":
        out["loss"] = l_simple
        return out
    eps_theta = output_to_eps(sched, output.float(), xt.float(), t, prediction)
    l_vlb = (sched.T * vlb_term(sched, x0.float(), xt.float(), t, eps_theta, variance, decoder)).mean() / math.log(2.0)
    out["l_vlb"] = l_vlb
    out["loss"] = l_vlb if loss == "vlb" else l_simple + hybrid_lambda * l_vlb
    return out


def sample_training_inputs(sched: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator | None):
    """Algorithm 4.1, steps 3-4: t ~ Unif{1..T}, eps ~ N(0, I), x_t = q_sample(x_0, t, eps).
    Returns (t (B,), eps (B, ...), x_t (B, ...)) on x0's device."""
    t = torch.randint(1, sched.T + 1, (x0.shape[0],), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return t, eps, q_sample(sched, x0, t, eps)
