"""Read points: the steps after which the trainer reads values back from the device (it logs, writes
samples or a checkpoint); between them the hot path reads nothing back."""

from __future__ import annotations

import torch

from genmodels.config import TrainerConfig


def read_points(cfg: TrainerConfig, step: int, total: int) -> tuple[bool, bool, bool, bool]:
    """(keep, logs, samples, saves) after `step` of `total` steps: whether it is kept as a numbered
    checkpoint, logged, sampled, checkpointed (a stop request adds a checkpoint). Any of them is a
    read point, where the step's values are read back from the device."""
    keep = cfg.keep_every > 0 and step % cfg.keep_every == 0
    logs = step % cfg.log_every == 0 or step == total
    samples = cfg.sample_every > 0 and (step % cfg.sample_every == 0 or step == total)
    saves = keep or step % cfg.checkpoint_every == 0 or step == total
    return keep, logs, samples, saves


def host_values(values: dict[str, float | torch.Tensor]) -> dict[str, float]:
    """The logged values as Python floats, with one device-to-host copy per device for the tensors."""
    read: dict[str, float] = {}
    for device in {v.device for v in values.values() if isinstance(v, torch.Tensor)}:
        names = [k for k, v in values.items() if isinstance(v, torch.Tensor) and v.device == device]
        read.update(zip(names, torch.stack([values[k].reshape(()) for k in names]).tolist(), strict=True))
    return {k: read[k] if k in read else float(v) for k, v in values.items()}
