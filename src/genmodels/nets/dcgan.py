"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016) for 28x28 and 32x32 images
with 1 or 3 channels.

Following the paper's guidelines: strided (transposed) convolutions instead of pooling, batch
norm in G (and in D unless disabled), ReLU in G with tanh output, LeakyReLU(0.2) in D, no fully
connected hidden layers, weights initialised from N(0, 0.02).

Shapes, with width w:
  G, 32x32: z (N, z_dim) -> (4w, 4, 4) -> (2w, 8, 8) -> (w, 16, 16) -> (C, 32, 32)
  G, 28x28: z (N, z_dim) -> (2w, 7, 7) -> (w, 14, 14) -> (C, 28, 28)
  D mirrors G and ends in a convolution covering the last feature map: (N,) logits.
Class conditioning: a one-hot label is concatenated to z (Mirza & Osindero 2014); D uses a
projection head (Miyato & Koyama 2018).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.nets.gan_mlp import maybe_spectral_norm

SIZES = (28, 32)


def _check(channels: int, size: int) -> None:
    if size not in SIZES:
        raise ValueError(f"DCGAN nets support {SIZES[0]}x{SIZES[0]} and {SIZES[1]}x{SIZES[1]} images, "
                         f"got {size}x{size}")
    if channels < 1:
        raise ValueError(f"DCGAN nets need at least one channel, got {channels}")


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """G(z[, y]): z (N, z_dim) [and labels y (N,)] -> images (N, channels, size, size) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, channels: int = 1, size: int = 28, width: int = 64, num_classes: int = 0):
        super().__init__()
        _check(channels, size)
        self.z_dim, self.num_classes = z_dim, num_classes
        w, zin = width, z_dim + num_classes

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        if size == 32:
            layers = [nn.ConvTranspose2d(zin, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True),
                      *up(4 * w, 2 * w), *up(2 * w, w)]
        else:
            layers = [nn.ConvTranspose2d(zin, 2 * w, 7, 1, 0, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),
                      *up(2 * w, w)]
        layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """D's logit l(x[, y]): images (N, channels, size, size) [and labels (N,)] -> (N,).

    batchnorm: use batch norm after the inner convolutions (DCGAN); turn it off for WGAN-GP
    (whose penalty is per example) and usually with spectral_norm.
    """

    def __init__(self, channels: int = 1, size: int = 28, width: int = 64, num_classes: int = 0,
                 batchnorm: bool = True, spectral_norm: bool = False):
        super().__init__()
        _check(channels, size)
        w = width

        def down(cin: int, cout: int, bn: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.LeakyReLU(0.2, True)]

        layers = down(channels, w, False) + down(w, 2 * w, batchnorm)
        if size == 32:
            layers += down(2 * w, 4 * w, batchnorm)
            feat_c, feat_hw = 4 * w, 4
        else:
            feat_c, feat_hw = 2 * w, 7
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(feat_c, 1, feat_hw, 1, 0)   # one logit from the whole last feature map
        self.embed = nn.Embedding(num_classes, feat_c * feat_hw * feat_hw) if num_classes else None
        dcgan_init(self)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        maybe_spectral_norm(self, spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logit = self.head(h).flatten()
        if self.embed is not None:
            logit = logit + (self.embed(y) * h.flatten(1)).sum(1)  # projection discriminator
        return logit
