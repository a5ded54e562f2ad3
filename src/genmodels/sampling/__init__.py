"""Sampling a trained model: the one path of `genmodels sample` (and of the samples `evaluate` scores).

    source ──load_source + decode_latents──> LoadedRun
           ──run_sample_options(loaded, given)──> the family's options instance (parsed and checked once)
           ──sampling_plan──> precision, inference context, batch size     (plan.py)
           ──sample_batches──> model.sample(b, options, generator=...)      (loop.py: batches, throughput)
           ──write_samples──> .png grid / scatter, or .npy                 (loop.py)

`draw_source` runs the path up to the samples; `genmodels sample` writes what it returns. Every
sample of a call comes from one generator seeded by `seed`, drawn batch after batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

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
from genmodels.sources import load_source

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
                conditioned: Conditioned | None = None) -> Drawn:
    """n samples of `source` (a run directory or zoo:NAME; a model of VAE latents gives decoded
    images) with the family's options: its defaults, the zoo entry's, then `given` ({field: value
    or text}). batch_size: None automatic (from memory, capped), 0 all at once. `conditioned`
    draws instead of `model.sample` (n None: as many as it has inputs)."""
    device_ = resolve_device(device)
    loaded = load_source(source, device=device_, ema=ema, checkpoint=checkpoint, zoo_root=zoo_root)
    loaded = decode_latents(loaded, device_)   # a model of VAE latents (latents:VAE_RUN) samples decoded images
    options = run_sample_options(loaded, given)   # the zoo entry's defaults under the user's values
    if n is not None:
        check_sample_memory(n, loaded.spec.shape)
    generator = torch.Generator(device=device_).manual_seed(seed)
    image = loaded.spec.kind == "image"
    stats = SamplingStats(unit="image" if image else "sample")
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
            assert n is not None   # only a conditioned draw counts its inputs
            x = torch.cat(list(sample_batches(loaded.model, n, plan.batch_size, generator, tuple(loaded.spec.shape),
                                              options, progress=progress, clamp=image, context=plan.context,
                                              stats=stats)))
    nrow = loaded.model.sample_nrow(options)   # a model whose samples form a fixed layout says so
    return Drawn(x=x, loaded=loaded, options=options, stats=stats, nrow=nrow)


__all__ = [
    "BATCH_CAP", "CPU_BATCH_CAP", "OUTPUT_SUFFIXES", "Conditioned", "Drawn", "SamplingPlan", "SamplingStats",
    "check_sample_memory", "draw_source", "inference", "sample_batches", "sampling_plan", "sampling_precision",
    "write_samples",
]
