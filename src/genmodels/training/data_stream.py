"""A resumable stream of minibatches: one random permutation per epoch, drawn from an explicit
generator, consumed in full batches (the remainder of each epoch is dropped so every step sees
`batch_size` examples).

Its state (epoch, position, the current permutation and the generator state) is saved in each
checkpoint, so a resumed run sees exactly the batches an uninterrupted run would have.

Under data parallelism (W processes) every rank draws the same permutation and the same global
batch of `batch_size` examples, and keeps its slice: rank r takes examples r*m .. r*m + m - 1
with m = batch_size / W, so the union over the ranks is the single-process batch. The state is
that of the global order, so a checkpoint resumes on any number of processes.
"""

from __future__ import annotations

import torch

from genmodels.data.dataset import Dataset
from genmodels.errors import CheckpointError, ConfigError


class DataStream:
    """Minibatches (x, y) of `dataset` on `device`; y is -1 for unlabelled data."""

    def __init__(self, dataset: Dataset, batch_size: int, generator: torch.Generator, device: torch.device,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False):
        n = len(dataset)
        if batch_size > n:
            raise ConfigError(f"trainer.batch_size {batch_size} is larger than the data set "
                              f"({dataset.name or 'data'} has {n} examples)")
        self.x = dataset.x
        self.y = dataset.y if dataset.y is not None else torch.full((n,), -1, dtype=torch.int64)
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.local_batch_size = batch_size // world_size
        self.channels_last = channels_last and self.x.dim() == 4
        self.generator = generator
        self.device = device
        self.epoch = 0
        self.position = 0
        self.perm = torch.randperm(n, generator=generator)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.x) // self.batch_size

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of the next global minibatch: x (m, ...) float32 and y (m,) int64 on the
        device, m = batch_size / world_size (the whole batch in one process)."""
        if self.position + self.batch_size > len(self.perm):
            self.epoch += 1
            self.position = 0
            self.perm = torch.randperm(len(self.x), generator=self.generator)
        idx = self.perm[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        m = self.local_batch_size
        idx = idx[self.rank * m:(self.rank + 1) * m]
        x = _to_device(self.x[idx], self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, _to_device(self.y[idx], self.device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "perm": self.perm.clone(),
                "generator": self.generator.get_state(), "num_examples": len(self.x)}

    def load_state_dict(self, state: dict) -> None:
        if state["num_examples"] != len(self.x):
            raise CheckpointError(f"the checkpoint's data had {state['num_examples']} examples, this data set "
                                  f"has {len(self.x)}: resume with the same data")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.perm = state["perm"].clone()
        self.generator.set_state(state["generator"])


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`. A CPU batch bound for CUDA goes through pinned memory, so that the copy is
    asynchronous: a copy from pageable memory waits for the GPU to finish its queued work first."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
