"""Exponential moving average of network weights, with warm-up.

After each optimisation step, every floating-point entry theta of the EMA'd networks' state dicts
(weights and buffers such as batch-norm statistics) updates its shadow

    theta_ema <- d * theta_ema + (1 - d) * theta,    d = min(decay, (1 + n) / (10 + n))

where n counts previous updates (the warm-up of TensorFlow's ExponentialMovingAverage with
num_updates, used by Ho et al. 2020 with decay 0.9999). Integer buffers are copied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """Shadow copies of the state dicts of `modules` (name -> nn.Module)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float, warmup: bool = True):
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow: dict[str, dict[str, torch.Tensor]] = {
            name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in modules.items()
        }

    def current_decay(self) -> float:
        """d for the next update."""
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module]) -> None:
        """theta_ema <- d theta_ema + (1 - d) theta for every shadowed entry."""
        d = self.current_decay()
        for name, shadow in self.shadow.items():
            for k, v in modules[name].state_dict().items():
                s = shadow[k]
                if s.is_floating_point():
                    s.lerp_(v.detach().to(s.dtype), 1.0 - d)  # s + (1 - d)(v - s) = d s + (1 - d) v
                else:
                    s.copy_(v)
        self.num_updates += 1

    def copy_to(self, modules: dict[str, nn.Module]) -> None:
        """Load the averaged weights into `modules` (for sampling or export)."""
        for name, shadow in self.shadow.items():
            modules[name].load_state_dict(shadow)

    @contextlib.contextmanager
    def swapped_in(self, modules: dict[str, nn.Module]) -> Iterator[None]:
        """Temporarily use the averaged weights; the training weights come back on exit."""
        backup = {name: {k: v.detach().clone() for k, v in modules[name].state_dict().items()}
                  for name in self.shadow}
        self.copy_to(modules)
        try:
            yield
        finally:
            for name, state in backup.items():
                modules[name].load_state_dict(state)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        """Restore shadows saved by `state_dict` (KeyError/RuntimeError on a mismatch)."""
        if set(state["shadow"]) != set(self.shadow):
            raise KeyError(f"EMA of modules {sorted(state['shadow'])}, expected {sorted(self.shadow)}")
        for name, shadow in self.shadow.items():
            saved = state["shadow"][name]
            if set(saved) != set(shadow):
                raise KeyError(f"EMA of {name!r} has entries {sorted(saved)}, expected {sorted(shadow)}")
            for k, v in shadow.items():
                if saved[k].shape != v.shape:
                    raise RuntimeError(f"EMA of {name}.{k} has shape {tuple(saved[k].shape)}, expected "
                                       f"{tuple(v.shape)}")
                v.copy_(saved[k])
        self.num_updates = int(state["num_updates"])
