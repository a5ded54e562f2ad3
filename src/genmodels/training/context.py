"""The trainer's implementation of `genmodels.models.base.StepContext`: what a model's
`train_step(batch, ctx)` may use (randomness, mixed precision, the one way to take an
optimiser step, and further minibatches).

Under data parallelism `optimize` averages the gradients over the ranks (one all-reduce, before
clipping, grad-scaler unscaling and the step), so it is the single place where ranks meet during
a step; see `genmodels.training.distributed`."""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch
import torch.distributed

from genmodels.errors import ConfigError, TrainingDiverged
from genmodels.training.distributed import DistInfo, average_gradients

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainContext:
    """StepContext for one run; the trainer sets `step` before each `train_step`."""

    def __init__(self, *, device: torch.device, generator: torch.Generator, precision: str, grad_clip: float,
                 next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]], dist: DistInfo = DistInfo(),
                 accumulate: int = 1):
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"trainer.precision fp16 needs a CUDA device (got {device}); use bf16 or fp32")
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"trainer.precision bf16 is not supported by {torch.cuda.get_device_name(device)}; "
                              f"use fp16 (with grad scaling) or fp32")
        if precision != "fp32" and device.type not in ("cpu", "cuda"):
            raise ConfigError(f"trainer.precision {precision} needs a cpu or cuda device (got {device}); use fp32")
        self.dist = dist
        self.step = 0
        self.device = device
        self.generator = generator
        self.precision = precision
        self.grad_clip = grad_clip
        self._next_batch = next_batch
        self.scalers: dict[int, torch.amp.GradScaler] = {}   # one per optimiser (fp16 only)
        # gradient accumulation (trainer.accumulate): set by the trainer around the k micro-batches
        self.accumulate = accumulate
        self.micro_index = 0
        self._accumulating = False
        self._whole_batch: torch.Tensor | None = None
        self._micro_optimized = -1          # the micro-batch that last called optimize
        self._micro_bad = False             # a non-finite loss in an earlier micro-batch (W > 1)

    def begin_accumulation(self, x: torch.Tensor) -> None:
        """The trainer is about to run `accumulate` micro-batches of this rank's batch `x`."""
        self._accumulating, self._whole_batch = True, x
        self._micro_optimized, self._micro_bad = -1, False

    def end_accumulation(self) -> None:
        self._accumulating, self._whole_batch = False, None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh minibatch from the run's data stream (advances the same resumable order)."""
        return self._next_batch()

    def global_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The whole global minibatch (B, ...) from this rank's part (m, ...), gathered over the ranks
        in rank order (x itself in one process). For statistics that must not depend on the number
        of processes, e.g. a data standardiser fitted on the first batch. Not differentiable."""
        if self._accumulating:
            # the micro-batch's data stands for the step's whole batch (all micro-batches)
            x = self._whole_batch.to(device=x.device, dtype=x.dtype)
        if not self.dist.enabled:
            return x
        parts = [torch.empty_like(x) for _ in range(self.dist.world_size)]
        torch.distributed.all_gather(parts, x.detach().contiguous())
        return torch.cat(parts)

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 modules: list[torch.nn.Module] | None = None) -> None:
        """zero_grad, backward, (average the gradients over the ranks), clip the gradient norm to
        trainer.grad_clip, step.

        The loss is checked first: a NaN/inf loss raises TrainingDiverged before any weight changes
        (on every rank, when any rank's loss is not finite).

        Under gradient accumulation (k micro-batches) each micro-batch's call backpropagates
        loss / k into the gradients summed since the first one; only the last call averages over
        the ranks, clips and steps. A model may then take one optimiser step per train_step.
        """
        value = float(loss.detach())
        bad = not math.isfinite(value)
        if bad and not self.dist.enabled:
            raise TrainingDiverged(f"loss is {value} at step {self.step}", step=self.step)
        scaler = self._scaler(optimizer)
        if self._accumulating:
            if self._micro_optimized == self.micro_index:
                raise ConfigError(f"trainer.accumulate = {self.accumulate} needs a model that takes one optimiser "
                                  f"step per training step; this one takes several in each (alternating "
                                  f"steps need each other's update before the next forward pass): "
                                  f"use trainer.accumulate = 1")
            self._micro_optimized = self.micro_index
            if self.micro_index == 0:
                optimizer.zero_grad(set_to_none=True)
            self._micro_bad = self._micro_bad or bad
            if not bad:
                part = loss / self.accumulate
                (scaler.scale(part) if scaler is not None else part).backward()
            if self.micro_index < self.accumulate - 1:
                return
            bad = self._micro_bad
        else:
            optimizer.zero_grad(set_to_none=True)
            if not bad:
                (scaler.scale(loss) if scaler is not None else loss).backward()
        if self.dist.enabled:
            # every rank holds the same scale, so the scaled gradients average as the true ones do
            if average_gradients(self._synced_params(optimizer, modules), self.dist.world_size, bad):
                raise TrainingDiverged(f"loss is not finite on some rank at step {self.step} (here {value})",
                                       step=self.step)
        if scaler is not None:
            if self.grad_clip > 0:
                scaler.unscale_(optimizer)
                self._clip(optimizer, modules)
            scaler.step(optimizer)
            scaler.update()
        else:
            if self.grad_clip > 0:
                self._clip(optimizer, modules)
            optimizer.step()

    @staticmethod
    def _synced_params(optimizer: torch.optim.Optimizer, modules: list[torch.nn.Module] | None) -> list:
        """The stepped parameters plus those whose norm is clipped, each once, in a fixed order."""
        seen, params = set(), []
        groups = [p for group in optimizer.param_groups for p in group["params"]]
        extra = [p for m in modules for p in m.parameters()] if modules is not None else []
        for p in groups + extra:
            if id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                params.append(p)
        return params

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
