"""What a training run carries from step to step, and what its checkpoints hold.

`TrainingState` gathers the model's networks and optimisers, the EMA of `model.ema_modules()`, the
data order (`DataStream`), the step context with its AMP scalers, the `step` random stream and the
step count. `save()` gives the checkpoint's dict (`genmodels.run.checkpoint` reads it: tensors and
plain data only) and `restore()` loads one back, so that a resumed run continues bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.errors import CheckpointError
from genmodels.run.checkpoint import FORMAT, FORMAT_VERSION, load_modules, load_optimizers
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream
from genmodels.training.ema import EMA
from genmodels.training.posthoc_ema import PowerEMA


@dataclass
class TrainingState:
    """The resumable state of a run in training."""

    modules: dict[str, torch.nn.Module]          # model.modules()
    optimizers: dict[str, torch.optim.Optimizer]  # model.optimizers()
    ema_modules: dict[str, torch.nn.Module]      # the networks whose EMA is kept ({} without an EMA)
    ema: EMA | None                              # their EMA (trainer.ema_decay > 0)
    stream: DataStream                           # the data order (the `data` stream)
    ctx: TrainContext                            # the step context (AMP scalers)
    generator: torch.Generator                   # the `step` stream train_step draws from
    step: int = 0                                # completed optimisation steps
    power_ema: PowerEMA | None = None            # power-function EMAs of ema_modules (trainer.ema_sigma_rels)

    def save(self, header: dict, global_rng: torch.Tensor | None) -> dict:
        """The checkpoint: `header` (model name and config, data spec, seed) and everything to resume
        from; `global_rng` is torch's global RNG state inside the run's private copy (rank 0)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **header,
            "step": self.step,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            **({"power_ema": self.power_ema.state_dict()} if self.power_ema is not None else {}),
            "scalers": self.ctx.scaler_states(self.optimizers),
            "data": self.stream.state_dict(),
            "rng": {"step": self.generator.get_state(), "global": global_rng},
        }

    def restore(self, ckpt: dict, path: Path) -> None:
        """Load everything checkpoint `ckpt` (read from `path`) holds; CheckpointError naming the file
        when it does not match the model."""
        load_modules(self.modules, ckpt["modules"], path)
        load_optimizers(self.optimizers, ckpt["optimizers"], path)
        if self.ema is not None:
            if ckpt.get("ema") is None:
                raise CheckpointError(f"{path}: holds no EMA but trainer.ema_decay is {self.ema.decay}")
            try:
                self.ema.load_state_dict(ckpt["ema"])
            except (KeyError, RuntimeError) as e:
                raise CheckpointError(f"{path}: EMA does not match the model: {e}") from None
        if self.power_ema is not None:
            try:
                self.power_ema.load_state_dict(ckpt["power_ema"])
            except (KeyError, RuntimeError) as e:
                raise CheckpointError(f"{path}: power-function EMAs do not match trainer.ema_sigma_rels: {e}") from None
        self.ctx.load_scaler_states(self.optimizers, ckpt.get("scalers", {}))
        self.stream.load_state_dict(ckpt["data"])
        self.generator.set_state(ckpt["rng"]["step"])
        self.step = int(ckpt["step"])
