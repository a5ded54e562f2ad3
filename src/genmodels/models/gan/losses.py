"""GAN objectives as pure functions of the discriminator's logits.

The discriminator D(x) = sigmoid(l(x)) of the seed is represented by its logit l(x) (an
unbounded score), so every log D and log(1 - D) is computed by the numerically stable
binary cross-entropy on logits (seed eq. 2.2), never as log(sigmoid(.)) in two steps:
    -log D(x)       = BCE(l, 1) = softplus(-l)
    -log(1 - D(x))  = BCE(l, 0) = softplus(l)

Kinds (`LOSS_KINDS`):
- "minimax"        Goodfellow et al. 2014: D ascends V(D, G) (seed eq. 2.1); G descends
                   E_z[log(1 - D(G(z)))] (seed eq. 2.3).
- "nonsaturating"  as above for D; G descends -E_z[log D(G(z))] (seed Remark 1, Algorithm 2.1
                   step 8). The default.
- "hinge"          Lim & Ye 2017 / Miyato et al. 2018: D descends E[relu(1 - l(x))] +
                   E[relu(1 + l(G(z)))]; G descends -E[l(G(z))].
- "wasserstein"    WGAN-GP (Gulrajani et al. 2017): the critic descends E[l(G(z))] - E[l(x)]
                   (+ lambda * gradient_penalty); G descends -E[l(G(z))].
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from genmodels.errors import choice_error

LossKind = Literal["minimax", "nonsaturating", "hinge", "wasserstein"]
LOSS_KINDS: tuple[str, ...] = typing.get_args(LossKind)
BCE_KINDS: tuple[str, ...] = ("minimax", "nonsaturating")


def _check_kind(kind: str) -> None:
    if kind not in LOSS_KINDS:
        raise choice_error("GAN loss", kind, LOSS_KINDS)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "nonsaturating",
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """The discriminator's loss (a scalar to DEscend).

    real_logits: (m,) l(x^(i)) on a data minibatch; fake_logits: (m,) l(G(z^(i))).
    For "minimax"/"nonsaturating" this is -V(D, G) estimated on the minibatch, i.e. the
    binary cross-entropy with label 1 for data and 0 for samples (seed eq. 2.2), so that
    descending it is the gradient ascent of Algorithm 2.1 step 5. `label_smoothing` s > 0
    gives one-sided label smoothing (Salimans et al. 2016): real targets 1 - s, fake targets
    stay 0. It only applies to the cross-entropy kinds.
    """
    _check_kind(kind)
    if kind in BCE_KINDS:
        real_target = torch.full_like(real_logits, 1.0 - label_smoothing)
        # seed eq. 2.1 / 2.2: -(1/m) sum [log D(x) + log(1 - D(G(z)))]
        return (F.binary_cross_entropy_with_logits(real_logits, real_target)
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    # wasserstein: the critic maximises E[l(x)] - E[l(G(z))]
    return fake_logits.mean() - real_logits.mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss (a scalar to descend) from fake_logits (m,) = l(G(z^(i))).

    "minimax":       (1/m) sum log(1 - D(G(z)))    = -BCE(l, 0)   (seed eq. 2.3); its gradient
                     d/dl = -sigmoid(l) vanishes when D(G(z)) -> 0 (early training).
    "nonsaturating": -(1/m) sum log D(G(z))         =  BCE(l, 1)   (seed Remark 1); its gradient
                     d/dl = sigmoid(l) - 1 -> -1 when D(G(z)) -> 0.
    "hinge", "wasserstein": -(1/m) sum l(G(z)).
    """
    _check_kind(kind)
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))  # seed eq. 2.3
    if kind == "nonsaturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))  # seed Remark 1
    return -fake_logits.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty E[(||grad_x_hat l(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017, eq. 3).

    real, fake: (m, ...) minibatches of the same shape; x_hat = eps * real + (1 - eps) * fake with
    eps ~ U(0, 1) per example (drawn from `generator`). `critic` maps (m, ...) -> (m,) logits; it
    must not use batch normalisation (the penalty is per example). Returns a scalar that keeps
    the graph to the critic's parameters (create_graph=True).
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()
