"""How a trained model runs when it samples: without autograd, in the run's precision.

`genmodels sample` and `genmodels evaluate` draw under `inference(precision, device)`:
`torch.inference_mode()` (no autograd graph and no version counters) inside the autocast context
that training used (`training.context.autocast`). The precision is `sampling_precision(asked,
run_precision, device)`:

  * asked "run" (the default): the run's trainer.precision as its config.toml records it (already
    resolved when the run was created, `training.hardware.resolve_precision`), where this device
    runs it natively: bf16 where `resolve_precision("auto", device)` picks bf16 (AVX512-BF16/AMX
    CPUs, Ampere+ GPUs), fp16 on CUDA. Elsewhere fp32: emulated bf16 is slower than fp32, and fp16
    autocast needs CUDA. A run trained in fp32 samples in fp32.
  * asked fp32, bf16 or fp16: that precision, refused (`training.hardware.check_precision`) where
    the device cannot run it.

`sampling_plan(loaded, options, n, ...)` puts it together for a command: the precision, the
context, and the batch size (the user's, or `run.sample_batch.sampling_batch_size` from memory).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from genmodels.metrics.evaluate import SamplingPrecision
from genmodels.run import LoadedRun
from genmodels.run.sample_batch import sampling_batch_size
from genmodels.training.context import autocast
from genmodels.training.hardware import check_precision, resolve_precision


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
    in that precision."""
    device = loaded.model.device
    chosen, why = sampling_precision(precision, loaded.config.trainer.precision, device)
    context = functools.partial(inference, chosen, device)
    if batch_size is None:
        batch_size = sampling_batch_size(loaded.model, options, n, cap, context)
    return SamplingPlan(chosen, why, batch_size, context)
