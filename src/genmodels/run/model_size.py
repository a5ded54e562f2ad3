"""Refusing a model too large for the machine before its weights are allocated.

`build_model` first constructs the family's model with every large tensor on torch's "meta"
device (shapes without storage), counts the parameters and buffers, and compares the memory that
training them needs (weights, gradients, two Adam moments and an EMA copy: 5 float32 values each)
with the memory of the device. A width flag of 1e12 is then a one-line ConfigError, not an
allocation traceback. Where the meta construction is not possible the real one runs, and an
allocation failure there becomes the same kind of error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from genmodels.errors import ConfigError, GenmodelsError

BYTES_PER_VALUE = 4 * 5     # float32 weight, gradient, Adam m and v, EMA shadow
META_FROM = 4096            # tensors of at least this many elements are built on the meta device
MAX_TENSORS = 20_000        # more tensors than this means a depth option far beyond any real network
FACTORIES = (torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.empty_strided)


def memory_bytes(device: torch.device) -> int | None:
    """Total memory of `device` (physical memory for the CPU and MPS), or None if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError, RuntimeError, AssertionError):
        return None


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _numel(args: tuple, kwargs: dict) -> int:
    """Elements asked of a factory call: torch.zeros(3, 4), torch.zeros((3, 4)), torch.full((3,), 1.0)."""
    size = kwargs.get("size", args[0] if args else ())
    if isinstance(size, int):
        size = [a for a in args if isinstance(a, int)] if all(isinstance(a, int) for a in args) else [size]
    try:
        return math.prod(int(s) for s in size)
    except (TypeError, ValueError):
        return 0


class _Overflow(Exception):
    """A tensor so large that torch cannot even compute its storage size, or so many tensors (layers)
    that building them would take hours: the count is beyond any machine either way."""

    def __init__(self, numel: int, what: str = "values"):
        super().__init__(numel)
        self.numel, self.what = numel, what


class _LargeTensorsOnMeta(TorchFunctionMode):
    """Creates every tensor of at least META_FROM elements without a device on the meta device;
    smaller ones (noise schedules, scalars) stay real so the model's set-up code can read them."""

    def __init__(self) -> None:
        super().__init__()
        self.created = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in FACTORIES:
            self.created += 1
            if self.created > MAX_TENSORS:
                raise _Overflow(self.created, "tensors")
            numel = _numel(args, kwargs)
            if numel * 8 > 2 ** 63 - 1:
                raise _Overflow(numel)
            if kwargs.get("device") is None and numel >= META_FROM:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def count_values(model_cls: type, config: Any, spec: Any) -> int | None:
    """Parameters plus buffers of model_cls(config, spec) built without storage, or None when the
    family's constructor cannot run that way. A ConfigError of the constructor is raised as is;
    _Overflow when a tensor's size or the number of tensors is beyond counting."""
    try:
        with torch.random.fork_rng(devices=[]), _LargeTensorsOnMeta():
            model = model_cls(config, spec, torch.device("meta"))
            tensors = [t for m in model.modules().values() for t in (*m.parameters(), *m.buffers())]
    except (GenmodelsError, _Overflow):
        raise
    except MemoryError:  # Python's own lists of layers: a depth beyond counting
        raise _Overflow(MAX_TENSORS + 1, "tensors") from None
    except Exception:  # a constructor that reads its large tensors: fall back to the real build
        return None
    return sum(t.numel() for t in tensors)


def size_fields(config: Any) -> str:
    """The integer options of a family config set away from their defaults (the likely culprits)."""
    changed = []
    default = type(config)()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        listed = isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)
        if (isinstance(value, int) or listed) and not isinstance(value, bool) and value != getattr(default, f.name):
            changed.append(f"model.{f.name}={value}")
    return ", ".join(changed) or "the defaults"


def check_model_size(model_name: str, model_cls: type, config: Any, spec: Any, device: torch.device) -> None:
    """ConfigError when training the model would need more memory than `device` has."""
    try:
        values = count_values(model_cls, config, spec)
    except _Overflow as e:
        if e.what == "tensors":
            raise ConfigError(f"the {model_name} networks would have more than {MAX_TENSORS} weight tensors; "
                              f"reduce the depth options ({size_fields(config)})") from None
        values = e.numel
    have = memory_bytes(device)
    if values is None or have is None:
        return
    need = values * BYTES_PER_VALUE
    if need > have:
        raise ConfigError(f"the {model_name} networks would hold {values:.3g} values, about {format_bytes(need)} "
                          f"to train (weights, gradients, Adam state, EMA), more than the {format_bytes(have)} of "
                          f"{device.type} memory; reduce the network sizes ({size_fields(config)})")


@contextlib.contextmanager
def allocation_refused(model_name: str, config: Any) -> Iterator[None]:
    """Turn an allocation failure while building the model into a one-line ConfigError."""
    try:
        yield
    except MemoryError as e:
        detail = f" ({e})" if str(e) else ""
        raise ConfigError(f"the {model_name} networks do not fit in memory{detail}; reduce the network sizes "
                          f"({size_fields(config)})") from None
    except RuntimeError as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if "alloc" not in text.lower() and "out of memory" not in text.lower():
            raise
        raise ConfigError(f"the {model_name} networks do not fit in memory ({text}); reduce the network sizes "
                          f"({size_fields(config)})") from None
