"""Data-parallel training with `torch.distributed`, as launched by `torchrun`.

    torchrun --nproc_per_node N -m genmodels train MODEL ...            (one machine)
    torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port P \
             --nproc_per_node N -m genmodels train MODEL ...            (several machines)

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `setup` reads them and
joins the process group (gloo for CPU training, NCCL for CUDA, each rank on cuda:LOCAL_RANK).

How a step is distributed (see docs/scaling.md for why not DistributedDataParallel's wrapper):
the global minibatch of trainer.batch_size examples is split by rank (`DataStream`), per-example
noise is drawn for the global batch and sliced (`GlobalBatchRandomness`), and `ctx.optimize`
averages the gradients of the stepped parameters over the ranks, in buckets all-reduced while the
backward pass runs (`GradientBuckets`), before clipping and stepping: the mean of the W per-rank
mean losses is the global-batch mean loss, so every rank takes the step one process would take
with the whole batch, and the weights, the optimiser states and the EMA stay identical on every
rank. On CUDA the process group pairs NCCL (CUDA tensors) with gloo (CPU tensors), so that the
small flags the ranks agree on (a stop signal) never wait for the GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genmodels.errors import ConfigError
from genmodels.run.load import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the process group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> DistInfo:
    """The initialised process group's rank and size, or the single-process DistInfo."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1; returns (info, device).

    device_name is trainer.device: under torchrun, auto/cuda mean cuda:LOCAL_RANK (NCCL) when CUDA
    is available, cpu means gloo on the CPU; an explicit cuda:N is refused (each rank picks its
    own GPU)."""

    if not launched_by_torchrun():
        return DistInfo(), resolve_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name.startswith("cuda:"):
        raise ConfigError(f"trainer.device {device_name!r} under torchrun: use cuda (each rank uses "
                          f"cuda:LOCAL_RANK) or cpu")
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"distributed training runs on cpu (gloo) or cuda (NCCL), not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    return current(), device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


@torch.no_grad()
def average_buffers(modules: dict[str, torch.nn.Module], world_size: int) -> None:
    """Average every floating-point buffer (batch-norm statistics, data standardisers) over the
    ranks, with one all-reduce in float64 and nothing read back to the host, so that state which is
    not a parameter (and so not synchronised by the gradient average) stays identical on every
    rank, as the EMA and the checkpoints written by rank 0 require."""
    buffers = [b for m in modules.values() for b in m.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.detach().reshape(-1).to(torch.float64) for b in buffers])
    dist.all_reduce(flat)
    flat.div_(world_size)
    offset = 0
    for b in buffers:
        k = b.numel()
        b.copy_(flat[offset:offset + k].view_as(b).to(b.dtype))
        offset += k


@torch.no_grad()
def average_values(values: dict[str, float | torch.Tensor], world_size: int,
                   device: torch.device) -> dict[str, float]:
    """The logged values averaged over the ranks, in float64 (one all-reduce and one host read), so
    that metrics.jsonl describes the global batch. Every rank must call it at the same steps."""
    keys = sorted(values)
    parts = [v.detach().reshape(1).to(device, torch.float64) if isinstance(v, torch.Tensor)
             else torch.full((1,), float(v), dtype=torch.float64, device=device) for v in (values[k] for k in keys)]
    if not parts:
        return {}
    flat = torch.cat(parts)
    dist.all_reduce(flat)
    flat.div_(world_size)
    return dict(zip(keys, flat.tolist(), strict=True))


@torch.no_grad()
def broadcast_modules(modules: dict[str, torch.nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every rank (as DistributedDataParallel does when it
    wraps a module), so that all ranks start from the same weights."""
    for m in modules.values():
        for t in [*m.parameters(), *m.buffers()]:
            if t.dtype == torch.bool:                      # not every backend reduces bool tensors
                tmp = t.data.to(torch.uint8)
                dist.broadcast(tmp, src=0)
                t.data.copy_(tmp.bool())
            else:
                dist.broadcast(t.data, src=0)


def check_batch(batch_size: int, info: DistInfo) -> int:
    """The per-rank batch size m = B / W; ConfigError if W does not divide B."""
    if batch_size % info.world_size:
        raise ConfigError(f"trainer.batch_size {batch_size} is not divisible by the {info.world_size} processes: "
                          f"each rank takes batch_size / nproc examples of every global batch")
    return batch_size // info.world_size


def flag_device(device: torch.device) -> torch.device:
    """Where a small flag is all-reduced without waiting for `device`: the CPU when the process
    group reduces CPU tensors (gloo, or `setup`'s gloo + NCCL pair), else `device`."""
    return torch.device("cpu") if "gloo" in str(dist.get_backend()) else device


def max_over_ranks(value: int, device: torch.device) -> int:
    """The largest of the ranks' `value`s (one all-reduce; every rank must call it)."""
    t = torch.tensor([value], dtype=torch.int64, device=flag_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether `flag` is true on any rank (one all-reduce; every rank must call it)."""
    return max_over_ranks(int(flag), device) > 0
