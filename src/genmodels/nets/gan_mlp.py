"""The paper-style fully connected generator and discriminator (Goodfellow et al. 2014, section 5:
"multilayer perceptrons" for G and D), for 2-D points or flattened images.

Networks only: they know nothing of the adversarial game. Class conditioning (Mirza & Osindero
2014) feeds a one-hot label to G next to z; D uses the projection discriminator of Miyato &
Koyama 2018 (logit = w^T h(x) + <embed(y), h(x)>).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.nets.mlp import MLP


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap every Linear / Conv layer of `module` in spectral normalisation (Miyato et al. 2018)."""
    if not enabled:
        return module
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            maybe_spectral_norm(child, True)
    return module


class MLPGenerator(nn.Module):
    """G(z[, y]): z (N, z_dim) [and labels y (N,)] -> x (N, *out_shape).

    hidden: widths of the hidden layers (ReLU between them, as in the paper's MNIST generator).
    output: "tanh" for images in [-1, 1], "identity" for unbounded points.
    batchnorm: batch normalisation in every hidden layer (as in the PacGAN / VEEGAN 2-D generators).
    """

    def __init__(self, z_dim: int, out_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 output: str = "identity", num_classes: int = 0, activation: str = "relu", batchnorm: bool = False):
        super().__init__()
        if output not in ("tanh", "identity"):
            raise ValueError(f"MLPGenerator output must be 'tanh' or 'identity', got {output!r}")
        self.z_dim, self.out_shape, self.num_classes, self.output = z_dim, tuple(out_shape), num_classes, output
        out_dim = 1
        for s in self.out_shape:
            out_dim *= s
        self.net = MLP([z_dim + num_classes, *hidden, out_dim], activation=activation, batchnorm=batchnorm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        x = self.net(z)
        if self.output == "tanh":
            x = torch.tanh(x)
        return x.view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D's logit l(x[, y]): x (N, *in_shape) [and labels y (N,)] -> (N,) with D(x) = sigmoid(l(x)).

    hidden: widths of the hidden layers (LeakyReLU(0.2)); dropout after each (the paper's MNIST
    discriminator used dropout). spectral_norm wraps every linear layer (Miyato et al. 2018).
    """

    def __init__(self, in_shape: Sequence[int], hidden: Sequence[int] = (256, 256), num_classes: int = 0,
                 dropout: float = 0.0, spectral_norm: bool = False, activation: str = "leaky_relu"):
        super().__init__()
        in_dim = 1
        for s in in_shape:
            in_dim *= s
        if not hidden:
            raise ValueError("MLPDiscriminator needs at least one hidden layer")
        self.num_classes = num_classes
        body = MLP([in_dim, *hidden], activation=activation, dropout=dropout)
        # MLP puts no activation after its last layer: the features h(x) get one here.
        self.features = maybe_spectral_norm(nn.Sequential(body, nn.LeakyReLU(0.2) if activation == "leaky_relu"
                                                          else nn.ReLU()), spectral_norm)
        self.head = maybe_spectral_norm(nn.Sequential(nn.Linear(hidden[-1], 1)), spectral_norm)
        self.embed = (maybe_spectral_norm(nn.Sequential(nn.Embedding(num_classes, hidden[-1])), spectral_norm)
                      if num_classes else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x.flatten(1))
        logit = self.head(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(1)  # projection discriminator
        return logit
