"""An optimiser step that a non-finite loss or gradient never reaches, decided on the device.

`ctx.optimize` does not read the loss back to the host (on CUDA that would wait for the whole
step). It computes, on the device, whether the step is bad (a non-finite loss on any rank, or a
non-finite gradient norm) and hands that flag here:

* a fused optimiser (`fused=True`: the families' Adam and SGD, `genmodels.models.optim`) skips the
  update inside its kernel: weights, moments and step counts stay exactly as they were (the
  `found_inf` input that torch's fused kernels take from `torch.amp.GradScaler`);
* any other optimiser steps on zero gradients (a finite update; Adam's momentum still moves the
  weights that once).

Either way the run's `Health` records the step, and the trainer stops at its next read point.
"""

from __future__ import annotations

import torch


def grad_norm(params: list[torch.nn.Parameter], clip: float) -> torch.Tensor | None:
    """The total L2 norm of the gradients of `params` (a 0-dim tensor, not read), clipping them to
    `clip` first when clip > 0; None when none has a gradient."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    return torch.nn.utils.get_total_norm(grads)


def fused(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every parameter group runs torch's fused kernel (which can skip a step on the device)."""
    return all(group.get("fused") for group in optimizer.param_groups)


@torch.no_grad()
def zero_grads_if(optimizer: torch.optim.Optimizer, bad: torch.Tensor) -> None:
    """Set every gradient of `optimizer` to zero where `bad` (0-dim bool) holds, on the device."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p.grad.masked_fill_(bad, 0.0)


def step_unless(optimizer: torch.optim.Optimizer, bad: torch.Tensor) -> None:
    """optimizer.step(), not applied when `bad` (a 0-dim bool tensor on the device, never read)."""
    if fused(optimizer):
        optimizer.found_inf = bad.float()
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf
        return
    zero_grads_if(optimizer, bad)
    optimizer.step()
