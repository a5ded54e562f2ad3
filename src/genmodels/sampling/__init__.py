"""Sampling a trained model: the one path of `genmodels sample` (and of the samples `evaluate` scores).

    source ──load_source + decode_latents──> LoadedRun
           ──run_sample_options(loaded, given)──> the family's options instance (parsed and checked once)
           ──sampling_plan──> precision, inference context, batch size     (plan.py)
           ──sample_batches──> model.sample(b, options, generator=...)      (loop.py: batches, throughput)
           ──write_samples──> .png grid / scatter, or .npy                 (loop.py)

`draw_source` runs the path up to the samples; `genmodels sample` writes what it returns. Every
image has its own seed (`seeds.py`), so the images do not depend on the batch size or on the
number of processes; under torchrun each rank draws a strided share of the seeds
(`training.distributed.strided`) and rank 0 gathers them in seed order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genmodels.errors import ConfigError
from genmodels.latent_run import decode_latents
from genmodels.metrics.evaluate import SamplingPrecision
from genmodels.models.base import GenerativeModel
from genmodels.run import LoadedRun, resolve_device
from genmodels.run.sample_options import run_sample_options
from genmodels.run.seeds import derive_seed, private_global_rng
from genmodels.sampling.loop import OUTPUT_SUFFIXES, SamplingStats, check_sample_memory, sample_batches, write_samples
from genmodels.sampling.plan import (
    BATCH_CAP,
    CPU_BATCH_CAP,
    SamplingPlan,
    inference,
    sampling_plan,
    sampling_precision,
)
from genmodels.sampling.seeds import parse_seeds, request_seeds
from genmodels.sources import SourceRecord, load_source
from genmodels.training import distributed

# draws conditioned samples (inpainting, SDEdit): (model, n, generator, batch size, options, shape) -> samples
Conditioned = Callable[[GenerativeModel, "int | None", torch.Generator, int, Any, tuple[int, ...]], torch.Tensor]


@dataclass
class Drawn:
    """What `draw_source` gives back: the samples (n, *shape) on the CPU, the source as loaded, the
    options they were drawn with, how they were drawn, and the grid's images per row (None: square)."""

    x: torch.Tensor
    loaded: LoadedRun
    options: Any
    stats: SamplingStats
    nrow: int | None


def draw_source(source: str | Path, n: int | None, given: Mapping[str, Any] | None = None, *, seed: int = 0,
                ema: bool = True, device: str = "auto", batch_size: int | None = None,
                precision: SamplingPrecision = "run", checkpoint: str | Path | None = None,
                zoo_root: str | Path | None = None, progress: bool = False,
                conditioned: Conditioned | None = None, options: Any = None,
                record: SourceRecord | None = None, seeds: Sequence[int] | None = None) -> Drawn:
    """Samples of `source` (a run directory or zoo:NAME; a model of VAE latents gives decoded
    images) with the family's options: its defaults, the zoo entry's, then `given` ({field: value
    or text}), or `options`, the instance built already from them (`genmodels sample` builds it
    when it reads its flags). One image per seed of `seeds`, or (None) n images with the seeds
    seed .. seed+n-1 (`seeds.py`: image i is a function of its seed alone). Under torchrun the
    ranks draw strided seeds and rank 0 gets them all, in seed order (the other ranks: none).
    batch_size: None automatic (from memory, capped), 0 all at once. `conditioned` draws instead
    of `model.sample`, from one generator seeded by `seed`, on one process (n None: as many as it
    has inputs). `record`: the source as `genmodels.sources.read_source` read it already (its zoo
    card is not read again)."""
    info = distributed.current()
    if conditioned is not None and info.enabled:
        raise ConfigError("--inpaint and --init draw on one process: run them without torchrun")
    image_seeds = None if conditioned is not None else seeds if seeds is not None else request_seeds(n or 0, seed)
    n = len(image_seeds) if image_seeds is not None else n
    device_ = resolve_device(device)
    loaded = load_source(source, device=device_, ema=ema, checkpoint=checkpoint, zoo_root=zoo_root, record=record)
    loaded = decode_latents(loaded, device_)   # a model of VAE latents (latents:VAE_RUN) samples decoded images
    if options is None:
        options = run_sample_options(loaded, given)   # the zoo entry's defaults under the user's values
    if n is not None:
        check_sample_memory(n, loaded.spec.shape)
    generator = torch.Generator(device=device_).manual_seed(seed)
    stats = SamplingStats(unit="image" if loaded.spec.kind == "image" else "sample")
    with private_global_rng(seed=derive_seed(seed, "sample-global"), device=device_):
        given_batch = batch_size if batch_size is None or batch_size > 0 else (n or 0)   # 0: one chunk
        cap = CPU_BATCH_CAP if device_.type == "cpu" else BATCH_CAP
        plan = sampling_plan(loaded, options, n or cap, precision=precision, cap=cap, batch_size=given_batch)
        stats.precision = plan.precision
        if conditioned is not None:
            began = time.perf_counter()
            with plan.context():
                x = conditioned(loaded.model, n, generator, plan.batch_size, options, tuple(loaded.spec.shape))
            x = x.float().clone()                          # an ordinary tensor again, outside inference mode
            stats.n, stats.seconds, stats.batch_size = len(x), time.perf_counter() - began, plan.batch_size or len(x)
        else:
            assert image_seeds is not None   # only a conditioned draw counts its inputs
            x = _draw_sharded(loaded, options, image_seeds, plan, generator, stats, progress and info.is_main, info)
    nrow = loaded.model.sample_nrow(options)   # a model whose samples form a fixed layout says so
    return Drawn(x=x, loaded=loaded, options=options, stats=stats, nrow=nrow)


def _draw_sharded(loaded: LoadedRun, options: Any, seeds: Sequence[int], plan: SamplingPlan, generator: torch.Generator,
                  stats: SamplingStats, progress: bool, info: distributed.DistInfo) -> torch.Tensor:
    """The images of `seeds`: this rank's strided share drawn in batches (a failure on any rank
    stops every rank, `distributed.on_every_rank`), gathered on rank 0 in seed order (elsewhere an
    empty tensor); `stats` counts every rank's images and the slowest rank's seconds."""
    shape = tuple(loaded.spec.shape)
    mine = distributed.strided(seeds, info)

    def work() -> torch.Tensor:
        parts = list(sample_batches(loaded.model, len(mine), plan.batch_size, generator, shape, options,
                                    progress=progress, clamp=loaded.spec.kind == "image", context=plan.context,
                                    stats=stats, seeds=mine))
        return torch.cat(parts) if parts else torch.empty((0, *shape))

    x = distributed.gather_rows(distributed.on_every_rank(work, info), len(seeds), info, dst=0)
    if info.enabled:
        each = distributed.gather_rows(torch.tensor([[float(stats.n), stats.seconds]], dtype=torch.float64),
                                       info.world_size, info)
        assert each is not None    # gathered on every rank
        stats.n, stats.seconds = int(each[:, 0].sum()), float(each[:, 1].max())
    return x if x is not None else torch.empty((0, *shape))


__all__ = [
    "BATCH_CAP", "CPU_BATCH_CAP", "OUTPUT_SUFFIXES", "Conditioned", "Drawn", "SamplingPlan", "SamplingStats",
    "check_sample_memory", "draw_source", "inference", "parse_seeds", "request_seeds", "sample_batches",
    "sampling_plan", "sampling_precision", "write_samples",
]
