"""The paper-style fully connected generator and discriminator (Goodfellow et al. 2014, section 5:
"multilayer perceptrons" for G and D), for 2-D points or flattened images.

The paper's own MNIST networks (its published pylearn2 configuration, adversarial/mnist.yaml) are
`goodfellow2014_generator` (z -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid) and `MaxoutDiscriminator`
(dropout on the input and hidden layers, 240 x 5 maxout, 240 x 5 maxout -> one logit), with the
configuration's uniform initialisation (`init_uniform_`).

Networks only: they know nothing of the adversarial game. Class conditioning (Mirza & Osindero
2014) feeds a one-hot label to G next to z; D uses the projection discriminator of Miyato &
Koyama 2018 (logit = w^T h(x) + <embed(y), h(x)>).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.nets.maxout import Maxout
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
    output: "tanh" for images in [-1, 1], "identity" for unbounded points, or "sigmoid": the paper's
    sigmoid pixels s = sigmoid(a) in [0, 1] mapped to our [-1, 1] image space, x = 2 s - 1, which is
    computed as the identical tanh(a / 2).
    batchnorm: batch normalisation in every hidden layer (as in the PacGAN / VEEGAN 2-D generators).
    """

    def __init__(self, z_dim: int, out_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 output: str = "identity", num_classes: int = 0, activation: str = "relu", batchnorm: bool = False):
        super().__init__()
        if output not in ("tanh", "identity", "sigmoid"):
            raise ValueError(f"MLPGenerator output must be 'tanh', 'sigmoid' or 'identity', got {output!r}")
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
        elif self.output == "sigmoid":
            x = torch.tanh(0.5 * x)          # = 2 sigmoid(x) - 1: the paper's sigmoid output in [-1, 1]
        return x.view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D's logit l(x[, y]): x (N, *in_shape) [and labels y (N,)] -> (N,) with D(x) = sigmoid(l(x)).

    hidden: widths of the hidden layers (LeakyReLU(0.2)); dropout after each (the paper's MNIST
    discriminator used dropout), and input_dropout on the input (on x in [-1, 1]).
    spectral_norm wraps every linear layer (Miyato et al. 2018).
    """

    def __init__(self, in_shape: Sequence[int], hidden: Sequence[int] = (256, 256), num_classes: int = 0,
                 dropout: float = 0.0, spectral_norm: bool = False, activation: str = "leaky_relu",
                 input_dropout: float = 0.0):
        super().__init__()
        in_dim = 1
        for s in in_shape:
            in_dim *= s
        if not hidden:
            raise ValueError("MLPDiscriminator needs at least one hidden layer")
        self.num_classes = num_classes
        body = MLP([in_dim, *hidden], activation=activation, dropout=dropout)
        # MLP puts no activation after its last layer: the features h(x) get one here.
        layers = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
        layers += [body, nn.LeakyReLU(0.2) if activation == "leaky_relu" else nn.ReLU()]
        self.features = maybe_spectral_norm(nn.Sequential(*layers), spectral_norm)
        self.head = maybe_spectral_norm(nn.Sequential(nn.Linear(hidden[-1], 1)), spectral_norm)
        self.embed = (maybe_spectral_norm(nn.Sequential(nn.Embedding(num_classes, hidden[-1])), spectral_norm)
                      if num_classes else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x.flatten(1))
        logit = self.head(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(1)  # projection discriminator
        return logit


def init_uniform_(module: nn.Module, irange: float) -> nn.Module:
    """pylearn2's `irange` initialisation, as in the paper's configuration: every weight of the Linear
    (and Maxout) layers of `module` ~ U(-irange, irange), every bias 0. Returns `module`."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -irange, irange)
            nn.init.zeros_(m.bias)
    return module


# the irange values of the paper's MNIST configuration (adversarial/mnist.yaml)
G_IRANGE, D_IRANGE = 0.05, 0.005


def goodfellow2014_generator(z_dim: int, out_shape: Sequence[int], hidden: Sequence[int] = (1200, 1200),
                             num_classes: int = 0) -> MLPGenerator:
    """The paper's MNIST generator: z -> ReLU layers of widths `hidden` -> sigmoid pixels, mapped to
    [-1, 1] (MLPGenerator output "sigmoid"), weights ~ U(-0.05, 0.05) and biases 0. The configuration
    also set the output biases to the logits of the training set's mean pixels; a network built from
    a DataSpec has no data to do that, so they start at 0 (mid-grey samples)."""
    G = MLPGenerator(z_dim, out_shape, hidden, output="sigmoid", num_classes=num_classes, activation="relu")
    return init_uniform_(G, G_IRANGE)


class MaxoutDiscriminator(nn.Module):
    """The paper's MNIST discriminator, D's logit l(x[, y]): x (N, *in_shape) in [-1, 1] [and labels
    y (N,)] -> (N,), with D(x) = sigmoid(l(x)) (the configuration's sigmoid output unit).

    The input is first mapped back to the paper's pixel range [0, 1] ((x + 1) / 2), so that input
    dropout zeroes a pixel to black as it did there; then for each width in `hidden`: dropout, then
    a maxout layer of that many units with `pieces` pieces each (nets/maxout.py); then dropout and
    the linear output. Dropout probabilities are drop probabilities (the configuration's include
    probabilities are 1 - these: 0.8 on the input, 0.5 elsewhere) with the usual 1 / (1 - p)
    rescaling in training and none in eval mode, which is pylearn2's input_scales (1.25 and 2).
    Weights ~ U(-0.005, 0.005), biases 0. spectral_norm wraps every linear map (Miyato et al. 2018).
    """

    def __init__(self, in_shape: Sequence[int], hidden: Sequence[int] = (240, 240), pieces: int = 5,
                 num_classes: int = 0, input_dropout: float = 0.2, dropout: float = 0.5,
                 spectral_norm: bool = False):
        super().__init__()
        if not hidden:
            raise ValueError("MaxoutDiscriminator needs at least one hidden layer")
        in_dim = 1
        for s in in_shape:
            in_dim *= s
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise([in_dim, *hidden])):
            p = input_dropout if i == 0 else dropout
            if p > 0:
                layers.append(nn.Dropout(p))
            layers.append(Maxout(a, b, pieces))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))            # the output unit's input is dropped out too
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(hidden[-1], 1)
        self.embed = nn.Embedding(num_classes, hidden[-1]) if num_classes else None
        init_uniform_(self, D_IRANGE)
        if self.embed is not None:
            nn.init.uniform_(self.embed.weight, -D_IRANGE, D_IRANGE)
        maybe_spectral_norm(self, spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features((x.flatten(1) + 1) * 0.5)      # pixels back in [0, 1], as the paper's D saw them
        logit = self.head(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(1)  # projection discriminator
        return logit
