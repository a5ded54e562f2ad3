"""Sinusoidal embeddings of a scalar (a time or noise level), as in the Transformer
(Vaswani et al. 2017) and the DDPM U-Net (Ho et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor | float | int, dim: int, max_period: float = 10000.0,
                         batch: int | None = None, device: torch.device | None = None) -> torch.Tensor:
    """[cos(t w_0), ..., cos(t w_{k-1}), sin(t w_0), ..., sin(t w_{k-1})], w_j = max_period^{-j/k},
    k = dim // 2 (zero-padded to `dim` when odd).

    t: scalar or (B,) numbers (ints or floats); a scalar is broadcast to `batch` rows.
    Returns (B, dim) float32."""
    t = torch.as_tensor(t, dtype=torch.float32, device=device)
    if t.dim() == 0:
        t = t.expand(batch or 1)
    t = t.float().reshape(-1)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding followed by a two-layer MLP with SiLU: t -> (B, out_dim)."""

    def __init__(self, base_dim: int, out_dim: int):
        super().__init__()
        self.base_dim = base_dim
        self.mlp = nn.Sequential(nn.Linear(base_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:  # noqa: D102
        return self.mlp(sinusoidal_embedding(t, self.base_dim, batch=batch, device=device))


class LabelEmbedding(nn.Module):
    """A learned vector per class plus one "null" class (index num_classes) used when y is None
    or a label is -1 (label dropout for classifier-free guidance)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:  # noqa: D102
        if y is None:
            y = torch.full((batch,), -1, dtype=torch.long, device=device)
        y = torch.where(y < 0, torch.full_like(y, self.num_classes), y.long())
        return self.table(y)
