"""The batch loop of sampling, its throughput, and the files samples are written to.

`sample_batches` draws n samples in batches, each inside the plan's context (`plan.inference`),
checks their shape and values, and counts the seconds spent in `model.sample` (`SamplingStats`:
the images/s line of `genmodels sample` and the `sampling` entry of an evaluation report).
`write_samples` saves them as a .png grid (a scatter plot for points) or a float32 .npy array.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from genmodels.atomic import atomic_file
from genmodels.errors import ConfigError, DataError
from genmodels.models.base import GenerativeModel
from genmodels.run.model_size import format_bytes, memory_bytes
from genmodels.sampling.seeds import batch_randomness
from genmodels.viz import save_grid, save_scatter

OUTPUT_SUFFIXES = (".png", ".npy")


@dataclass
class SamplingStats:
    """How a model's samples were drawn: how many, the seconds spent in `sample` (not in the
    metrics), the batch size and the precision; `samples_per_second` is the throughput."""

    n: int = 0
    seconds: float = 0.0
    batch_size: int = 0
    precision: str = "fp32"
    unit: str = "sample"          # "image" for image data

    @property
    def samples_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        """'1000 images in 12.3 s: 81.3 images/s (batch 500, bf16)'."""
        return (f"{self.n} {self.unit}s in {self.seconds:.3g} s: {self.samples_per_second:.3g} {self.unit}s/s "
                f"(batch {self.batch_size}, {self.precision})")

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "seconds": self.seconds, "samples_per_second": self.samples_per_second,
                "batch_size": self.batch_size, "precision": self.precision}


def sample_batches(model: GenerativeModel, n: int, batch_size: int, generator: torch.Generator,
                   spec_shape: tuple[int, ...], options: Any = None, progress: bool = True, clamp: bool = True,
                   context: Callable[[], AbstractContextManager] = torch.inference_mode,
                   stats: SamplingStats | None = None, seeds: Sequence[int] | None = None) -> Iterator[torch.Tensor]:
    """Yield n samples from the model in batches (B, *spec_shape) on the CPU, with a progress bar
    showing the sampling throughput; images are clamped to [-1, 1] (`clamp`). `options`: an
    instance of the model's sample options (None: its defaults).
    Each batch is drawn inside `context()` (`plan.inference`: no autograd, the run's precision;
    default torch.inference_mode); `stats`, when given, collects n, the seconds spent sampling and
    the batch size. `seeds` (n of them): sample k is drawn from its own generator seeded with
    seeds[k] (`seeds.PerImageRandomness`; `generator` only stands in), so it is the same at any
    batch size; None: every batch draws from `generator` in turn."""
    stats = stats if stats is not None else SamplingStats(unit="image" if clamp else "sample")
    stats.batch_size = batch_size
    unit = stats.unit
    with tqdm(total=n, desc="sampling", unit=unit, disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            began = time.perf_counter()
            with context(), batch_randomness(generator, seeds, start, b):
                x = model.sample(b, options, generator=generator)
                x = x.detach().cpu()                     # on the CPU: the device's work is finished
            stats.seconds += time.perf_counter() - began
            stats.n += b
            if tuple(x.shape) != (b, *spec_shape):
                raise DataError(f"the model's sample() returned shape {tuple(x.shape)}, expected {(b, *spec_shape)}")
            x = x.float().clone()                        # an ordinary tensor, usable outside inference mode
            if not torch.isfinite(x).all():
                raise DataError(f"the model produced NaN or inf samples (batch starting at sample {start})")
            bar.update(b)
            bar.set_postfix_str(f"{stats.samples_per_second:.3g} {unit}s/s sampling")
            yield x.clamp(-1, 1) if clamp else x


def write_samples(x: torch.Tensor, path: str | Path, kind: str, title: str = "", nrow: int | None = None) -> Path:
    """Save samples (n, C, H, W) in [-1, 1] or points (n, D) to a .png or .npy file; `nrow` images
    per row in a grid (None = near-square). A .npy holds float32: images (n, C, H, W) in [0, 1],
    points (n, D) in data coordinates."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {path}: unknown file type {suffix or '(none)'}; valid: {', '.join(OUTPUT_SUFFIXES)}")
    x = x.detach().float().cpu()
    if suffix == ".npy":
        array = ((x + 1) / 2).clamp(0, 1) if kind == "image" else x
        with atomic_file(path) as f:  # a reader never finds a truncated array that loads as real output
            np.save(f, array.numpy().astype(np.float32))
        return path
    if kind == "image":
        return save_grid(x, path, nrow=nrow, scale=max(1, 64 // x.shape[-1]))
    if x.shape[1] < 2:
        raise ConfigError(f"--out {path}: a scatter plot needs at least 2-D points, got shape {tuple(x.shape)}")
    return save_scatter(x[:, :2], path, title=title)


def check_sample_memory(n: int, shape: tuple[int, ...], flag: str = "--n", what: str = "samples",
                        given: int | None = None) -> None:
    """ConfigError naming `flag` when n float32 `what` of `shape` (the array the command returns or
    keeps) would not fit in this machine's memory, before any is drawn (`given`: the option's value
    when n is computed from it): the one bound of every
    command's counts (`sample --n`, `evaluate --n`, `compare --n`, the likelihoods' --k)."""
    need = 4 * n * math.prod(shape)
    have = memory_bytes(torch.device("cpu"))
    if have is not None and need > have:
        raise ConfigError(f"{flag} {n if given is None else given}: {n} {what} of shape {tuple(shape)} need "
                          f"{format_bytes(need)}, more than this machine's {format_bytes(have)} of memory; "
                          f"ask for fewer")
