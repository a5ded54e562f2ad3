"""An MLP denoiser for low-dimensional data (2-D toys, tabular points): residual SiLU blocks
conditioned on a sinusoidal time embedding (and optionally a label). It knows nothing about
diffusion: (x (B, D), t (B,) or scalar, y (B,) or None) -> (B, D) (or (B, out_dim))."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.nets.embeddings import LabelEmbedding, TimeEmbedding


class _Block(nn.Module):
    """h + Linear(SiLU(LayerNorm(h) + emb)) then a second linear: a pre-norm residual MLP block."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return h + self.fc2(self.dropout(F.silu(self.fc1(F.silu(self.norm(h) + emb)))))


def fourier_features(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """[x, sin(2^k pi x), cos(2^k pi x) for k < octaves] per coordinate (Mildenhall et al. 2020;
    Tancik et al. 2020: lets an MLP represent sharp functions of low-dimensional inputs).
    (B, D) -> (B, D (1 + 2 octaves))."""
    if octaves == 0:
        return x
    freqs = math.pi * 2.0 ** torch.arange(octaves, dtype=x.dtype, device=x.device)
    angles = (x[:, :, None] * freqs).flatten(1)
    return torch.cat([x, angles.sin(), angles.cos()], dim=1)


class DenoiserMLP(nn.Module):
    """dim: data dimension D; width: hidden width; depth: residual blocks; octaves: Fourier
    features of the input coordinates (0 = raw x); num_classes > 0 adds a label embedding with a
    null label (y None or -1); out_dim: outputs per example (None = dim; 2 * dim when a diffusion
    model also predicts its variance)."""

    def __init__(self, dim: int = 2, width: int = 256, depth: int = 4, dropout: float = 0.0, num_classes: int = 0,
                 octaves: int = 0, out_dim: int | None = None):
        super().__init__()
        self.octaves = octaves
        self.inp = nn.Linear(dim * (1 + 2 * octaves), width)
        self.time_embed = TimeEmbedding(min(width, 128), width)
        self.label_embed = LabelEmbedding(num_classes, width) if num_classes > 0 else None
        self.blocks = nn.ModuleList(_Block(width, dropout) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, out_dim or dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | int, y: torch.Tensor | None = None) -> torch.Tensor:  # noqa: D102
        emb = self.time_embed(t, x.shape[0], x.device)
        if self.label_embed is not None:
            emb = emb + self.label_embed(y, x.shape[0], x.device)
        h = self.inp(fourier_features(x, self.octaves))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
