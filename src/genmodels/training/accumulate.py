"""Gradient accumulation: one optimisation step as k micro-batches of a rank's batch (trainer.accumulate)."""

from __future__ import annotations

import torch

from genmodels.models.base import GenerativeModel
from genmodels.training import distributed
from genmodels.training.context import TrainContext
from genmodels.training.global_batch import GlobalBatchRandomness


def accumulated_step(model: GenerativeModel, batch: tuple[torch.Tensor, torch.Tensor], ctx: TrainContext,
                      generator: torch.Generator, k: int,
                      par: distributed.DistInfo) -> dict[str, float | torch.Tensor]:
    """One optimisation step as k micro-batches of this rank's batch (trainer.accumulate = k).

    Micro-batch j plays the part that rank j would play under data parallelism: it holds examples
    j*m/k .. (j+1)*m/k - 1 of the batch, its per-example noise is its slice of the draw for the
    whole global batch (`GlobalBatchRandomness`, with the generator rewound before each micro-batch,
    so every micro-batch sees the same global draw and the generator ends where one whole-batch
    step leaves it), and `ctx.optimize` backpropagates loss / k into the summed gradients and
    steps after the last one. The update equals that of one batch up to floating-point rounding.
    Returns the logged values averaged over the micro-batches (in float64; tensors stay on the device)."""
    x, y = batch
    micro = x.shape[0] // k
    start_state = generator.get_state()
    totals: dict[str, float | torch.Tensor] = {}
    ctx.begin_accumulation(x)
    try:
        for j in range(k):
            generator.set_state(start_state)
            ctx.micro_index = j
            part = (x[j * micro:(j + 1) * micro], y[j * micro:(j + 1) * micro])
            with GlobalBatchRandomness(generator, micro, par.rank * k + j, par.world_size * k):
                out = model.train_step(part, ctx)
            for name, v in out.items():
                v = v.detach().double() if isinstance(v, torch.Tensor) else float(v)
                totals[name] = totals.get(name, 0.0) + v / k
    finally:
        ctx.end_accumulation()
    return totals
