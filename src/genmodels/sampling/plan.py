"""How a trained model samples: without autograd, in the run's precision, in batches sized from memory.

Precision. Sampling runs under `inference(precision, device)`: `torch.inference_mode()` (no
autograd graph and no version counters) inside the autocast context that training used
(`training.context.autocast`). The precision is `sampling_precision(asked, run_precision, device)`:

  * asked "run" (the default): the run's trainer.precision as its config.toml records it (already
    resolved when the run was created, `training.hardware.resolve_precision`), where this device
    runs it natively: bf16 where `resolve_precision("auto", device)` picks bf16 (AVX512-BF16/AMX
    CPUs, Ampere+ GPUs), fp16 on CUDA. Elsewhere fp32: emulated bf16 is slower than fp32, and fp16
    autocast needs CUDA. A run trained in fp32 samples in fp32.
  * asked fp32, bf16 or fp16: that precision, refused (`training.hardware.check_precision`) where
    the device cannot run it.

Batch size, when the user gives none (`auto_batch_size`, a pure function):

    batch = min(cap, n, max(1, floor(MEMORY_SHARE * free / per_sample)))

free: the device's free memory (`free_memory_bytes`: CUDA's free memory, the CPU's MemAvailable);
per_sample: `probe_bytes_per_sample`, the bytes of every module output of one network forward of a
one-sample probe (`model.sample(1, options)`, stopped as soon as the first of the model's
networks returns, under the same precision), times ACTIVATION_FACTOR for the operations between
modules (activations, sums) that the module hooks do not see. Holding all of them at once is an
upper bound on what inference keeps alive, so the batch errs small. cap: the command's default
(`genmodels sample`: CPU_BATCH_CAP on a CPU, where larger batches only add page faults, BATCH_CAP
elsewhere; `evaluate` and `compare`: 500), so that on a machine with the memory the batches, and
with them the samples of a given seed (each batch draws from the generator in turn), are those of
the fixed size the commands used before.

`sampling_plan(loaded, options, n, ...)` puts it together: the precision, the context, and the
batch size (the user's, or `sampling_batch_size` from memory).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genmodels.metrics.evaluate import SamplingPrecision
from genmodels.models.base import GenerativeModel
from genmodels.run import LoadedRun
from genmodels.run.model_size import memory_bytes
from genmodels.training.context import autocast
from genmodels.training.hardware import check_precision, emulated_precision, resolve_precision

BATCH_CAP = 1000     # the most samples per automatic batch of `genmodels sample` on an accelerator
# on a CPU, larger batches than this only add page faults: 1,000 DPM-Solver++-20 samples of zoo:ddpm-mnist on one
# thread took 42.8 CPU-s (user + system) at batch 1,000 in bf16 against 35.7 at 500 and 36.5 at 250, and 88.0
# against 68.2 and 59.6 in fp32 (measured on a busy 2-core machine); 500 is also evaluate's cap
CPU_BATCH_CAP = 500
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


def probe_bytes_per_sample(model: GenerativeModel, options: Any,
                           context: Callable[[], contextlib.AbstractContextManager]) -> int:
    """ACTIVATION_FACTOR x the bytes of the module outputs of the first network forward in
    `model.sample(1, options)` run inside `context()` (the sampling precision); its own
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
            model.sample(1, options, generator=torch.Generator(device=model.device).manual_seed(0))
    except _FirstForwardDone:
        pass
    finally:
        for h in handles:
            h.remove()
    return ACTIVATION_FACTOR * counted[0]


def sampling_batch_size(model: GenerativeModel, options: Any, n: int, cap: int,
                        context: Callable[[], contextlib.AbstractContextManager]) -> int:
    """The automatic sampling batch of `model` with `options` for n samples (the rule above)."""
    per_sample = probe_bytes_per_sample(model, options, context)
    return auto_batch_size(per_sample, free_memory_bytes(model.device), cap, n)


def sampling_precision(asked: SamplingPrecision, run_precision: str, device: torch.device) -> tuple[str, str]:
    """(fp32 | bf16 | fp16, why) to sample on `device`, for `asked` (the --precision setting) and the
    run's trainer.precision `run_precision`."""
    device = torch.device(device)
    if asked != "run":
        check_precision(asked, device)
        return asked, "as asked"
    if run_precision in ("fp32", "auto"):
        precision, why = resolve_precision(run_precision, device)
        return precision, ("the run's" if run_precision == "fp32" else why)
    native = (resolve_precision("auto", device)[0] == "bf16") if run_precision == "bf16" else device.type == "cuda"
    if native:
        return run_precision, "the run's"
    return "fp32", f"the run trained in {run_precision}, which {device.type} does not run natively"


@contextlib.contextmanager
def inference(precision: str, device: torch.device) -> Iterator[None]:
    """torch.inference_mode() inside the autocast of `precision` on `device` (fp32: none)."""
    with torch.inference_mode(), autocast(precision, torch.device(device)):
        yield


@dataclass(frozen=True)
class SamplingPlan:
    """How a command samples a loaded model: the precision (and why), the batch size, the context."""

    precision: str
    why: str
    batch_size: int
    context: Callable[[], contextlib.AbstractContextManager]


def sampling_plan(loaded: LoadedRun, options: Any, n: int, *, precision: SamplingPrecision = "run",
                  batch_size: int | None = None, cap: int) -> SamplingPlan:
    """The plan for n samples of `loaded` with `options` (its sample-options instance): the precision
    of `sampling_precision`, and `batch_size`, or (None) the automatic one of at most `cap`, measured
    in that precision. A precision the CPU emulates is named on stderr with its expected cost."""
    device = loaded.model.device
    chosen, why = sampling_precision(precision, loaded.config.trainer.precision, device)
    warning = emulated_precision(chosen, device)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    context = functools.partial(inference, chosen, device)
    if batch_size is None:
        batch_size = sampling_batch_size(loaded.model, options, n, cap, context)
    return SamplingPlan(chosen, why, batch_size, context)
