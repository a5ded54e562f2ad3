"""Reflow (Liu et al. 2023, "Flow straight and fast", sec. 2.2, Algorithm 1): the k+1-rectified flow
is trained on the couplings (x_1, x_0 = Z_0(x_1)) of the k-rectified flow Z, whose ODE maps noise x_1
to a sample x_0; the new flow's paths cross less, so it is straighter and samples in fewer steps.

The pairs are drawn once, at the start of the run, and kept in the run's checkpoints (`ReflowPairs`,
a module of buffers that is not trained): pair i's noise is a function of (reflow_seed, i) alone
(`reflow_noise`: fixed chunks of one generator), and its sample the previous flow's ODE solution
from that noise, so the same previous model and seed give the same pairs on any machine run.
Only the samples and labels are stored; the noise is drawn again from the seed when needed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm import tqdm

CHUNK = 1000    # pairs per chunk of the noise generator and per ODE batch


def reflow_noise(n: int, shape: tuple[int, ...], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The noise x_1 of pairs 0..n-1, (n, *shape) float32: chunk j of CHUNK pairs is the j-th draw of
    one generator seeded with `seed`, always of CHUNK pairs (torch's draws of another size are other
    numbers), the last one cut to n, so pair i depends on (seed, i) only, not on n."""
    g = torch.Generator().manual_seed(seed)
    chunks = [torch.randn((CHUNK, *shape), generator=g) for _ in range(0, n, CHUNK)]
    return torch.cat(chunks)[:n].to(device)


def pair_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The class of pair i: i mod K for a class-conditional previous flow, -1 (none) otherwise. (n,) int64."""
    if num_classes <= 0:
        return torch.full((n,), -1, dtype=torch.long, device=device)
    return torch.arange(n, device=device) % num_classes


@torch.no_grad()
def draw_pairs(solve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
               labels: torch.Tensor, *, progress: bool = False) -> torch.Tensor:
    """The samples x_0 = solve(x_1, labels) of the previous flow's ODE for each noise x_1 (n, ...),
    CHUNK at a time (the same chunks whatever n, so each sample is a function of its own noise), with a
    progress bar on stderr when `progress`. (n, ...)."""
    out = []
    with tqdm(total=len(noise), desc="reflow pairs", unit="pair", disable=not progress) as bar:
        for i in range(0, len(noise), CHUNK):
            out.append(solve(noise[i:i + CHUNK], labels[i:i + CHUNK]))
            bar.update(len(out[-1]))
    return torch.cat(out)


class ReflowPairs(nn.Module):
    """The samples x_0 (n, *shape) of the reflow pairs and their labels (n,), as buffers (they travel
    with the checkpoints; nothing here is trained); the noise is `reflow_noise(n, shape, seed)`."""

    def __init__(self, n: int, shape: tuple[int, ...], seed: int):
        super().__init__()
        self.shape, self.seed = tuple(shape), seed
        self.register_buffer("x0", torch.zeros((n, *shape)))
        self.register_buffer("labels", torch.full((n,), -1, dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.bool))
        self._noise: torch.Tensor | None = None

    def noise(self) -> torch.Tensor:
        """x_1 of every pair (drawn once from the seed, then kept in memory)."""
        if self._noise is None or self._noise.device != self.x0.device:
            self._noise = reflow_noise(len(self.x0), self.shape, self.seed, self.x0.device)
        return self._noise

    @torch.no_grad()
    def fill(self, x0: torch.Tensor, labels: torch.Tensor) -> None:  # noqa: D102
        self.x0.copy_(x0)
        self.labels.copy_(labels)
        self.filled.fill_(True)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_0, x_1, labels) of the pairs at `index` (B,)."""
        return self.x0[index], self.noise()[index], self.labels[index]
