"""Power-function EMA and its post-hoc reconstruction (Karras et al. 2024, "Analyzing and Improving
the Training Dynamics of Diffusion Models", sec. 3 and appendix C).

The power-function EMA of the weights theta(1), theta(2), ... is

    theta_hat(t) = beta(t) theta_hat(t - 1) + (1 - beta(t)) theta(t),   beta(t) = (1 - 1/t)^(gamma + 1)

(their eq. 2), which weights step tau of the first t by exactly

    w_t(tau) = (tau^(gamma + 1) - (tau - 1)^(gamma + 1)) / t^(gamma + 1),   tau = 1..t,

the integral over [tau - 1, tau] of the profile (gamma + 1) tau^gamma / t^(gamma + 1): its length grows
with training, and its relative width sigma_rel = sqrt(gamma + 1) / ((gamma + 2) sqrt(gamma + 3)) (their
eq. 3) names it. Keeping two such averages (sigma_rel 0.05 and 0.10 in the paper) and storing them
every few steps is enough to rebuild, after training, the average of any other sigma_rel at any stored
step: the stored averages are linear in theta, so the one whose weights w come nearest (least
squares) to the target's weights is a linear combination of them (their appendix C.3; here the
inner products are the exact sums over steps of the discrete weights above).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genmodels.atomic import write_bytes
from genmodels.errors import CheckpointError
from genmodels.run.checkpoint import load_checkpoint, save_atomic
from genmodels.run.layout import RunDir


def sigma_rel_to_gamma(sigma_rel: float) -> float:
    """The exponent gamma of a profile of relative width sigma_rel (Karras et al. 2024, eq. 3 solved:
    gamma^3 + 7 gamma^2 + (16 - 1/sigma_rel^2) gamma + 12 - 1/sigma_rel^2 = 0, its largest real root)."""
    if not 0.0 < sigma_rel < 0.2886:       # gamma -> 0 gives sigma_rel = 1 / sqrt(12) (a uniform average)
        raise ValueError(f"sigma_rel must be in (0, 0.2886), got {sigma_rel}")
    k = sigma_rel**-2
    roots = np.roots([1.0, 7.0, 16.0 - k, 12.0 - k])
    return float(max(r.real for r in roots if abs(r.imag) < 1e-9))


def gamma_to_sigma_rel(gamma: float) -> float:
    """Relative width of the profile tau^gamma (Karras et al. 2024, eq. 3)."""
    return math.sqrt(gamma + 1.0) / ((gamma + 2.0) * math.sqrt(gamma + 3.0))


def beta(step: int, gamma: float) -> float:
    """The decay (1 - 1/t)^(gamma + 1) at step t >= 1 (0 at t = 1: the average starts at theta(1))."""
    return (1.0 - 1.0 / step) ** (gamma + 1.0)


def profile_weights(step: int, gamma: float, length: int) -> np.ndarray:
    """w_t(tau) for tau = 1..length (zero after t), float64 (length,)."""
    tau = np.arange(1, length + 1, dtype=np.float64)
    w = (tau ** (gamma + 1.0) - (tau - 1.0) ** (gamma + 1.0)) / float(step) ** (gamma + 1.0)
    w[tau > step] = 0.0
    return w


def solve_weights(snapshots: Sequence[tuple[int, float]], step: int, sigma_rel: float) -> np.ndarray:
    """Coefficients x (len(snapshots),) such that sum_i x_i theta_hat_i is the least-squares nearest
    average to the power-function EMA of `sigma_rel` at `step`, for snapshots given as (step_i, gamma_i)."""
    if not snapshots:
        raise ValueError("post-hoc EMA needs at least one stored average")
    length = max(step, *(s for s, _ in snapshots))
    basis = np.stack([profile_weights(s, g, length) for s, g in snapshots])         # (K, length)
    target = profile_weights(step, sigma_rel_to_gamma(sigma_rel), length)
    gram = basis @ basis.T
    x, *_ = np.linalg.lstsq(gram, basis @ target, rcond=None)
    return x


def reconstruction_error(snapshots: Sequence[tuple[int, float]], step: int, sigma_rel: float) -> float:
    """|| sum_i x_i w_i - w_target || / || w_target ||: how closely the stored averages span the target."""
    length = max(step, *(s for s, _ in snapshots))
    basis = np.stack([profile_weights(s, g, length) for s, g in snapshots])
    target = profile_weights(step, sigma_rel_to_gamma(sigma_rel), length)
    x = solve_weights(snapshots, step, sigma_rel)
    return float(np.linalg.norm(x @ basis - target) / np.linalg.norm(target))


def flat_state(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The floating-point entries of the networks' state dicts as {"network/entry": tensor} (integer
    buffers are not averaged: a rebuilt average takes them from the checkpoint)."""
    return {f"{name}/{k}": v for name, m in modules.items() for k, v in m.state_dict().items()
            if v.is_floating_point()}


class PowerEMA:
    """Power-function EMAs of a set of tensors, one per sigma_rel. `update(step, tensors)` after each
    optimiser step (step counts from 1); `averages[sigma_rel]` holds the current averages, in float32."""

    def __init__(self, sigma_rels: Iterable[float], tensors: Mapping[str, torch.Tensor]):
        self.sigma_rels = tuple(float(s) for s in sigma_rels)
        self.gammas = {s: sigma_rel_to_gamma(s) for s in self.sigma_rels}
        self.averages = {s: {k: v.detach().float().clone() for k, v in tensors.items()} for s in self.sigma_rels}

    @torch.no_grad()
    def update(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:  # noqa: D102
        for s, avg in self.averages.items():
            b = beta(step, self.gammas[s])
            for k, v in tensors.items():
                avg[k].lerp_(v.detach().float(), 1.0 - b)

    def state_dict(self) -> dict:
        """For the checkpoint (tensors and plain data): {"sigma_rels": [...], "averages": {str(s): {...}}}."""
        return {"sigma_rels": list(self.sigma_rels), "averages": {repr(s): dict(a) for s, a in self.averages.items()}}

    def load_state_dict(self, state: Mapping) -> None:  # noqa: D102
        if [float(s) for s in state["sigma_rels"]] != list(self.sigma_rels):
            raise KeyError(f"stored sigma_rels {state['sigma_rels']} are not the run's {list(self.sigma_rels)}")
        for s in self.sigma_rels:
            stored = state["averages"][repr(s)]
            for k, v in self.averages[s].items():
                v.copy_(stored[k])

    def write_snapshot(self, path: Path, step: int) -> Path:
        """The averages at `step` as one safetensors file (tensors "SIGMA_REL:network/entry", metadata
        step and sigma_rels), written atomically."""
        from safetensors.torch import save  # lazy: safetensors, for weights files only

        tensors = {f"{s!r}:{k}": v.contiguous() for s, a in self.averages.items() for k, v in a.items()}
        meta = {"step": str(step), "sigma_rels": json.dumps(list(self.sigma_rels))}
        return write_bytes(path, save(tensors, metadata=meta))


def read_snapshots(folder: Path) -> list[tuple[int, float, dict[str, torch.Tensor]]]:
    """Every stored average in `folder` (RUN_DIR/ema) as (step, gamma, tensors), sorted by step; a file
    that cannot be read is a CheckpointError naming it (safetensors: tensors only, no unpickling)."""
    from safetensors import SafetensorError, safe_open  # lazy: safetensors, for weights files only

    out = []
    for path in sorted(folder.glob("step_*.safetensors")):
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle)
            step, sigma_rels = int(meta["step"]), [float(s) for s in json.loads(meta["sigma_rels"])]
        except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: not a readable post-hoc EMA snapshot ({e})") from None
        for s in sigma_rels:
            prefix = f"{s!r}:"
            out.append((step, sigma_rel_to_gamma(s), {k[len(prefix):]: v for k, v in tensors.items()
                                                      if k.startswith(prefix)}))
    if not out:
        raise CheckpointError(f"{folder}: no post-hoc EMA snapshots (train with trainer.ema_sigma_rels, e.g. "
                              f"--set trainer.ema_sigma_rels=0.05,0.1)")
    return sorted(out, key=lambda snap: snap[0])


def reconstruct(snapshots: Sequence[tuple[int, float, Mapping[str, torch.Tensor]]], step: int,
                sigma_rel: float) -> dict[str, torch.Tensor]:
    """The post-hoc average of `sigma_rel` at `step` from stored averages (step_i, gamma_i, tensors_i)."""
    x = solve_weights([(s, g) for s, g, _ in snapshots], step, sigma_rel)
    names = snapshots[0][2].keys()
    return {k: sum(float(c) * snap[2][k].double() for c, snap in zip(x, snapshots, strict=True)).float()
            for k in names}


def posthoc_checkpoint(run_dir: str | Path, sigma_rel: float, step: int | None = None) -> Path:
    """Rebuild the power-function EMA of `sigma_rel` at `step` (None: the last stored step) from a run's
    snapshots (RUN_DIR/ema) and write it as RUN_DIR/checkpoints/posthoc_sigmaS_step_XXXXXXX.pt: the latest
    checkpoint with its EMA replaced by the rebuilt average (integer buffers from the latest weights),
    so that `sample` / `evaluate` / `zoo export` read it with `--checkpoint`. Only snapshots up to
    `step` are used. Returns the path."""
    run = RunDir(run_dir)
    snaps = read_snapshots(run.ema_snapshots)
    last = snaps[-1][0]
    step = last if step is None else step
    used = [snap for snap in snaps if snap[0] <= step]
    if not used or step > last:
        raise CheckpointError(f"{run.ema_snapshots}: snapshots cover steps {snaps[0][0]}..{last}; cannot rebuild "
                              f"the average at step {step}")
    sigma_rel_to_gamma(sigma_rel)                     # ValueError for a width out of range
    rebuilt = reconstruct(used, step, sigma_rel)
    ckpt = load_checkpoint(run.latest)
    shadow: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in rebuilt.items():
        name, _, entry = key.partition("/")
        shadow.setdefault(name, {})[entry] = value
    for name, entries in shadow.items():
        for k, v in ckpt["modules"][name].items():
            if k not in entries:                      # integer buffers (counters) as trained
                entries[k] = v
            else:
                entries[k] = entries[k].to(v.dtype)
    ckpt["ema"] = {"decay": 0.0, "warmup": False, "num_updates": step, "shadow": shadow}
    ckpt["posthoc_ema"] = {"sigma_rel": float(sigma_rel), "step": int(step), "snapshots": len(used),
                           "relative_error": reconstruction_error([(s, g) for s, g, _ in used], step, sigma_rel)}
    ckpt["step"] = int(step)
    return save_atomic(ckpt, run.posthoc_checkpoint(sigma_rel, step))
