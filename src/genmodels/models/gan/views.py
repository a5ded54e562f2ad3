"""The picture people want of a 2-D GAN: D's decision surface with samples over the data.

With G fixed the optimal discriminator is D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (seed
Proposition 2, eq. 2.4): it is 1/2 wherever the generator matches the data, high where data
lacks samples and low where samples lack data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch


def _bounds(*clouds: np.ndarray, margin: float = 0.15) -> tuple[float, float, float, float]:
    pts = np.concatenate([c for c in clouds if c is not None and len(c)], axis=0)
    lo, hi = pts.min(0), pts.max(0)
    pad = margin * float((hi - lo).max() or 1.0)
    return lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad


@torch.no_grad()
def decision_surface(D: Callable[[torch.Tensor], torch.Tensor], samples: torch.Tensor,
                     data: torch.Tensor | None = None, *, resolution: int = 150, title: str = "",
                     probability: bool = True, device: torch.device | str = "cpu") -> np.ndarray:
    """Render D over the plane with samples (blue) over data (grey) as a uint8 RGB image (H, W, 3).

    D: maps points (P, 2) to logits (P,); probability: show sigmoid(logit) = D(x) in [0, 1] (the
    cross-entropy losses) rather than the raw critic value (hinge / wasserstein).
    samples: (N, 2) generated points; data: (M, 2) real points or None; device: where D runs.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if samples.dim() != 2 or samples.shape[1] != 2:
        raise ValueError(f"decision_surface draws 2-D points, got samples of shape {tuple(samples.shape)}")
    s = samples.detach().float().cpu().numpy()
    d = data.detach().float().cpu().numpy() if data is not None else None
    x0, x1, y0, y1 = _bounds(s, d)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()
    logits = torch.cat([D(chunk.to(device)).float().cpu() for chunk in grid.split(8192)])
    values = (torch.sigmoid(logits) if probability else logits).numpy().reshape(resolution, resolution)

    fig = plt.figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    levels = np.linspace(0, 1, 21) if probability else 20
    cs = ax.contourf(gx, gy, values, levels=levels, cmap="RdBu_r", alpha=0.8)
    fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="D(x)" if probability else "critic l(x)")
    if d is not None:
        ax.scatter(d[:, 0], d[:, 1], s=3, c="0.25", label="data")
    ax.scatter(s[:, 0], s[:, 1], s=3, c="gold", edgecolors="none", label="G(z)")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float tensor (1, 3, H, W) in [-1, 1] (the layout of the run report's views)."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def save_decision_surface(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a decision-surface picture, uint8 (H, W, 3) or a view tensor (1, 3, H, W) in [-1, 1], as PNG."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = ((image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    from genmodels.atomic import atomic_file

    path = Path(path)
    with atomic_file(path) as f:
        Image.fromarray(image).save(f, format="PNG")
    return path
