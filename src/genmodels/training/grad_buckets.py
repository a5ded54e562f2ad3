"""Averaging gradients over the data-parallel ranks in buckets, overlapped with the backward pass.

`ctx.optimize` hands each optimiser step's parameters to `GradientBuckets`: they are split into
buckets of about `bucket_mb` MiB, at first in the reverse of their order (roughly the order in
which the backward pass produces their gradients), and after the first step in the order in which
rank 0 saw them arrive (as DDP rebuilds its buckets; parameters that got no gradient go last, so
that they do not hold the others back). A hook on every parameter
(`Tensor.register_post_accumulate_grad_hook`) marks its gradient ready; as soon as a bucket and
every bucket before it are ready, the bucket is packed into one flat tensor and its all-reduce is
started asynchronously, while the backward pass goes on computing the gradients of the layers
below. This is the overlap of DistributedDataParallel (Li et al. 2020, "PyTorch Distributed",
sec. 3.2.3), made for what `ctx.optimize` knows and DDP's wrapper does not: which parameters this
step updates (the GAN's D-step and G-step share one backward graph), with several networks per
step, and a double backward (WGAN-GP) that must not trigger it.

Exactness. Each bucket is the same computation as the one flat all-reduce it replaces, element by
element: the gradients in float32 (or wider), summed over the ranks, then divided by W. With two
ranks the sum a + b is one rounding whatever the bucket layout, so bucketed and flat agree to the
bit (tests/test_grad_buckets.py); with more ranks the backend's reduction order, which may depend
on an element's position in the buffer, can differ in the last bit. Buckets are started strictly in
their index order on every rank, whatever order the hooks fire in, so the ranks' collectives always
pair up. A parameter without a gradient on some rank counts as zero there (a presence flag per
parameter travels with its bucket); one without a gradient on every rank keeps `grad = None`.
Each bucket also carries this rank's "loss not finite" flag, so every rank learns, without a host
read, whether any rank's loss was bad.

Compression (`compression = "bf16"`, off by default): the packed bucket is cast to bfloat16 before
the all-reduce and back after it, halving the bytes sent; the relative error of the averaged
gradient is about 2^-8 (measured in tests/test_grad_buckets.py, reported in docs/scaling.md).

`bucket_mb = 0` makes one bucket started after the backward pass: the flat all-reduce, no overlap.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from genmodels.config import GradCompression

MIB = 2 ** 20


@dataclass
class _Bucket:
    params: list[torch.nn.Parameter]
    dtype: torch.dtype
    numel: int
    waiting: int = 0                        # parameters whose gradient this backward has not produced yet
    ready: set[int] = field(default_factory=set)
    buffer: torch.Tensor | None = None      # the packed gradients + presence flags + loss flag
    work: object | None = None              # the all-reduce in flight


@dataclass
class _Plan:
    """The buckets of one list of parameters (one optimiser step's), and which bucket holds each."""

    params: list[torch.nn.Parameter]
    buckets: list[_Bucket] = field(default_factory=list)
    where: dict[int, int] = field(default_factory=dict)
    launched: int = 0
    loss_bad: torch.Tensor | None = None
    arrived: list[int] | None = field(default_factory=list)   # indices in arrival order (None once rebuilt)


def _dtype(params: list[torch.nn.Parameter]) -> torch.dtype:
    dtype = torch.float32
    for p in params:
        dtype = torch.promote_types(dtype, p.dtype)
    return dtype


def split_into_buckets(params: list[torch.nn.Parameter], bucket_mb: float) -> list[list[torch.nn.Parameter]]:
    """`params`, in their order, cut into runs of about bucket_mb MiB (one run if bucket_mb <= 0)."""
    if bucket_mb <= 0:
        return [list(params)]
    limit, runs, run, size = bucket_mb * MIB, [], [], 0
    for p in params:
        run.append(p)
        size += p.numel() * p.element_size()
        if size >= limit:
            runs.append(run)
            run, size = [], 0
    if run:
        runs.append(run)
    return runs


class GradientBuckets:
    """Bucketed, overlapped gradient averaging for one run (see the module docstring).

        buckets.arm(key, params, loss_bad)   # before backward
        loss.backward()                      # the hooks start the buckets' all-reduces
        any_bad = buckets.finish()           # start the rest, wait, write the means into .grad

    `close()` removes the hooks (the trainer does it when the run ends)."""

    def __init__(self, world_size: int, bucket_mb: float = 1.0, compression: GradCompression = "none"):
        if compression not in typing.get_args(GradCompression):
            raise ValueError(f"gradient compression must be one of {typing.get_args(GradCompression)}, "
                             f"not {compression!r}")
        self.world_size, self.bucket_mb, self.compression = world_size, bucket_mb, compression
        self._plans: dict[tuple, _Plan] = {}
        self._hooks: dict[int, torch.utils.hooks.RemovableHandle] = {}
        self._armed: _Plan | None = None

    def _plan(self, key: tuple, params: list[torch.nn.Parameter]) -> _Plan:
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan(list(params))
            self._fill(plan, list(reversed(params)))
            if self.bucket_mb > 0:
                for p in params:
                    if id(p) not in self._hooks:
                        self._hooks[id(p)] = p.register_post_accumulate_grad_hook(self._ready)
            else:
                plan.arrived = None             # one bucket, started after the backward pass
        return plan

    def _fill(self, plan: _Plan, ordered: list[torch.nn.Parameter]) -> None:
        plan.buckets = [_Bucket(run, _dtype(run), sum(p.numel() for p in run))
                        for run in split_into_buckets(ordered, self.bucket_mb)]
        plan.where = {id(p): i for i, b in enumerate(plan.buckets) for p in b.params}

    def _rebuild(self, plan: _Plan) -> None:
        """Buckets in the order in which rank 0's gradients arrived in the first step, the parameters
        that got none last (rank 0's order is broadcast, so that every rank builds the same buckets)."""
        index = {id(p): i for i, p in enumerate(plan.params)}
        seen = set(plan.arrived)
        order = plan.arrived + [index[id(p)] for p in reversed(plan.params) if index[id(p)] not in seen]
        agreed = torch.tensor(order, dtype=torch.int64, device=plan.params[0].device)
        dist.broadcast(agreed, src=0)
        self._fill(plan, [plan.params[i] for i in agreed.tolist()])      # once per plan: one host read
        plan.arrived = None

    def arm(self, key: tuple, params: list[torch.nn.Parameter], loss_bad: torch.Tensor) -> None:
        """The next backward pass produces the gradients of `params` (cached by `key`) for a step
        whose loss on this rank is not finite when `loss_bad` (a 0-dim bool tensor, not read)."""
        plan = self._plan(key, params)
        for b in plan.buckets:
            b.waiting, b.ready, b.buffer, b.work = len(b.params), set(), None, None
        plan.launched, plan.loss_bad = 0, loss_bad
        self._armed = plan

    def _ready(self, p: torch.Tensor) -> None:
        plan = self._armed
        if plan is None or id(p) not in plan.where:
            return                          # another step's backward (the G-step reaching D) or none armed
        b = plan.buckets[plan.where[id(p)]]
        if id(p) not in b.ready:
            b.ready.add(id(p))
            b.waiting -= 1
            if plan.arrived is not None:
                plan.arrived.append(next(i for i, q in enumerate(plan.params) if q is p))
        while plan.launched < len(plan.buckets) and plan.buckets[plan.launched].waiting == 0:
            self._launch(plan, plan.buckets[plan.launched])

    @torch.no_grad()
    def _launch(self, plan: _Plan, b: _Bucket) -> None:
        device = b.params[0].device
        parts = [p.grad.reshape(-1).to(b.dtype) if p.grad is not None
                 else torch.zeros(p.numel(), dtype=b.dtype, device=device) for p in b.params]
        present = torch.ones(len(b.params), dtype=b.dtype, device=device)
        for j, p in enumerate(b.params):
            if p.grad is None:
                present[j] = 0.0
        flat = torch.cat([*parts, present, plan.loss_bad.reshape(1).to(device, b.dtype)])
        if self.compression == "bf16":
            flat = flat.to(torch.bfloat16)
        b.buffer = flat
        b.work = dist.all_reduce(flat, async_op=True)          # sum over the ranks
        plan.launched += 1

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        """Start the buckets not started yet (in order), wait for all, and replace each gradient by
        its mean over the ranks. Returns whether any rank's loss was not finite (0-dim bool tensor)."""
        plan, self._armed = self._armed, None
        if plan is None:
            raise RuntimeError("GradientBuckets.finish() without arm()")
        while plan.launched < len(plan.buckets):
            self._launch(plan, plan.buckets[plan.launched])
        flags = []
        for b in plan.buckets:
            b.work.wait()
            flat = b.buffer.to(b.dtype)
            n, k = b.numel, len(b.params)
            means = flat[:n].div_(self.world_size)              # mean of the per-rank mean-loss gradients
            flags.append(flat[n + k])
            self._write_back(b, means, flat[n:n + k])
            b.buffer = b.work = None
        if plan.arrived is not None:
            self._rebuild(plan)
        return torch.stack(flags).sum() > 0

    @staticmethod
    def _write_back(b: _Bucket, means: torch.Tensor, present: torch.Tensor) -> None:
        views, offset = [], 0
        for p in b.params:
            views.append(means[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        local = [(p, v) for p, v in zip(b.params, views, strict=True) if p.grad is not None]
        if local:
            torch._foreach_copy_([p.grad for p, _ in local], [v for _, v in local])
        if len(local) < len(b.params):     # rare: a parameter this rank gave no gradient (one host read)
            for p, v, count in zip(b.params, views, present.tolist(), strict=True):
                if p.grad is None and count > 0:
                    p.grad = v.to(p.dtype).clone()

    def cancel(self) -> None:
        """Forget the armed step (its backward pass failed); the all-reduces already started are dropped."""
        self._armed = None

    def close(self) -> None:
        """Remove the hooks from the parameters."""
        for handle in self._hooks.values():
            handle.remove()
        self._hooks.clear()
        self._plans.clear()
        self._armed = None
