"""Pictures: image grids, 2-D scatter plots, loss curves and a 2-D discriminator's decision surface
(Pillow + matplotlib, no torchvision). All the drawing in genmodels happens here and in
`genmodels.report`: models hand over tensors, arrays and small data objects.

matplotlib is used through its object API (`Figure` on an Agg canvas, `figure()` below), so no
global backend is ever set and pyplot's figure registry is never touched. Every picture is
written atomically (`genmodels.atomic`): a reader never sees half a PNG."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def tile(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> one tiled picture (1, C, H', W') in [-1, 1], `nrow` per row."""
    grid = torch.from_numpy(make_grid(images, nrow=nrow)).permute(2, 0, 1).float()
    return (grid / 127.5 - 1)[None]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float tensor (1, 3, H, W) in [-1, 1] (the layout of a model's views)."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a grid of (N, C, H, W) images in [-1, 1] as a PNG; `scale` enlarges small images."""
    from PIL import Image  # lazy: PIL is read only when a picture is written

    grid = make_grid(images, nrow=nrow)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    with atomic_file(path) as f:
        img.save(f, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def figure(width: float, height: float, dpi: int = 100):
    """A matplotlib Figure of width x height inches on its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is slow to import
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path: str | os.PathLike, **savefig) -> Path:
    path = Path(path)
    with atomic_file(path) as f:
        fig.savefig(f, format=path.suffix[1:].lower() or "png", **savefig)
    return path


def _array(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return np.asarray(x.detach().float().cpu() if isinstance(x, torch.Tensor) else x)


def save_scatter(points: torch.Tensor | np.ndarray, path: str | os.PathLike, *,
                 reference: torch.Tensor | np.ndarray | None = None,
                 modes: torch.Tensor | np.ndarray | None = None, title: str = "") -> Path:
    """Scatter plot of 2-D samples (N, 2), optionally over reference data and true mode centres."""
    pts = _array(points)
    fig = figure(5, 5)
    ax = fig.add_subplot(111)
    if reference is not None:
        ref = _array(reference)
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.7", label="data")
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:blue", label="samples")
    if modes is not None:
        m = _array(modes)
        ax.scatter(m[:, 0], m[:, 1], s=40, c="tab:red", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    return _save_figure(fig, path, dpi=100, bbox_inches="tight")


def curves_figure(series: dict[str, Sequence[tuple[int, float]]], title: str = ""):
    """A grid of panels, one per named (step, value) series (losses of different scales drawn on
    one axis would hide each other): the loss curves of losses.png and of the run report."""
    names = [name for name, pts in series.items() if pts]
    cols = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = figure(4 * cols, 2.6 * rows, dpi=90)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        steps, values = zip(*series[name], strict=True)
        ax.plot(steps, values, lw=1.2, marker="." if len(steps) < 30 else None)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def curves_png(series: dict[str, Sequence[tuple[int, float]]], title: str = "") -> bytes:
    """PNG bytes of `curves_figure` (embedded in the run report)."""
    buf = io.BytesIO()
    curves_figure(series, title).savefig(buf, format="png")
    return buf.getvalue()


def save_curves(series: dict[str, Sequence[tuple[int, float]]], path: str | os.PathLike, title: str = "") -> Path:
    """Write `curves_figure` (one panel per logged series against the step) to `path`, e.g. losses.png."""
    return _save_figure(curves_figure(series, title), path)


def draw_decision_surface(surface: Any, title: str = "") -> np.ndarray:
    """A 2-D discriminator over the plane with samples (gold) over data (grey), as a uint8 RGB image
    (H, W, 3). `surface` holds the numbers (`genmodels.models.gan.views.DecisionSurface`): gx, gy
    (R, R) the grid, values (R, R) D(x) in [0, 1] (probability) or the critic value, samples (N, 2),
    data (M, 2) or None, probability (bool)."""
    fig = figure(5, 5)
    ax = fig.add_subplot(111)
    levels = np.linspace(0, 1, 21) if surface.probability else 20
    cs = ax.contourf(surface.gx, surface.gy, surface.values, levels=levels, cmap="RdBu_r", alpha=0.8)
    fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="D(x)" if surface.probability else "critic l(x)")
    if surface.data is not None:
        ax.scatter(surface.data[:, 0], surface.data[:, 1], s=3, c="0.25", label="data")
    ax.scatter(surface.samples[:, 0], surface.samples[:, 1], s=3, c="gold", edgecolors="none", label="G(z)")
    ax.set_xlim(surface.gx.min(), surface.gx.max())
    ax.set_ylim(surface.gy.min(), surface.gy.max())
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_image(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write one picture, uint8 (H, W, 3) or a view tensor (1, 3, H, W) in [-1, 1], as PNG."""
    from PIL import Image  # lazy: PIL is read only when a picture is written

    if isinstance(image, torch.Tensor):
        image = ((image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    path = Path(path)
    with atomic_file(path) as f:
        Image.fromarray(image).save(f, format="PNG")
    return path
