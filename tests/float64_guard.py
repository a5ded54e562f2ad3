"""A stand-in for a device without float64 (Apple's MPS), on a machine without one.

The model is built on STAND_IN, `torch.device("cpu", 0)`: a CPU device that code names only when it
means "the model's device" (`self.device`, `ctx.device`, `x.to(device)`), while host-side code says
"cpu" or nothing. `Float64Guard`, a `TorchFunctionMode`, follows every tensor that lives "on the
device": the model's parameters and buffers, the batches, whatever a call makes with
`device=STAND_IN` or `.to(STAND_IN)`, and every result of a call that takes one of those (so an
optimiser's moments, activations, samples). Such a tensor of dtype float64 (or complex128) is what
MPS refuses; the guard raises there, naming the call. A tensor leaves the device through `.cpu()`,
`.numpy()`, `.item()` and `.tolist()`.

Limits (it is a model of MPS, not MPS): a tensor made with `device=x.device` is taken as a host
tensor (its device reads "cpu"), and a 0-dim float64 CPU tensor may meet device tensors, as on MPS,
where it takes the device tensor's dtype.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

STAND_IN = torch.device("cpu", 0)
WIDE = (torch.float64, torch.complex128)
TO_HOST = ("cpu", "numpy", "item", "tolist")


class Float64OnDevice(AssertionError):
    """A float64 tensor on the stand-in device."""


def _device_args(args, kwargs) -> list:
    return [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, (torch.device, str))]


class Float64Guard(TorchFunctionMode):
    """Raises Float64OnDevice when a call leaves a float64 tensor on the stand-in device."""

    def __init__(self, *device_tensors: torch.Tensor):
        super().__init__()
        self.on_device = WeakIdKeyDictionary()
        self.calls = 0
        for t in device_tensors:
            self.mark(t)

    def mark(self, *tensors) -> None:
        for t in tree_flatten(tensors)[0]:
            if isinstance(t, torch.Tensor):
                self.on_device[t] = True

    def mark_modules(self, modules) -> None:
        for m in modules.values():
            self.mark(list(m.parameters()), list(m.buffers()))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name.startswith("__get__") or name in TO_HOST:
            return out
        self.calls += 1
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        to_stand_in = any(_is_stand_in(d) for d in _device_args(args, kwargs))
        from_device = any(t in self.on_device for t in inputs)
        if not (to_stand_in or from_device):
            return out
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                if t.dtype in WIDE:
                    raise Float64OnDevice(f"{name}: a {t.dtype} tensor of shape {tuple(t.shape)} on the device "
                                          f"(MPS has no float64)")
                self.on_device[t] = True
        return out


def _is_stand_in(d) -> bool:
    try:
        return torch.device(d) == STAND_IN
    except (RuntimeError, TypeError):
        return False
