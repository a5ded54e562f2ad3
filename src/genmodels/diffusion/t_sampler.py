"""Importance sampling of the diffusion step t for L_vlb (Nichol & Dhariwal 2021, section 3.3).

The bound's sum over steps is estimated from one step per example:
    L_vlb = sum_t L_t = E_{t ~ p}[L_t / p_t],
unbiased for any p with p_t > 0; the estimate's variance is smallest for p_t proportional to
sqrt(E[L_t^2]). E[L_t^2] is tracked from the last `history` (10) values of each L_t seen in
training, and t is drawn uniformly until every step has 10 of them. As in the authors' released
code, p is mixed with a small uniform share (`UNIFORM_SHARE`) so that every p_t stays positive.
A training loss multiplies each example's terms by 1 / (T p_t) (`importance_weights`), which keeps
each term's estimate unbiased.

The pure functions hold the maths; `ImportanceTimestepSampler` keeps the history in buffers of a
small nn.Module, so that it is saved in checkpoints and a resumed run draws the same steps.
Steps t are 1-based, as everywhere in `genmodels.diffusion`.
"""

from __future__ import annotations

import typing
from typing import Literal

import torch
from torch import nn

TimestepSampler = Literal["uniform", "importance"]
T_SAMPLERS = typing.get_args(TimestepSampler)
HISTORY = 10             # values of L_t kept per step (Nichol & Dhariwal sec. 3.3)
UNIFORM_SHARE = 1e-3     # share of the uniform distribution mixed into p (keeps p_t > 0)


def importance_probabilities(history: torch.Tensor, counts: torch.Tensor,
                             uniform_share: float = UNIFORM_SHARE) -> torch.Tensor:
    """p_t proportional to sqrt(mean of the stored L_t^2), mixed with `uniform_share` of the uniform
    distribution; uniform until every step holds a full history (or while the history sums to 0).

    history: (T, H) float, the last H values of L_t per step (row t-1 for step t; their order does
    not matter); counts: (T,) int, how many values each row has received (full from H on).
    Returns (T,) float64 summing to 1. Decided on the device: nothing is read back to the host."""
    T, H = history.shape
    rms = history.double().pow(2).mean(dim=1).sqrt()                     # sqrt(E[L_t^2])
    total = rms.sum()
    follow = (counts >= H).all() & (total > 0)                           # False for a NaN total too
    uniform = torch.full((T,), 1.0 / T, dtype=torch.float64, device=history.device)
    weighted = (1.0 - uniform_share) * rms / torch.where(follow, total, 1.0) + uniform_share / T
    return torch.where(follow, weighted, uniform)


def draw_timesteps(p: torch.Tensor, n: int, generator: torch.Generator | None,
                   device: torch.device | str) -> torch.Tensor:
    """n steps t ~ p (1-based, (n,) int64 on `device`) by inverting the CDF of p at n uniforms, one
    per example (example index first, so that under data parallelism each rank keeps its slice of
    the global batch's draw)."""
    u = torch.rand((n,), generator=generator, device=device, dtype=torch.float64)
    cdf = torch.cumsum(p.double(), dim=0).to(device)
    idx = torch.searchsorted(cdf, u, right=True).clamp(max=p.numel() - 1)
    return idx + 1


def importance_weights(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """1 / (T p_t) for steps t (B,) int64 1-based: the factor that makes L_t / p_t = T L_t * weight
    an unbiased estimate of sum_t L_t when t ~ p (1 for uniform p). Returns (B,) float32."""
    T = p.numel()
    return (1.0 / (T * p.to(t.device)[t - 1])).float()


@torch.no_grad()
def push_history(history: torch.Tensor, counts: torch.Tensor, t: torch.Tensor, values: torch.Tensor) -> None:
    """Append values[i] to the history of step t[i], in the order given, in place: each row is a
    ring of H slots, and the j-th value a step ever receives (j = 0, 1, ...) goes to slot j mod H,
    overwriting the oldest once the row is full. counts (T,) counts the values each row received.
    history (T, H), t (N,) 1-based, values (N,). Computed on the device, with no host read: the
    rank of each value among the batch's values of its step comes from a stable sort, and of a
    step drawn more than H times in one batch only its last H values are written."""
    T, H = history.shape
    rows = (t.reshape(-1) - 1).long()
    n = rows.numel()
    if n == 0:
        return
    order = torch.sort(rows, stable=True).indices
    sorted_rows = rows[order]
    index = torch.arange(n, device=rows.device)
    starts = torch.ones(n, dtype=torch.bool, device=rows.device)
    starts[1:] = sorted_rows[1:] != sorted_rows[:-1]
    first = torch.cummax(torch.where(starts, index, 0), dim=0).values   # where each run of one step begins
    rank = torch.empty_like(index)
    rank[order] = index - first                                          # 0, 1, ... within a step, in order
    new = torch.bincount(rows, minlength=T)
    kept = rank >= new[rows] - H                                         # the last H of each step's values
    slots = (counts[rows] + rank) % H
    # the dropped values go to a spare last cell, so every kept (row, slot) is written exactly once
    flat = torch.cat([history.reshape(-1), history.new_zeros(1)])
    target = torch.where(kept, rows * H + slots, T * H)
    flat[target] = values.detach().reshape(-1).to(history.dtype)
    history.copy_(flat[:-1].view(T, H))
    counts.add_(new)


class ImportanceTimestepSampler(nn.Module):
    """The state of Nichol & Dhariwal's importance sampler: buffers `history` (T, 10) float64 (the
    last values of each L_t, nats per dimension, in ring order) and `counts` (T,) int64 (the values
    each step has received). No parameters. Drawing and updating read nothing back to the host."""

    history: torch.Tensor                   # the buffers registered in __init__
    counts: torch.Tensor

    def __init__(self, T: int, history: int = HISTORY):
        super().__init__()
        self.register_buffer("history", torch.zeros(T, history, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(T, dtype=torch.long))

    def probabilities(self) -> torch.Tensor:
        """The current p (T,), float64 (`importance_probabilities`)."""
        return importance_probabilities(self.history, self.counts)

    def sample(self, n: int, generator: torch.Generator | None, device: torch.device | str):
        """(t (n,) int64 1-based drawn from p, weights 1 / (T p_t) (n,) float32)."""
        p = self.probabilities()
        t = draw_timesteps(p, n, generator, device)
        return t, importance_weights(p, t)

    @torch.no_grad()
    def update(self, t: torch.Tensor, values: torch.Tensor) -> None:
        """Record the L_t values of one (global) batch: t (N,) 1-based, values (N,)."""
        push_history(self.history, self.counts, t, values)
