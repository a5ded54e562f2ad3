"""Encoder / decoder networks for the VAE: MLPs (Kingma & Welling 2013; Burda et al. 2015 use
784-500-500-50) and small convnets for 28x28 / 32x32 images.

An encoder maps x (N, *shape) to (mu, logvar), each (N, L): the parameters of a diagonal
Gaussian. A decoder maps z (N, L) to distribution parameters (N, P, *shape), P per data
dimension (e.g. 1 for Bernoulli logits, 2 for a mean and a log-scale). The networks know
nothing about ELBOs or likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from genmodels.nets.mlp import ACTIVATIONS, MLP


class MLPEncoder(nn.Module):
    """x (N, *shape) -> flatten -> MLP (D, *hidden, 2L) -> (mu, logvar), each (N, L)."""

    def __init__(self, shape: Sequence[int], hidden: Sequence[int], latent_dim: int, activation: str = "relu"):
        super().__init__()
        self.net = MLP((math.prod(shape), *hidden, 2 * latent_dim), activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


class MLPDecoder(nn.Module):
    """z (N, L) -> MLP (L, *hidden, P*D) -> params (N, P, *shape)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], shape: Sequence[int], n_params: int,
                 activation: str = "relu"):
        super().__init__()
        self.shape = tuple(shape)
        self.n_params = n_params
        self.net = MLP((latent_dim, *hidden, n_params * math.prod(shape)), activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], self.n_params, *self.shape)


def _check_conv_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 4 != 0:
        raise ValueError(f"the conv VAE nets take square (C, H, H) images with H divisible by 4 "
                         f"(28x28, 32x32), got shape {tuple(shape)}")
    return shape[0], shape[1]


class ConvEncoder(nn.Module):
    """x (N, C, H, H) -> two 4x4 stride-2 convs (H -> H/2 -> H/4) -> linear -> (mu, logvar) (N, L)."""

    def __init__(self, shape: Sequence[int], latent_dim: int, channels: int = 32, hidden: int = 256,
                 activation: str = "relu"):
        super().__init__()
        c, h = _check_conv_shape(shape)
        act = ACTIVATIONS[activation]
        self.features = nn.Sequential(
            nn.Conv2d(c, channels, 4, 2, 1), act(),
            nn.Conv2d(channels, 2 * channels, 4, 2, 1), act(),
            nn.Flatten(),
            nn.Linear(2 * channels * (h // 4) ** 2, hidden), act(),
            nn.Linear(hidden, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.features(x).chunk(2, dim=-1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """z (N, L) -> linear -> (2ch, H/4, H/4) -> two 4x4 stride-2 transposed convs -> params (N, P, C, H, H)."""

    def __init__(self, latent_dim: int, shape: Sequence[int], n_params: int, channels: int = 32,
                 hidden: int = 256, activation: str = "relu"):
        super().__init__()
        c, h = _check_conv_shape(shape)
        act = ACTIVATIONS[activation]
        self.shape = tuple(shape)
        self.n_params = n_params
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), act(),
            nn.Linear(hidden, 2 * channels * (h // 4) ** 2), act(),
            nn.Unflatten(1, (2 * channels, h // 4, h // 4)),
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), act(),
            nn.ConvTranspose2d(channels, n_params * c, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], self.n_params, *self.shape)
