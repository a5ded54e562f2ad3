"""The contract between a model family and the model-agnostic trainer / CLI.

Nothing in `genmodels.train` knows which model it trains: a model supplies its own training
step, sampler and state. Each family lives in its own module under `genmodels.models` and is
registered in `genmodels.models.registry`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import torch

from genmodels.data.dataset import DataSpec


class StepContext(Protocol):
    """What the trainer hands to `train_step`: randomness, the step number, and the one way to
    take an optimiser step (which applies gradient clipping, AMP grad scaling and DDP)."""

    step: int                    # global step being computed (0-based)
    generator: torch.Generator   # the run's explicit RNG for noise, timesteps, codes (on model device)
    device: torch.device

    def autocast(self) -> AbstractContextManager: ...
    """Mixed-precision context for forward passes (a no-op context in fp32)."""

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 modules: list[torch.nn.Module] | None = None) -> None: ...
    """zero_grad, backward (scaled under fp16), clip the gradients of `modules`' parameters
    (or the optimizer's parameters) to the configured norm, and step."""

    def global_batch(self, x: torch.Tensor) -> torch.Tensor: ...
    """The whole global minibatch gathered over data-parallel ranks (x itself in one process), for
    statistics that must not depend on the number of processes. Per-example random draws from
    `generator` must put the example index first, so that each rank keeps its slice of the
    global draw."""

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    """A fresh data minibatch (x, y) from the training data (used by Algorithm 2.1 for the
    k discriminator steps, each of which sees a new minibatch)."""


@runtime_checkable
class GenerativeModel(Protocol):
    """A trainable generative model.

    `build(config, spec, device)` constructs one; the config is the family's own dataclass.
    """

    config: Any
    spec: DataSpec

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx: StepContext) -> dict[str, float]: ...
    """One training iteration; returns the scalars to log (losses, diagnostics)."""

    def sample(self, n: int, *, generator: torch.Generator | None = None, **options) -> torch.Tensor: ...
    """n samples in data space: images (n, C, H, W) in [-1, 1] or points (n, D)."""

    def ema_modules(self) -> dict[str, torch.nn.Module]: ...
    """The sub-networks whose weights the trainer keeps an exponential moving average of
    (e.g. the denoiser, or the generator)."""

    def modules(self) -> dict[str, torch.nn.Module]: ...
    """All networks, by name (for checkpoints, DDP wrapping, device moves)."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...
    """All optimisers, by name (for checkpoints)."""
