"""The sampling batch size chosen from memory, when the user gives none (`--batch-size`).

The rule (`auto_batch_size`, a pure function):

    batch = min(cap, n, max(1, floor(MEMORY_SHARE * free / per_sample)))

free: the device's free memory (`free_memory_bytes`: CUDA's free memory, the CPU's MemAvailable);
per_sample: `probe_bytes_per_sample`, the bytes of every module output of one network forward of a
one-sample probe (`model.sample_with(1, options)`, stopped as soon as the first of the model's
networks returns, under the same precision), times ACTIVATION_FACTOR for the operations between
modules (activations, sums) that the module hooks do not see. Holding all of them at once is an
upper bound on what inference keeps alive, so the batch errs small. cap: the command's default
(`genmodels sample`: 500 on a CPU, where larger batches only add page faults, 1000 elsewhere;
`evaluate` and `compare`: 500), so that on a machine with the memory the
batches, and with them the samples of a given seed (each batch draws from the generator in turn),
are those of the fixed size the commands used before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genmodels.run.model_size import memory_bytes

MEMORY_SHARE = 0.5          # of the free memory one sampling batch may take
ACTIVATION_FACTOR = 2       # the operations between modules, unseen by the hooks
MEMINFO = Path("/proc/meminfo")


def auto_batch_size(per_sample_bytes: int, free_bytes: int | None, cap: int, n: int) -> int:
    """The rule above; no estimate (per_sample_bytes <= 0) or no free-memory figure gives min(cap, n)."""
    most = max(1, min(cap, n))
    if per_sample_bytes <= 0 or free_bytes is None:
        return most
    return max(1, min(most, int(MEMORY_SHARE * free_bytes // per_sample_bytes)))


def free_memory_bytes(device: torch.device, meminfo: Path = MEMINFO) -> int | None:
    """Free memory of `device`: CUDA's free memory, MemAvailable of /proc/meminfo for the CPU (else
    its physical memory), the total memory elsewhere; None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            for line in meminfo.read_text(encoding="utf-8").splitlines():
                key, _, value = line.partition(":")
                if key == "MemAvailable":
                    return int(value.split()[0]) * 1024           # kB
        except (OSError, ValueError, IndexError):
            pass
    return memory_bytes(device)


class _FirstForwardDone(Exception):
    """Raised from a forward hook to end the probe once a network has run."""


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    return 0


def probe_bytes_per_sample(model, options, context: Callable[[], contextlib.AbstractContextManager]) -> int:
    """ACTIVATION_FACTOR x the bytes of the module outputs of the first network forward in
    `model.sample_with(1, options)` run inside `context()` (the sampling precision); its own
    generator, so the caller's draws are untouched."""
    counted = [0]
    handles = []

    def count(module, inputs, output):
        counted[0] += _nbytes(output)

    def stop(module, inputs, output):
        count(module, inputs, output)
        raise _FirstForwardDone

    for net in model.modules().values():
        for m in net.modules():
            if m is net:
                handles.append(m.register_forward_hook(stop))
            elif not any(True for _ in m.children()):
                handles.append(m.register_forward_hook(count))
    try:
        with context():
            model.sample_with(1, options, generator=torch.Generator(device=model.device).manual_seed(0))
    except _FirstForwardDone:
        pass
    finally:
        for h in handles:
            h.remove()
    return ACTIVATION_FACTOR * counted[0]


def sampling_batch_size(model, options, n: int, cap: int,
                        context: Callable[[], contextlib.AbstractContextManager]) -> int:
    """The automatic sampling batch of `model` with `options` for n samples (the rule above)."""
    per_sample = probe_bytes_per_sample(model, options, context)
    return auto_batch_size(per_sample, free_memory_bytes(model.device), cap, n)
