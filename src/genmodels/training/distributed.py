"""Data-parallel training, sampling and evaluation with `torch.distributed`, as launched by
`torchrun` or by SLURM's `srun`.

    torchrun --standalone --nproc_per_node N -m genmodels -- train MODEL ...           (one machine)
    torchrun --nnodes 2 --nproc_per_node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT \
             -m genmodels -- train MODEL ...                       (the same command on every node)
    srun --ntasks 8 python -m genmodels train MODEL ...            (SLURM, without torchrun)

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; under srun without them
`launch` maps SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID to the same places, with the first host
of SLURM_JOB_NODELIST as the master (or MASTER_ADDR / MASTER_PORT when set). `setup` joins the
process group (gloo for CPU training, NCCL for CUDA, each rank on cuda:LOCAL_RANK).

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

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

# torch.distributed.nn takes the default process group as a default argument of its functions
# (`group=group.WORLD`), evaluated when it is imported, and torch imports it lazily (torch._dynamo,
# loaded by the first optimizer, imports it through FSDP). Imported after init_process_group, it
# keeps the group alive past destroy_process_group: gloo's worker threads then outlive the run and,
# when one drops its last collective while the interpreter exits, it frees a Python tensor without
# the GIL and the process aborts ("terminate called without an active exception", SIGABRT) after
# the run has finished. Imported here, before any group exists, the defaults hold None.
import torch.distributed.nn  # noqa: F401

from genmodels.errors import ConfigError, GenmodelsError, RankFailed
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


@dataclass(frozen=True)
class Launch:
    """Where the launcher put this process: rank, world size, local rank, and the rendezvous
    (master address and port); `by` names the launcher ("torchrun", "srun" or "none")."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    by: str = "none"


SLURM_PORT_BASE = 20000     # srun without MASTER_PORT: 20000 + SLURM_JOB_ID mod 20000, one port per job


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: "node[03-05,09],gpu1" -> "node03", "a,b" -> "a"."""
    head = nodelist.strip()
    bracket, comma = head.find("["), head.find(",")
    if bracket < 0 or 0 <= comma < bracket:          # "a,b" or "a,b[1-2]": the plain first name
        return head.split(",", 1)[0]
    first = head[bracket + 1:].split("]", 1)[0].split(",", 1)[0].split("-", 1)[0]   # "03-05,09" -> "03"
    return head[:bracket] + first


def launch(environ: Mapping[str, str] | None = None) -> Launch:
    """This process's Launch, read from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT), else from srun's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the
    first host of SLURM_JOB_NODELIST; MASTER_ADDR / MASTER_PORT override them), else one process."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env:
        return Launch(int(env.get("RANK", "0")), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")),
                      env.get("MASTER_ADDR", "127.0.0.1"), int(env.get("MASTER_PORT", "29500")), "torchrun")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or "127.0.0.1"
        port = env.get("MASTER_PORT") or str(SLURM_PORT_BASE + int(env.get("SLURM_JOB_ID", "0")) % SLURM_PORT_BASE)
        return Launch(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", "0")),
                      env.get("MASTER_ADDR") or first_host(nodelist), int(port), "srun")
    return Launch()


def current() -> DistInfo:
    """The initialised process group's rank and size, or the single-process DistInfo."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DistInfo(dist.get_rank(), dist.get_world_size(), launch().local_rank)
    return DistInfo()


def launched_by_torchrun() -> bool:
    """Whether a launcher (torchrun, or srun with several tasks) started this process as one of several."""
    return launch().world_size > 1


def setup(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1; returns (info, device).

    device_name is trainer.device: under torchrun, auto/cuda mean cuda:LOCAL_RANK (NCCL) when CUDA
    is available, cpu means gloo on the CPU; an explicit cuda:N is refused (each rank picks its
    own GPU)."""

    where = launch()
    if where.world_size <= 1:
        return DistInfo(), resolve_device(device_name)
    local_rank = where.local_rank
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
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        if where.by == "torchrun":      # env://, which knows torchrun's own store
            dist.init_process_group(backend)
        else:                           # srun: the rendezvous `launch` read from SLURM's variables
            dist.init_process_group(backend, init_method=f"tcp://{where.master_addr}:{where.master_port}",
                                    rank=where.rank, world_size=where.world_size)
    return current(), device


@contextlib.contextmanager
def session(device_name: str) -> Iterator[tuple[DistInfo, torch.device]]:
    """`setup` for a command that is not training (sample, evaluate, compare): join the process
    group when launched as one of several processes, leave it at the end (when this call joined it)."""
    joined = not (dist.is_available() and dist.is_initialized())
    info, device = setup(device_name)
    try:
        yield info, device
        if joined:
            barrier(info)        # no rank leaves the group while another still talks to it
    finally:
        if joined and info.enabled:
            teardown()


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


# ---------------------------------------------------------------------------------------------
# Sharded work (sampling, features): strided rows, gathered in order; failures agreed on

T = TypeVar("T")


def strided(items: Sequence[T], info: DistInfo) -> Sequence[T]:
    """This rank's share of `items`: items rank, rank + W, rank + 2W, ... (all of them in one process)."""
    return items[info.rank::info.world_size]


@torch.no_grad()
def gather_rows(local: torch.Tensor, total: int, info: DistInfo, dst: int | None = None) -> torch.Tensor | None:
    """The rows of a strided split put back in order: rank r holds rows r, r + W, ... of `total`
    (`strided`); every rank gets the (total, ...) tensor (dst None: one all-gather), or rank `dst`
    alone (one gather; None elsewhere). One process: `local` itself. Every rank must call it."""
    if not info.enabled:
        return local
    w = info.world_size
    m = -(-total // w)                            # rows of the ranks with the most
    padded = local.new_zeros((m, *local.shape[1:]))
    padded[:len(local)] = local
    if dst is None:
        parts = [torch.empty_like(padded) for _ in range(w)]
        dist.all_gather(parts, padded)
    else:
        parts = [torch.empty_like(padded) for _ in range(w)] if info.rank == dst else []
        dist.gather(padded, parts if info.rank == dst else None, dst=dst)
        if info.rank != dst:
            return None
    return torch.stack(parts, 1).reshape(m * w, *local.shape[1:])[:total]   # row k*W + r is rank r's k-th


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, GenmodelsError) else f"{type(error).__name__}: {error}"


def agree(error: BaseException | None, info: DistInfo) -> None:
    """Every rank calls it after its share of some work, with the error it raised (or None): when
    any rank failed, every rank raises RankFailed naming the first failed rank and its error, so
    the ranks stop together and none goes on to write. One process: `error` is raised as it is."""
    if not info.enabled:
        if error is not None:
            raise error
        return
    messages: list[str | None] = [None] * info.world_size
    dist.all_gather_object(messages, None if error is None else _describe(error))
    failed = [(r, m) for r, m in enumerate(messages) if m is not None]
    if failed:
        rank, message = failed[0]
        more = f" (and {len(failed) - 1} other rank(s))" if len(failed) > 1 else ""
        raise RankFailed(f"rank {rank} of {info.world_size} failed{more}: {message}",
                         quiet=not info.is_main) from error


def on_every_rank(work: Callable[[], T], info: DistInfo) -> T:
    """`work()` (this rank's share), then `agree`: its result, or RankFailed on every rank when any failed."""
    try:
        out = work()
    except Exception as e:      # any failure of a rank must reach the others, not leave them waiting
        agree(e, info)
        raise
    agree(None, info)
    return out
