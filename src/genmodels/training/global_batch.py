"""Per-example randomness drawn for the global batch, so that W processes with B/W examples each
compute exactly what one process computes with B examples.

With data parallelism each rank holds a slice of the global minibatch (rank r: examples
r*m .. r*m + m - 1 of the B = W*m examples one process would see). A model draws its per-example
noise (diffusion times t and noise eps, GAN latents z, InfoGAN codes, gradient-penalty mixing
weights) from `ctx.generator` for its *local* batch of m examples. `GlobalBatchRandomness`
re-routes those draws: every rank draws the tensor for all B examples from the same generator
state and keeps its own slice. So

* the union over ranks of the per-example noise equals the single-process draw, bit for bit;
* every rank's generator advances identically (it always drew the global tensor), so the ranks'
  random streams stay in step and a checkpoint's generator state is valid for any world size.

The contract it relies on (documented in docs/scaling.md): a draw from `ctx.generator` whose
first dimension equals the local batch size m is per-example randomness with the example index
first. Any other draw (scalars, per-layer noise) is made identically on every rank. A non-batch
draw whose first dimension happens to equal m stays a valid draw of the same distribution; only
the exact equality with the single-process run is lost.

Handled calls (when their `generator=` is the run's generator):
    factories   torch.randn / rand / randint / normal(float, float, size)  -> draw (W*m, ...), slice
    tensor-parameterised   torch.bernoulli / normal / poisson / binomial    -> parameters tiled W
                times along dim 0 (each output element depends only on its own parameter and its
                position in the random stream), then sliced
    in-place    Tensor.normal_ / uniform_ / bernoulli_ / exponential_ / ... -> fill a (W*m, ...)
                tensor, copy the slice in
Everything else passes through untouched; the mode is only installed when W > 1.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

FACTORIES = ("randn", "rand", "randint", "normal")
PARAMETERISED = ("bernoulli", "normal", "poisson", "binomial")


def size_of(name: str, args: tuple, kwargs: dict) -> tuple[tuple | None, str | int | None]:
    """(size, where it is) of a factory call: where is "kw", a positional index, or "star"."""
    if "size" in kwargs:
        return tuple(kwargs["size"]), "kw"
    if name in ("randn", "rand"):
        if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
            return tuple(args[0]), 0
        if args and all(isinstance(a, int) for a in args):
            return tuple(args), "star"
        return None, None
    if name == "randint":
        last = len(args) - 1
        if last >= 1 and isinstance(args[last], (tuple, list, torch.Size)):
            return tuple(args[last]), last
        return None, None
    if name == "normal" and len(args) >= 3 and isinstance(args[2], (tuple, list, torch.Size)):
        return tuple(args[2]), 2
    return None, None


def with_size(args: tuple, kwargs: dict, where: str | int, size: tuple) -> tuple[list, dict]:
    """(args, kwargs) of a factory call with its size (found by `size_of` at `where`) replaced by `size`."""
    args, kwargs = list(args), dict(kwargs)
    if where == "kw":
        kwargs["size"] = size
    elif where == "star":
        args = [tuple(size)]
    else:
        args[where] = size
    return args, kwargs


class GlobalBatchRandomness(TorchFunctionMode):
    """While active, draws from `generator` with leading dimension `m` (the local batch) are made
    for the global batch of `world_size * m` examples and this rank's slice is returned."""

    def __init__(self, generator: torch.Generator, m: int, rank: int, world_size: int):
        super().__init__()
        self.generator, self.m, self.rank, self.world_size = generator, m, rank, world_size
        self.sliced = 0            # number of draws re-routed (for tests and diagnostics)

    def _slice(self, t: torch.Tensor) -> torch.Tensor:
        return t[self.rank * self.m:(self.rank + 1) * self.m]

    def _tile(self, a):
        if isinstance(a, torch.Tensor) and a.dim() >= 1 and a.shape[0] == self.m:
            return a.repeat(self.world_size, *([1] * (a.dim() - 1)))
        return a

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("generator", None) is not self.generator:
            return func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name.endswith("_") and args and isinstance(args[0], torch.Tensor):
            return self._inplace(func, args, kwargs)
        if name in FACTORIES:
            size, where = size_of(name, args, kwargs)
            if size is not None:
                return self._factory(func, args, kwargs, size, where)
        if name in PARAMETERISED:
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if tensors and any(t.dim() >= 1 and t.shape[0] == self.m for t in tensors):
                self.sliced += 1
                out = func(*[self._tile(a) for a in args], **{k: self._tile(v) for k, v in kwargs.items()})
                return self._slice(out)
        return func(*args, **kwargs)

    def _factory(self, func, args, kwargs, size: tuple, where):
        if len(size) == 0 or size[0] != self.m:
            return func(*args, **kwargs)
        self.sliced += 1
        args, kwargs = with_size(args, kwargs, where, (self.world_size * self.m, *size[1:]))
        return self._slice(func(*args, **kwargs))

    def _inplace(self, func, args, kwargs):
        target = args[0]
        if target.dim() == 0 or target.shape[0] != self.m:
            return func(*args, **kwargs)
        self.sliced += 1
        full = target.new_empty((self.world_size * self.m, *target.shape[1:]))
        func(full, *[self._tile(a) for a in args[1:]], **{k: self._tile(v) for k, v in kwargs.items()})
        with torch.no_grad():
            target.copy_(self._slice(full))
        return target
