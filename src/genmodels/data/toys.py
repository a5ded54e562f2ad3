"""2-D toy distributions, sampled from an explicit torch.Generator.

- ring8:     8 Gaussians on a circle of radius 2, std 0.02 (Metz et al. 2017, unrolled GANs;
             Srivastava et al. 2017, VEEGAN).
- grid25:    25 Gaussians centred on {-4, -2, 0, 2, 4}^2, std 0.05 (VEEGAN; Lin et al. 2018, PacGAN).
- swissroll: sklearn's swiss roll seen from above, (t cos t, t sin t) with t ~ U(1.5 pi, 4.5 pi),
             noise std 0.25, divided by 7.5 (Gulrajani et al. 2017, WGAN-GP toy set).
- moons:     two interleaving half circles (sklearn's make_moons), noise std 0.05.

The mixtures pick each component with equal probability; their centres (M, 2) and std are
returned so that mode coverage can be measured (the VEEGAN / PacGAN protocol of
`genmodels.metrics.modes`, docs/metrics.md); the component index (moons:
0 = upper, 1 = lower half circle) is the label.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ToySample:
    """x: (N, 2) points; y: (N,) int64 component / moon index or None;
    modes: (M, 2) mixture centres or None; mode_std: component std or None."""

    x: torch.Tensor
    y: torch.Tensor | None = None
    modes: torch.Tensor | None = None
    mode_std: float | None = None


def ring8_modes(radius: float = 2.0, m: int = 8) -> torch.Tensor:
    """(8, 2) centres at angles 2 pi k / 8 on a circle."""
    angle = 2 * math.pi * torch.arange(m, dtype=torch.float64) / m
    return (radius * torch.stack([angle.cos(), angle.sin()], dim=1)).float()


def grid25_modes() -> torch.Tensor:
    """(25, 2) centres on the 5 x 5 grid {-4, -2, 0, 2, 4}^2."""
    axis = torch.arange(-4.0, 5.0, 2.0)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def gaussian_mixture(n: int, modes: torch.Tensor, std: float, generator: torch.Generator) -> ToySample:
    """n points: a uniformly chosen centre plus N(0, std^2 I) noise."""
    k = torch.randint(len(modes), (n,), generator=generator)
    x = modes[k] + std * torch.randn(n, 2, generator=generator)
    return ToySample(x=x, y=k, modes=modes.clone(), mode_std=std)


def ring8(n: int, generator: torch.Generator) -> ToySample:
    return gaussian_mixture(n, ring8_modes(), 0.02, generator)


def grid25(n: int, generator: torch.Generator) -> ToySample:
    return gaussian_mixture(n, grid25_modes(), 0.05, generator)


def swissroll(n: int, generator: torch.Generator, noise: float = 0.25) -> ToySample:
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
    x = torch.stack([t * t.cos(), t * t.sin()], dim=1) + noise * torch.randn(n, 2, generator=generator)
    return ToySample(x=x / 7.5)


def moons(n: int, generator: torch.Generator, noise: float = 0.05) -> ToySample:
    theta = math.pi * torch.rand(n, generator=generator)
    upper = torch.rand(n, generator=generator) < 0.5
    outer = torch.stack([theta.cos(), theta.sin()], dim=1)
    inner = torch.stack([1 - theta.cos(), 0.5 - theta.sin()], dim=1)
    x = torch.where(upper[:, None], outer, inner) + noise * torch.randn(n, 2, generator=generator)
    return ToySample(x=x, y=(~upper).long())


TOYS: dict[str, Callable[[int, torch.Generator], ToySample]] = {
    "ring8": ring8, "grid25": grid25, "swissroll": swissroll, "moons": moons,
}
