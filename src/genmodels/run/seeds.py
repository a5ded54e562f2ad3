"""Explicit random streams derived from the one run seed (no global seeding).

Each use of randomness gets its own named stream (`data` order, `step` noise, periodic
`samples`, weight `init`) so that, e.g., drawing a sample grid never shifts the training noise.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream, a fixed function of (seed, stream)."""
    digest = hashlib.sha256(f"genmodels:{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded for the named stream."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(derive_seed(seed, stream))
    return g


def _fork_devices(device: torch.device) -> list:
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


@contextlib.contextmanager
def private_global_rng(state: dict | None = None, *, seed: int | None = None,
                       device: torch.device = torch.device("cpu")) -> Iterator[None]:
    """Run a block with torch's global CPU (and CUDA) RNG forked: set to `state` or seeded with
    `seed` inside, and restored to the caller's state on exit.

    Weight initialisers and layers such as dropout draw from torch's global generator; this gives
    them a reproducible stream without changing the caller's global state.
    """
    with torch.random.fork_rng(devices=_fork_devices(device)):
        if state is not None:
            set_global_rng_state(state, device)
        elif seed is not None:
            torch.random.default_generator.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed(seed)
        yield


def global_rng_state(device: torch.device) -> dict:
    """The global CPU generator state (and the CUDA one of `device`), as tensors."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_global_rng_state(state: dict, device: torch.device) -> None:
    """Inverse of `global_rng_state` (only called inside `private_global_rng`)."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
