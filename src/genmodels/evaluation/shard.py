"""Evaluation spread over the ranks of torchrun (or srun): each rank extracts the features of its
strided share of every set of images, and the features come back to every rank in order, so the
metric maths (`genmodels.metrics`) runs on exactly the arrays one process would have.

    samples: rank r draws the images of seeds r, r + W, ... (`genmodels.sampling.seeds`)
    real sets (the reference, the floor's training images): rank r takes rows r, r + W, ...
    features (N, D) float32, class probabilities (N, K): gathered in order (`gather_rows`)

The real-data floor is computed once, shared by the ranks. A failure on any rank (a NaN sample, a
bad batch) stops every rank at the gather that follows, with one line naming the rank
(`training.distributed.on_every_rank`). One process: each function is the plain one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np
import torch

from genmodels.metrics import features as F
from genmodels.training import distributed


def gather_extracted(local: F.Extracted, total: int, info: distributed.DistInfo) -> F.Extracted:
    """The Extracted of all `total` rows from each rank's strided share `local` (one process: `local`)."""
    if not info.enabled:
        return local

    def gathered(a: np.ndarray) -> np.ndarray:
        out = distributed.gather_rows(torch.from_numpy(np.ascontiguousarray(a)), total, info)
        assert out is not None     # gathered on every rank
        return out.numpy()

    probs = local.probabilities
    return F.Extracted(gathered(local.features), gathered(probs) if probs is not None else None)


def extract_rows(extractor: F.FeatureExtractor, x: torch.Tensor, batch_size: int, desc: str,
                 want_probabilities: bool, progress: bool) -> F.Extracted:
    """The features of every row of `x` (a real set), each rank extracting its strided rows."""
    info = distributed.current()
    mine = x[info.rank::info.world_size]
    local = distributed.on_every_rank(
        lambda: F.extract(extractor, F.batches_of(mine, batch_size), len(mine), desc, want_probabilities,
                          progress and info.is_main), info)
    return gather_extracted(local, len(x), info)


def extract_share(extractor: F.FeatureExtractor, batches: Iterable[torch.Tensor], total: int, desc: str,
                  want_probabilities: bool, progress: bool) -> F.Extracted:
    """The features of all `total` samples, from `batches`, this rank's strided share of them."""
    info = distributed.current()
    local = distributed.on_every_rank(
        lambda: F.extract(extractor, batches, None, desc, want_probabilities, progress and info.is_main), info)
    return gather_extracted(local, total, info)


def draw_share(batches: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """This rank's share of the samples, drawn (`batches`: its batches), agreed on by every rank."""
    return distributed.on_every_rank(lambda: list(batches), distributed.current())


def gather_samples(local: list[torch.Tensor], total: int) -> torch.Tensor:
    """All `total` samples in order from this rank's strided share (its batches `local`)."""
    info = distributed.current()
    out = distributed.gather_rows(torch.cat(local), total, info)
    assert out is not None     # gathered on every rank
    return out


Rows = TypeVar("Rows", torch.Tensor, list)


def share(x: Rows) -> Rows:
    """This rank's strided rows of `x` (seeds, or samples read from a file): rows r, r + W, ..."""
    info = distributed.current()
    return x[info.rank::info.world_size]


def is_main() -> bool:
    """Whether this process prints (rank 0, or the only process)."""
    return distributed.current().is_main
