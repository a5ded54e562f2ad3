"""Learning-rate schedules: a linear warm-up, then constant, cosine or linear decay.

The schedule is a pure function of the step, applied by the trainer to every optimiser a model
owns before each training step:

    lr(step) = base_lr * f(step)
    f(step)  = (step + 1) / warmup                                   for step < warmup
             = 1                                                     constant
             = 1/2 (1 + cos(pi p))                                   cosine (Loshchilov & Hutter 2017)
             = 1 - p                                                 linear
    p        = (step - warmup) / (total - warmup)  in [0, 1)

Each parameter group's `base_lr` (the learning rate the model built it with) is stored in the
group itself, so it travels inside the optimiser's state dict: a checkpoint holds it and a resumed
run recomputes exactly the learning rate the uninterrupted run used at that step.
"""

from __future__ import annotations

import math
import typing

import torch

from genmodels.config import LRSchedule
from genmodels.errors import choice_error

LR_SCHEDULES = typing.get_args(LRSchedule)


def lr_factor(step: int, total: int, warmup: int = 0, schedule: LRSchedule = "constant") -> float:
    """f(step) of the module docstring for 0-based `step` of `total` steps."""
    if schedule not in LR_SCHEDULES:
        raise choice_error("trainer.lr_schedule", schedule, LR_SCHEDULES)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    p = min(1.0, (step - warmup) / (total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0 - p


def set_learning_rates(optimizers: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """lr = base_lr * factor in every parameter group (base_lr is recorded on first use)."""
    for opt in optimizers.values():
        for group in opt.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * factor
