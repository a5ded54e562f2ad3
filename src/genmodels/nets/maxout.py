"""The maxout layer (Goodfellow, Warde-Farley, Mirza, Courville & Bengio 2013, "Maxout Networks"),
the hidden layer of the MNIST discriminator of Goodfellow et al. 2014.

Unit j of a maxout layer with k pieces is the largest of k affine functions of its input:

    h_j(x) = max_{i = 1..k} z_{j,i},   z_{j,i} = x^T W_{., j, i} + b_{j, i}      (Maxout Networks, eq. 1)

One linear map computes all units * pieces values z; the pieces of unit j are the k consecutive
entries j*k .. j*k + k - 1 (the layout of pylearn2's Maxout layer; any fixed grouping gives the same
family of functions). With k = 1 the layer is a plain linear layer.
"""

from __future__ import annotations

import torch
from torch import nn


class Maxout(nn.Module):
    """x (N, in_features) -> (N, units): each output the max over `pieces` affine functions of x."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        if in_features < 1 or units < 1 or pieces < 1:
            raise ValueError(f"Maxout needs in_features, units and pieces >= 1, got {in_features}, {units}, {pieces}")
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        z = self.linear(x)                                             # (N, units * pieces)
        return z.unflatten(-1, (self.units, self.pieces)).amax(-1)     # Maxout Networks, eq. 1

    def extra_repr(self) -> str:
        return f"units={self.units}, pieces={self.pieces}"
