"""The numbers behind the picture people want of a 2-D GAN: D's decision surface with samples over
the data (drawn by `genmodels.viz.draw_decision_surface`).

With G fixed the optimal discriminator is D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (seed
Proposition 2, eq. 2.4): it is 1/2 wherever the generator matches the data, high where data
lacks samples and low where samples lack data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class DecisionSurface:
    """D evaluated over a square grid of the plane, with the points to draw over it."""

    gx: np.ndarray              # (R, R) first coordinate of the grid
    gy: np.ndarray              # (R, R) second coordinate
    values: np.ndarray          # (R, R) sigmoid(l(x)) = D(x) when `probability`, else the critic value l(x)
    samples: np.ndarray         # (N, 2) generated points
    data: np.ndarray | None     # (M, 2) real points, or None
    probability: bool


def _bounds(*clouds: np.ndarray, margin: float = 0.15) -> tuple[float, float, float, float]:
    pts = np.concatenate([c for c in clouds if c is not None and len(c)], axis=0)
    lo, hi = pts.min(0), pts.max(0)
    pad = margin * float((hi - lo).max() or 1.0)
    return lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad


@torch.no_grad()
def decision_surface(D: Callable[[torch.Tensor], torch.Tensor], samples: torch.Tensor,
                     data: torch.Tensor | None = None, *, resolution: int = 150, probability: bool = True,
                     device: torch.device | str = "cpu") -> DecisionSurface:
    """D over the part of the plane that holds the samples and the data (plus a margin).

    D: maps points (P, 2) to logits (P,); probability: keep sigmoid(logit) = D(x) in [0, 1] (the
    cross-entropy losses) rather than the raw critic value (hinge / wasserstein).
    samples: (N, 2) generated points; data: (M, 2) real points or None; device: where D runs.
    """
    if samples.dim() != 2 or samples.shape[1] != 2:
        raise ValueError(f"decision_surface takes 2-D points, got samples of shape {tuple(samples.shape)}")
    s = samples.detach().float().cpu().numpy()
    d = data.detach().float().cpu().numpy() if data is not None else None
    x0, x1, y0, y1 = _bounds(s, d)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()
    logits = torch.cat([D(chunk.to(device)).float().cpu() for chunk in grid.split(8192)])
    values = (torch.sigmoid(logits) if probability else logits).numpy().reshape(resolution, resolution)
    return DecisionSurface(gx=gx, gy=gy, values=values, samples=s, data=d, probability=probability)
