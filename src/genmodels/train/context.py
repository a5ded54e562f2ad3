"""The trainer's implementation of `genmodels.models.base.StepContext`: what a model's
`train_step(batch, ctx)` may use (randomness, mixed precision, the one way to take an
optimiser step, and further minibatches)."""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch

from genmodels.errors import ConfigError, TrainingDiverged

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainContext:
    """StepContext for one run; the trainer sets `step` before each `train_step`."""

    def __init__(self, *, device: torch.device, generator: torch.Generator, precision: str, grad_clip: float,
                 next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]):
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"trainer.precision fp16 needs a CUDA device (got {device}); use bf16 or fp32")
        self.step = 0
        self.device = device
        self.generator = generator
        self.precision = precision
        self.grad_clip = grad_clip
        self._next_batch = next_batch
        self.scalers: dict[int, torch.amp.GradScaler] = {}   # one per optimiser (fp16 only)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh minibatch from the run's data stream (advances the same resumable order)."""
        return self._next_batch()

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 modules: list[torch.nn.Module] | None = None) -> None:
        """zero_grad, backward, clip the gradient norm to trainer.grad_clip, step.

        The loss is checked first: a NaN/inf loss raises TrainingDiverged before any weight changes.
        """
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(f"loss is {value} at step {self.step}", step=self.step)
        optimizer.zero_grad(set_to_none=True)
        scaler = self._scaler(optimizer)
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.grad_clip > 0:
                scaler.unscale_(optimizer)
                self._clip(optimizer, modules)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if self.grad_clip > 0:
                self._clip(optimizer, modules)
            optimizer.step()

    def _clip(self, optimizer: torch.optim.Optimizer, modules: list[torch.nn.Module] | None) -> None:
        if modules is not None:
            params = [p for m in modules for p in m.parameters()]
        else:
            params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.grad_clip)

    def _scaler(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.precision != "fp16":
            return None
        key = id(optimizer)
        if key not in self.scalers:
            self.scalers[key] = torch.amp.GradScaler(self.device.type)
        return self.scalers[key]

    def scaler_states(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
        """{optimizer name: GradScaler state} for the checkpoint."""
        return {name: self.scalers[id(opt)].state_dict() for name, opt in optimizers.items() if id(opt) in self.scalers}

    def load_scaler_states(self, optimizers: dict[str, torch.optim.Optimizer], states: dict) -> None:
        for name, state in states.items():
            scaler = self._scaler(optimizers[name])
            if scaler is not None:
                scaler.load_state_dict(state)
