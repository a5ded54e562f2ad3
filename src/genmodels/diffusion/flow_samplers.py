"""Samplers of a flow (`flow.py`): stateless functions that integrate dx/dt = v(x, t) from t = 1
(x_1 ~ N(0, I)) down to t = 0 (the data), with one shared signature:

    sampler(velocity, x_1, *, steps=None, callback=None, **extra) -> x_0

velocity(x_t (B, ...), t (B,) float32 in [0, 1]) -> v (B, ...). steps: the uniform grid's steps
t_k = k / steps, k = steps .. 0 (the adaptive solver picks its own). callback(i, t, x_t, v) sees
each network evaluation of the fixed-step samplers (i counts down to 1). Deterministic: no noise
is drawn after x_1.

`FLOW_SAMPLERS` is the registry, name -> `FlowSamplerSpec` (the function, its default steps, the
network evaluations per step, its extra options), as `samplers.SAMPLERS` is for the DDPM; the flow
family's sample options take their names, defaults and help from it. `straightness` measures Liu
et al.'s S along the trajectories of the Euler sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from genmodels.errors import ConfigError, GenmodelsError, choice_error

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def time_grid(steps: int) -> list[float]:
    """[1, (K-1)/K, ..., 1/K, 0] for K = steps (>= 1): the uniform grid from noise to data."""
    if steps < 1:
        raise ConfigError(f"the number of sampling steps must be >= 1, got {steps}")
    return [k / steps for k in range(steps, -1, -1)]


def _at(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device)


def _fixed_steps(velocity: Velocity, x_1: torch.Tensor, steps: int, callback: Callable | None,
                 corrected: bool) -> torch.Tensor:
    """The uniform-grid loop of euler and heun: per step from t to s = t - 1/steps, h = s - t, the Euler
    point x + h v(x, t), then with `corrected` Heun's x + h (v(x, t) + v(Euler point, s)) / 2."""
    grid = time_grid(steps)
    x = x_1
    for i, (t, s) in enumerate(zip(grid[:-1], grid[1:], strict=True)):
        v = velocity(x, _at(x, t))
        if callback is not None:
            callback(steps - i, t, x, v)
        x_next = x + (s - t) * v                                           # Euler step
        if corrected:                                                      # trapezoidal correction
            x_next = x + (s - t) * 0.5 * (v + velocity(x_next, _at(x, s)))
        x = x_next
    return x


@torch.no_grad()
def euler(velocity: Velocity, x_1: torch.Tensor, *, steps: int | None = 50,
          callback: Callable | None = None) -> torch.Tensor:
    """Euler's method on the uniform grid: x_{t_{k-1}} = x_{t_k} + (t_{k-1} - t_k) v(x_{t_k}, t_k)
    (Liu et al. 2023, sec. 2.1: one step is exact for a straight flow). `steps` network evaluations."""
    return _fixed_steps(velocity, x_1, steps or 50, callback, corrected=False)


@torch.no_grad()
def heun(velocity: Velocity, x_1: torch.Tensor, *, steps: int | None = 25,
         callback: Callable | None = None) -> torch.Tensor:
    """Heun's second-order method (explicit trapezoid; Karras et al. 2022, Algorithm 1 without noise)
    on the uniform grid: the Euler point x' = x + h v(x, t), then x + h (v(x, t) + v(x', s)) / 2 with
    h = s - t. The flow's velocity is defined at t = 0, so every step is corrected: 2 steps network
    evaluations."""
    return _fixed_steps(velocity, x_1, steps or 25, callback, corrected=True)


@torch.no_grad()
def rk45(velocity: Velocity, x_1: torch.Tensor, *, steps: int | None = None, callback: Callable | None = None,
         rtol: float = 1e-5, atol: float = 1e-5) -> torch.Tensor:
    """The adaptive Dormand-Prince 5(4) solver (scipy.integrate.solve_ivp, method RK45), from t = 1 to
    t = 0 with tolerances rtol, atol (Liu et al. 2023 sample with RK45 at 1e-5; the ODE likelihood
    uses the same solver). The batch is one system; `steps` and `callback` do not apply (its steps
    are its own)."""
    del steps, callback
    if not (rtol > 0 and atol > 0):
        raise ConfigError(f"the ODE solver tolerances must be > 0, got rtol={rtol}, atol={atol}")
    from scipy.integrate import solve_ivp  # lazy: scipy.integrate is slow to import

    shape = x_1.shape

    def drift(t: float, state: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(state).reshape(shape).to(device=x_1.device, dtype=x_1.dtype)
        return velocity(x, _at(x, t)).float().reshape(-1).cpu().numpy().astype(np.float64)   # float64 on the host only

    start = x_1.float().reshape(-1).cpu().numpy().astype(np.float64)
    sol = solve_ivp(drift, (1.0, 0.0), start, method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise GenmodelsError(f"the flow's ODE solver failed: {sol.message}")
    return torch.from_numpy(sol.y[:, -1]).reshape(shape).to(device=x_1.device, dtype=x_1.dtype)


@dataclass(frozen=True)
class FlowSamplerSpec:
    """One sampler of the registry: its function, its steps when none are asked for (None: adaptive),
    network evaluations per step (None: adaptive), the keyword options it takes beyond the common
    signature (filled from the sample options), and what it is."""

    fn: Callable
    steps: int | None
    nfe_per_step: int | None
    extra: tuple[str, ...]
    summary: str


FLOW_SAMPLERS: dict[str, FlowSamplerSpec] = {
    "euler": FlowSamplerSpec(euler, 50, 1, (), "Euler, uniform steps"),
    "heun": FlowSamplerSpec(heun, 25, 2, (), "Heun's second order, uniform steps"),
    "rk45": FlowSamplerSpec(rk45, None, None, ("rtol", "atol"), "adaptive Dormand-Prince, scipy's solve_ivp"),
}
if TYPE_CHECKING:
    FlowSamplerName = str
else:
    FlowSamplerName = Literal[tuple(FLOW_SAMPLERS)]   # the registry's names, for option fields (one definition)


def get_flow_sampler(name: str) -> FlowSamplerSpec:
    """The registry's entry for `name`; ConfigError listing the names otherwise."""
    if name not in FLOW_SAMPLERS:
        raise choice_error("flow sampler", name, FLOW_SAMPLERS)
    return FLOW_SAMPLERS[name]


def describe_flow_samplers() -> str:
    """'euler (Euler, uniform steps; 50 steps), ...': the names, what each is and its default steps."""
    return ", ".join(f"{name} ({spec.summary}{'' if spec.steps is None else f'; {spec.steps} steps'})"
                     for name, spec in FLOW_SAMPLERS.items())


@torch.no_grad()
def straightness(velocity: Velocity, x_1: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """Liu et al. 2023's straightness S(Z) = integral_0^1 E ||(Z_1 - Z_0) - v(Z_t, t)||^2 dt of the flow's
    own trajectories (their eq. 5; 0 for a straight flow), per example (B,) and per dimension: the
    trajectory Z_t from x_1 by `steps` Euler steps, the integral by the left Riemann sum over the
    same grid. In our time direction dZ/dt = v and Z_1 - Z_0 = x_1 - x_0."""
    vs: list[torch.Tensor] = []
    x_0 = euler(velocity, x_1, steps=steps, callback=lambda i, t, x, v: vs.append(v))
    chord = (x_1 - x_0).flatten(1)
    return torch.stack([(chord - v.flatten(1)).pow(2).mean(dim=1) for v in vs]).mean(dim=0)
