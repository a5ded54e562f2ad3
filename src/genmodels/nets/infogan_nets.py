"""InfoGAN's networks (Chen et al. 2016, appendix C.1, the MNIST column of its table), and the
discriminator whose body Q shares.

  G: (z, c) (N, in_dim) -> FC 1024, BN, ReLU -> FC 128 * s * s, BN, ReLU -> (128, s, s)
     -> 4x4 up-conv 64, stride 2, BN, ReLU -> (64, 2s, 2s) -> 4x4 up-conv C, stride 2, tanh -> (C, 4s, 4s)
     with s = size / 4 (7 for 28x28 images, 8 for 32x32).
  D body: x (N, C, 4s, 4s) -> 4x4 conv 64, stride 2, lReLU -> 4x4 conv 128, stride 2, BN, lReLU
     -> FC 1024, BN, lReLU -> h (N, 1024)            (leaky slope 0.1)
  D head: h -> FC 1 -> logit (N,)
  Q head: h -> FC 128, BN, lReLU -> FC q_dim (N, q_dim)
Networks only: the codes' layout and the objective live in `genmodels.models.infogan`.
"""

from __future__ import annotations

import torch
from torch import nn

from genmodels.nets.dcgan import SIZES, dcgan_init
from genmodels.nets.gan_mlp import MLPDiscriminator

LEAK = 0.1   # lReLU slope of the InfoGAN paper's D and Q


def _check(channels: int, size: int) -> None:
    if size not in SIZES:
        raise ValueError(f"the InfoGAN conv nets support {SIZES[0]}x{SIZES[0]} and {SIZES[1]}x{SIZES[1]} images, "
                         f"got {size}x{size}")
    if channels < 1:
        raise ValueError(f"the InfoGAN conv nets need at least one channel, got {channels}")


class InfoGANGenerator(nn.Module):
    """G(z, c): the concatenated input (N, in_dim) -> images (N, channels, size, size) in [-1, 1]."""

    def __init__(self, in_dim: int, channels: int = 1, size: int = 28, width: int = 64, hidden: int = 1024):
        super().__init__()
        _check(channels, size)
        self.s, self.w = size // 4, width
        self.fc = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, 2 * width * self.s * self.s), nn.BatchNorm1d(2 * width * self.s * self.s), nn.ReLU(True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())
        dcgan_init(self)

    def forward(self, zc: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(zc).view(-1, 2 * self.w, self.s, self.s))


class InfoGANBody(nn.Module):
    """The part of D that Q shares: images (N, channels, size, size) -> features h (N, hidden)."""

    def __init__(self, channels: int = 1, size: int = 28, width: int = 64, hidden: int = 1024):
        super().__init__()
        _check(channels, size)
        s = size // 4
        self.out_dim = hidden
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(LEAK, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(LEAK, True),
            nn.Flatten(), nn.Linear(2 * width * s * s, hidden, bias=False), nn.BatchNorm1d(hidden),
            nn.LeakyReLU(LEAK, True))
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPBody(nn.Module):
    """The MLP discriminator's hidden layers (genmodels.nets.gan_mlp) as a shared body:
    x (N, *in_shape) -> h (N, hidden[-1])."""

    def __init__(self, in_shape, hidden=(256, 256)):
        super().__init__()
        self.features = MLPDiscriminator(in_shape, hidden).features
        self.out_dim = hidden[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.flatten(1))


class SharedDiscriminator(nn.Module):
    """D(x) = head(body(x)): x -> (logit (N,), h (N, body.out_dim)); Q's head reads the same h."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.out_dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.head(h).squeeze(1), h


class QHead(nn.Module):
    """Q's own layers on D's features: h (N, in_dim) -> raw parameters (N, out_dim)
    (logits of the categorical codes, Gaussian means [and log-variances] of the continuous ones)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.LeakyReLU(LEAK, True), nn.Linear(hidden, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
