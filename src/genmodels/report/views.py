"""The family-specific pictures of a run: load its latest weights, call
`model.views(generator, data=<the run's test split>)` and save each returned grid as
`RUN_DIR/views/<name>.png`.

Families return either one tiled picture (1, C, H, W) in [-1, 1] (VAE reconstructions and
interpolations, InfoGAN traversals, the GAN decision surface) or a batch of frames
(N, C, H, W) laid out row by row (the DDPM denoising strip x_T -> x_0, VIEW_FRAMES per row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.errors import DataError, GenmodelsError
from genmodels.models.base import VIEW_FRAMES
from genmodels.run import load_data_config, load_run
from genmodels.run.layout import RunDir
from genmodels.viz import save_grid

MIN_WIDTH = 256     # small grids are enlarged (nearest neighbour) to at least this many pixels

CAPTIONS = {
    "denoising": "Denoising: each row runs the reverse process from x_T (left, pure noise) to x_0 (right).",
    "decision_surface": "D over the plane: samples G(z) (gold) over the data (grey); the optimal D is 1/2 "
                        "where the generator matches the data (seed Proposition 2).",
    "reconstructions": "Reconstructions: inputs (top row) and decodes of their posterior means (bottom row).",
    "interpolations": "Interpolations: decodes along straight lines between the posterior means of two inputs.",
    "samples": "Samples from the prior, decoded.",
    "latent_map": "Latent map: decodes of a grid of z at Gaussian quantiles (2-D latent).",
    "traversal_cat": "Traversal: one row per value of the categorical code, noise fixed.",
}


@dataclass
class View:
    """One saved picture of the run."""

    name: str
    path: Path
    caption: str


@dataclass
class ViewsResult:
    views: list[View]
    notes: list[str]   # why some or all views are missing
    step: int | None   # the checkpoint step the views were drawn from


def caption_of(name: str) -> str:
    if name.startswith("traversal_cont"):
        return (f"Traversal of continuous code {name.removeprefix('traversal_cont')}: columns sweep it from -2 to 2, "
                f"rows are the values of the categorical code (Chen et al. 2016, Figure 2).")
    return CAPTIONS.get(name, name.replace("_", " ").capitalize() + ".")


def save_view(image: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    """Write a view, one picture (1, C, H, W) or frames (N, C, H, W) in [-1, 1], as a PNG."""

    if image.dim() != 4:
        raise ValueError(f"a view must be (N, C, H, W), got shape {tuple(image.shape)}")
    if image.shape[0] == 1:
        nrow = 1
    per_row = nrow or math.ceil(math.sqrt(image.shape[0]))  # make_grid's default layout
    width = per_row * image.shape[-1]
    return save_grid(image, path, nrow=nrow, scale=max(1, math.ceil(MIN_WIDTH / width)))


def render_views(run_dir: str | Path, *, device: str = "cpu", seed: int = 0) -> ViewsResult:
    """Draw the run's family views from its latest checkpoint (EMA weights when kept) into
    RUN_DIR/views/. Missing checkpoints or families without views give notes, not errors."""

    run_dir = Path(run_dir)
    try:
        loaded = load_run(run_dir, device=device, ema=True)
    except GenmodelsError as e:
        return ViewsResult([], [f"no model views: {e}"], None)
    try:
        data = load_data_config(loaded.config.data, "test", seed=loaded.config.seed)
    except DataError:  # e.g. the package that ships the data set is gone: views without real inputs
        data = None
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        images = loaded.model.views(generator, data=data)
    out_dir = RunDir(run_dir).views
    views, notes = [], []
    for name, image in images.items():
        nrow = VIEW_FRAMES if image.shape[0] > 1 else None
        path = save_view(image.detach().float().cpu(), out_dir / f"{name}.png", nrow=nrow)
        views.append(View(name, path, caption_of(name)))
    if not views:
        notes.append(f"the {loaded.config.model_name} family draws no extra views for {loaded.spec.kind} data")
    return ViewsResult(views, notes, loaded.step)
