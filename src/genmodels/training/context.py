"""The trainer's implementation of `genmodels.models.base.StepContext`: what a model's
`train_step(batch, ctx)` may use (randomness, mixed precision, the one way to take an
optimiser step, and further minibatches).

Under data parallelism `optimize` averages the gradients over the ranks (in buckets whose
all-reduces overlap the backward pass, `genmodels.training.grad_buckets`), before clipping,
grad-scaler unscaling and the step, so it is the single place where ranks meet during a step.

Nothing in `optimize` reads a value back to the host: the loss and gradient checks are device
flags recorded in the run's `Health` (`genmodels.training.health`), and a bad step is not applied
(`genmodels.training.step_guard`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.distributed

from genmodels.config import GradCompression
from genmodels.errors import ConfigError, TrainingDiverged
from genmodels.training.distributed import DistInfo
from genmodels.training.grad_buckets import GradientBuckets
from genmodels.training.hardware import check_precision
from genmodels.training.health import Health
from genmodels.training.step_guard import grad_norm, step_unless, zero_grads_if

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The mixed-precision context of `precision` (fp32, bf16 or fp16) on `device`: a no-op in fp32.
    Training steps (`TrainContext.autocast`) and sampling (`genmodels.sampling.plan`) use it."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


class TrainContext:
    """StepContext for one run; the trainer sets `step` before each `train_step`."""

    def __init__(self, *, device: torch.device, generator: torch.Generator, precision: str, grad_clip: float,
                 next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]], dist: DistInfo = DistInfo(),
                 accumulate: int = 1, health: Health | None = None, bucket_mb: float = 1.0,
                 compression: GradCompression = "none"):
        """health: the run's checks, read by the trainer at its read points; without it (a context
        of one's own, a test) each optimize reads its checks at once and raises TrainingDiverged
        before any weight changes. bucket_mb, compression: the gradient all-reduce under torchrun
        (trainer.grad_bucket_mb, trainer.grad_compression)."""
        check_precision(precision, device)
        self.dist = dist
        self.step = 0
        self.reads = True                   # the trainer sets it before each step (StepContext.reads)
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
        self._micro_bad: torch.Tensor | None = None   # a non-finite loss in an earlier micro-batch
        self.immediate = health is None
        self.health = health if health is not None else Health(device)
        self.buckets = GradientBuckets(dist.world_size, bucket_mb, compression) if dist.enabled else None

    def begin_accumulation(self, x: torch.Tensor) -> None:
        """The trainer is about to run `accumulate` micro-batches of this rank's batch `x`."""
        self._accumulating, self._whole_batch = True, x
        self._micro_optimized, self._micro_bad = -1, None

    def end_accumulation(self) -> None:
        self._accumulating, self._whole_batch = False, None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (no-op in fp32)."""
        return autocast(self.precision, self.device)

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

        A non-finite loss (on any rank) or gradient norm is never applied: the step is skipped on
        the device (fused optimisers) or taken on zero gradients, and the trainer raises
        TrainingDiverged naming this step at its next read point, before it writes anything. No
        value is read back to the host here (a context made without `health` reads at once and
        raises before any weight changes).

        Under gradient accumulation (k micro-batches) each micro-batch's call backpropagates
        loss / k into the gradients summed since the first one; only the last call averages over
        the ranks, clips and steps. A model may then take one optimiser step per train_step.
        """
        loss_bad = ~torch.isfinite(loss.detach()).all()
        if self.immediate and not self.dist.enabled and bool(loss_bad):
            raise TrainingDiverged(f"loss is {float(loss.detach())} at step {self.step}", step=self.step)
        scaler = self._scaler(optimizer)
        part, last = loss, True
        if self._accumulating:
            if self._micro_optimized == self.micro_index:
                raise ConfigError(f"trainer.accumulate = {self.accumulate} needs a model that takes one optimiser "
                                  f"step per training step; this one takes several in each (alternating "
                                  f"steps need each other's update before the next forward pass): "
                                  f"use trainer.accumulate = 1")
            self._micro_optimized = self.micro_index
            if self.micro_index == 0:
                optimizer.zero_grad(set_to_none=True)
            self._micro_bad = loss_bad if self._micro_bad is None else self._micro_bad | loss_bad
            loss_bad, part = self._micro_bad, loss / self.accumulate
            last = self.micro_index == self.accumulate - 1
        else:
            optimizer.zero_grad(set_to_none=True)
        synced = self._synced_params(optimizer, modules) if self.buckets is not None and last else []
        if synced:
            self.buckets.arm(tuple(map(id, synced)), synced, loss_bad)
        try:
            (scaler.scale(part) if scaler is not None else part).backward()
        except BaseException:
            if synced:
                self.buckets.cancel()
            raise
        if not last:
            return
        if synced:
            # every rank holds the same scale, so the scaled gradients average as the true ones do
            loss_bad = self.buckets.finish()
        self._step(optimizer, modules, scaler, loss_bad)

    def _step(self, optimizer: torch.optim.Optimizer, modules: list[torch.nn.Module] | None,
              scaler: torch.amp.GradScaler | None, loss_bad: torch.Tensor) -> None:
        """Clip, check and step (or not) after the backward pass and the gradient average."""
        clipped = self._clip_params(optimizer, modules)
        if scaler is not None:              # inf gradients are the scaler's business: it skips those steps
            if self.grad_clip > 0:
                scaler.unscale_(optimizer)
                grad_norm(clipped, self.grad_clip)
            self._check(loss_bad, None)
            zero_grads_if(optimizer, loss_bad)
            scaler.step(optimizer)
            scaler.update()
            return
        norm = grad_norm(clipped, self.grad_clip)
        grads_bad = ~torch.isfinite(norm) if norm is not None else torch.zeros_like(loss_bad)
        self._check(loss_bad, grads_bad)
        step_unless(optimizer, loss_bad | grads_bad)

    def _check(self, loss_bad: torch.Tensor, grads_bad: torch.Tensor | None) -> None:
        self.health.record("loss", self.step, loss_bad)
        if grads_bad is not None:
            self.health.record("gradients", self.step, grads_bad)
        if self.immediate and bool(loss_bad):
            where = "on some rank " if self.dist.enabled else ""
            raise TrainingDiverged(f"loss is not finite {where}at step {self.step}", step=self.step)
        if self.immediate and grads_bad is not None and bool(grads_bad):
            raise TrainingDiverged(f"gradients are not finite at step {self.step}", step=self.step)

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

    @staticmethod
    def _clip_params(optimizer: torch.optim.Optimizer, modules: list[torch.nn.Module] | None) -> list:
        """The parameters whose gradient norm is clipped (and checked): the modules', else the optimiser's."""
        if modules is not None:
            return [p for m in modules for p in m.parameters()]
        return [p for group in optimizer.param_groups for p in group["params"]]

    def _scaler(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.precision != "fp16":
            return None
        key = id(optimizer)
        if key not in self.scalers:
            self.scalers[key] = torch.amp.GradScaler(self.device.type)
        return self.scalers[key]

    def close(self) -> None:
        """Remove the gradient hooks of data-parallel training (the trainer calls it when a run ends)."""
        if self.buckets is not None:
            self.buckets.close()

    def scaler_states(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
        """{optimizer name: GradScaler state} for the checkpoint."""
        return {name: self.scalers[id(opt)].state_dict() for name, opt in optimizers.items() if id(opt) in self.scalers}

    def load_scaler_states(self, optimizers: dict[str, torch.optim.Optimizer], states: dict) -> None:
        for name, state in states.items():
            scaler = self._scaler(optimizers[name])
            if scaler is not None:
                scaler.load_state_dict(state)
