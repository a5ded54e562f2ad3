"""Per-image seeds: image i of a request is a function of its seed alone, whatever the batch size
and the number of processes (the per-seed generators of NVlabs EDM's `generate.py`).

A request names its seeds: `--seeds 0-49999` (ranges and single seeds, comma-separated), or `--n N
--seed S`, the seeds S .. S+N-1. Each image has its own `torch.Generator` seeded with its seed, and
every random draw the model makes for that image (the initial noise x_T or z, the noise of every
stochastic sampler step, a decoder's sampled pixels) comes from that generator, in the order the
model draws them. So a batch of any size, on any rank, gives each image the draws it would get
alone, and the images agree to float rounding (batched kernels may round differently).

The models draw from the one `generator` that `model.sample(n, options, *, generator=...)` takes,
per-example draws with the example index first (the contract of docs/scaling.md, which training's
`GlobalBatchRandomness` relies on too). `PerImageRandomness` is a `TorchFunctionMode` active while
one batch is drawn: a draw from that generator whose first dimension is the batch size b is made
row by row, row j from image j's generator; any other draw from it (noise shared by the batch) comes
from a generator seeded with SHARED_SEED afresh for every batch, so it too is the same in every
batch. No family changes: `model.sample` is called as always, with a stand-in generator.

Handled calls (when their `generator=` is the stand-in):
    factories   torch.randn / rand / randint / normal(float, float, size)   -> one draw of size[1:] per row
    tensor-parameterised   torch.bernoulli / normal / poisson / binomial    -> row j of the parameters,
                                                                               drawn with generator j
    in-place    Tensor.normal_ / uniform_ / bernoulli_ / ...                -> row j filled with generator j
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from contextlib import AbstractContextManager

import torch
from torch.overrides import TorchFunctionMode

from genmodels.errors import ConfigError
from genmodels.training.global_batch import FACTORIES, PARAMETERISED, size_of, with_size

SHARED_SEED = 0x5EED      # the generator of draws shared by a batch, seeded afresh for every batch
MAX_SEED = 2**63 - 1


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """'0-9', '3', '0-3,10,20-21' -> the seeds in that order (ranges inclusive, as EDM's --seeds);
    ConfigError naming `flag` for anything else (a reversed range, a negative or repeated seed)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: expected seeds like 0-49999 or 1,5,10-20, got {part!r}") from None
        if not 0 <= a <= b <= MAX_SEED:
            raise ConfigError(f"{flag} {text!r}: a range A-B needs 0 <= A <= B <= 2^63-1, got {part!r}")
        seeds.extend(range(a, b + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{flag} {text!r}: a seed is named twice (each seed is one image)")
    return seeds


def request_seeds(n: int, seed: int = 0) -> range:
    """The seeds of a request for n images with --seed `seed`: seed .. seed+n-1 (a range, so a
    request too large to draw is refused by the memory check, not by building its seed list)."""
    if seed < 0 or seed + n - 1 > MAX_SEED:
        raise ConfigError(f"--seed {seed}: the seeds of {n} images, {seed}..{seed + n - 1}, must lie in 0..2^63-1")
    return range(seed, seed + n)


def image_generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One generator per image on `device`, seeded with its seed."""
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


class PerImageRandomness(TorchFunctionMode):
    """While active, draws from `stand_in` whose first dimension is len(generators) are made row by
    row, row j from `generators[j]`; other draws from `stand_in` come from a generator seeded with
    SHARED_SEED when the mode was entered. `rows` counts the draws made per image (for tests)."""

    def __init__(self, stand_in: torch.Generator, generators: Sequence[torch.Generator]):
        super().__init__()
        self.stand_in, self.generators, self.b = stand_in, list(generators), len(generators)
        self.shared = torch.Generator(device=stand_in.device).manual_seed(SHARED_SEED)
        self.rows = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("generator", None) is not self.stand_in:
            return func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name.endswith("_") and args and isinstance(args[0], torch.Tensor):
            if args[0].dim() >= 1 and args[0].shape[0] == self.b:
                return self._inplace(func, args, kwargs)
            return func(*args, **{**kwargs, "generator": self.shared})
        size, where = size_of(name, args, kwargs) if name in FACTORIES else (None, None)
        if size is not None:
            if len(size) >= 1 and size[0] == self.b:
                return self._factory(func, args, kwargs, size, where)
        elif name in PARAMETERISED:
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if tensors and all(t.dim() >= 1 and t.shape[0] == self.b for t in tensors):
                self.rows += 1
                return torch.stack([func(*[a[j] if isinstance(a, torch.Tensor) else a for a in args],
                                         **{**self._row_kwargs(kwargs, j), "generator": g})
                                    for j, g in enumerate(self.generators)])
        return func(*args, **{**kwargs, "generator": self.shared})

    def _row_kwargs(self, kwargs: dict, j: int) -> dict:
        return {k: (v[j] if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}

    def _factory(self, func, args, kwargs, size: tuple, where):
        self.rows += 1
        args, kwargs = with_size(args, kwargs, where, tuple(size[1:]))
        return torch.stack([func(*args, **{**kwargs, "generator": g}) for g in self.generators])

    def _inplace(self, func, args, kwargs):
        self.rows += 1
        target = args[0]
        for j, g in enumerate(self.generators):
            func(target[j], *args[1:], **{**kwargs, "generator": g})
        return target


def batch_randomness(stand_in: torch.Generator, seeds: Sequence[int] | None, start: int,
                     b: int) -> AbstractContextManager:
    """The context of drawing images start .. start+b-1 of a request: PerImageRandomness over their
    seeds, or (seeds None) nothing, the generator `stand_in` drawn as it is."""
    if seeds is None:
        return contextlib.nullcontext()
    return PerImageRandomness(stand_in, image_generators(seeds[start:start + b], stand_in.device))
