"""The points standardiser that the diffusion and flow families share: a per-dimension shift and
scale of 2-D (or D-dimensional) points data, fixed from the first training batch, so that the data
has roughly unit variance for the N(0, I) prior. Images pass through (shift 0, scale 1)."""

from __future__ import annotations

import torch
from torch import nn


class Standardiser(nn.Module):
    """Per-dimension shift and scale of points data, fixed from the first training batch so
    that the data has roughly unit variance for the N(0, I) prior. Images pass through."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._fitted: bool | None = False      # `fitted` on the host; None: read it once (after a load)
        self.register_load_state_dict_post_hook(_forget_fitted)

    def is_fitted(self) -> bool:
        """Whether shift and scale are fixed: one host read after a load, none otherwise."""
        if self._fitted is None:
            self._fitted = bool(self.fitted)
        return self._fitted

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:  # noqa: D102
        if not self.is_fitted() and x.shape[0] > 1:
            self.shift.copy_(x.mean(0))
            self.scale.copy_(x.std(0).clamp(min=1e-6))
            self.fitted.fill_(True)
            self._fitted = True


def _forget_fitted(module: Standardiser, incompatible_keys) -> None:
    module._fitted = None
