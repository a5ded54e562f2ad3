"""Pictures: image grids, 2-D scatter plots and loss curves (Pillow + matplotlib, no torchvision).

Every picture is written atomically (`genmodels.atomic`): a reader never sees half a PNG."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from genmodels.atomic import atomic_file


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 array (N, H, W, C)."""
    x = images.detach().float().cpu().clamp(-1, 1)
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one uint8 picture (H', W', C) with `nrow` per row
    (default: a near-square grid)."""
    if images.dim() != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got shape {tuple(images.shape)}")
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol = int(math.ceil(n / nrow))
    grid = np.full((padding + ncol * (h + padding), padding + nrow * (w + padding), c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y0 = padding + r * (h + padding)
        x0 = padding + col * (w + padding)
        grid[y0:y0 + h, x0:x0 + w] = arr[i]
    return grid


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a grid of (N, C, H, W) images in [-1, 1] as a PNG; `scale` enlarges small images."""
    from PIL import Image

    grid = make_grid(images, nrow=nrow)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    with atomic_file(path) as f:
        img.save(f, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def save_scatter(points: torch.Tensor | np.ndarray, path: str | os.PathLike, *,
                 reference: torch.Tensor | np.ndarray | None = None,
                 modes: torch.Tensor | np.ndarray | None = None, title: str = "") -> Path:
    """Scatter plot of 2-D samples (N, 2), optionally over reference data and true mode centres."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points)
    fig, ax = plt.subplots(figsize=(5, 5))
    if reference is not None:
        ref = np.asarray(reference.detach().cpu() if isinstance(reference, torch.Tensor) else reference)
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.7", label="data")
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:blue", label="samples")
    if modes is not None:
        m = np.asarray(modes.detach().cpu() if isinstance(modes, torch.Tensor) else modes)
        ax.scatter(m[:, 0], m[:, 1], s=40, c="tab:red", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    path = Path(path)
    try:
        with atomic_file(path) as f:
            fig.savefig(f, format=path.suffix[1:].lower() or "png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def save_curves(series: dict[str, Sequence[tuple[int, float]]], path: str | os.PathLike, title: str = "") -> Path:
    """Line plot of named (step, value) series, e.g. loss curves."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pts in series.items():
        if pts:
            s, v = zip(*pts)
            ax.plot(s, v, label=name, lw=1)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    path = Path(path)
    try:
        with atomic_file(path) as f:
            fig.savefig(f, format=path.suffix[1:].lower() or "png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
