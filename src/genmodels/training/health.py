"""The NaN/inf guard of the training loop, kept on the device so that the hot path never waits for it.

Every step the trainer and `ctx.optimize` record, as device tensors, whether the step's loss, its
gradients, its logged values and the weights after it were finite: `Health` keeps, for each of
these checks, the first step at which it failed (an elementwise minimum, no host read). The
trainer reads all of them at once (one device-to-host copy) only at its read points: when it logs,
writes samples or a checkpoint, stops, and at the end. A failed check then raises
`TrainingDiverged` naming the step where it first failed, before anything is written, so the last
checkpoint on disk is always one from before the divergence.

Meanwhile no non-finite update is applied: `ctx.optimize` skips (fused optimisers, on the device)
or zeroes (others) the update of a step whose loss or gradients are not finite.
"""

from __future__ import annotations

import math

import torch

from genmodels.errors import TrainingDiverged
from genmodels.training import distributed

# the checks, in the order that names a failure when several first failed at the same step
CHECKS = {
    "loss": "the loss of an optimiser step is not finite",
    "gradients": "the gradients of an optimiser step are not finite",
    "weights": "weights hold NaN/inf",
    "values": "a logged value is not finite",
}
NEVER = torch.iinfo(torch.int64).max


class Health:
    """For each check of CHECKS, the first step at which it failed (NEVER while it has not)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._first = torch.full((len(CHECKS),), NEVER, dtype=torch.int64, device=device)   # device checks
        self._host = [NEVER] * len(CHECKS)                                                   # host checks
        self._index = {name: i for i, name in enumerate(CHECKS)}

    def record(self, check: str, step: int, failed: torch.Tensor | bool) -> None:
        """Note that `check` failed at `step` when `failed` (a bool, or a 0-dim bool tensor, not read)."""
        i = self._index[check]
        if isinstance(failed, torch.Tensor):
            self._first[i] = torch.minimum(self._first[i], torch.where(failed.to(self.device), step, NEVER))
        elif failed:
            self._host[i] = min(self._host[i], step)

    def record_values(self, step: int, values: dict[str, float | torch.Tensor]) -> None:
        """Check the step's logged values: floats now, tensors on the device."""
        on_device, on_host = [], []
        for v in values.values():
            (on_device if isinstance(v, torch.Tensor) and v.device == self.device else on_host).append(v)
        if any(not math.isfinite(float(v)) for v in on_host):
            self.record("values", step, True)
        if on_device:
            stacked = torch.stack([v.detach().float().reshape(()) for v in on_device])
            self.record("values", step, ~torch.isfinite(stacked).all())

    @torch.no_grad()
    def record_weights(self, step: int, weights: list[torch.Tensor]) -> None:
        """Check the weights after the step: their largest |w| (NaN propagates, nothing overflows)."""
        if weights:
            peak = torch.nn.utils.get_total_norm(weights, float("inf"))
            self.record("weights", step, ~torch.isfinite(peak))

    def first_failure(self, par: distributed.DistInfo) -> tuple[int, str] | None:
        """(step, check) of the earliest failure on any rank, or None: one host read (plus, under
        torchrun, one all-reduce that every rank makes at the same step)."""
        first = torch.minimum(self._first, torch.tensor(self._host, device=self.device))
        if par.enabled:
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        steps = first.tolist()
        step = min(steps)
        if step == NEVER:
            return None
        return step, list(CHECKS)[steps.index(step)]

    def check(self, par: distributed.DistInfo, modules: dict[str, torch.nn.Module]) -> None:
        """TrainingDiverged (its step the first failure's) if any check has failed so far."""
        failure = self.first_failure(par)
        if failure is None:
            return
        step, check = failure
        message = CHECKS[check]
        if check == "weights":
            bad = [f"{n}.{pn}" for n, m in modules.items() for pn, p in m.named_parameters()
                   if not bool(torch.isfinite(p.detach()).all())]
            message = f"weights {', '.join(bad[:3])} hold NaN/inf" if bad else message
        raise TrainingDiverged(message, step=step)
