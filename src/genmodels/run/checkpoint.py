"""Checkpoints: tensors and plain data only, written atomically, loaded without unpickling code.

A checkpoint is one `torch.save`d dict:

    format, version          "genmodels-checkpoint", FORMAT_VERSION
    model_name, model_config which family wrote it and with which config (checked on load)
    spec                     the DataSpec the networks were built for
    step                     number of completed optimisation steps
    modules, optimizers      {name: state_dict} from model.modules() / model.optimizers()
    ema                      EMA.state_dict() or None
    scalers                  {optimizer name: GradScaler state} (fp16 only)
    data                     the data stream's epoch, position, permutation and generator state
    rng                      the step generator's state and the private global RNG state

It is written by `genmodels.atomic.atomic_file`: to a temporary file in the same folder, flushed
and fsync'd, then renamed over the old one (`os.replace` is atomic), so a crash leaves either the
old or the new checkpoint, never half of one, and a full disk is an OutputError naming the file.
It is read with `torch.load(weights_only=True)`, which refuses any pickled object other than
tensors and plain containers.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from genmodels.atomic import atomic_file
from genmodels.config import upgrade_saved_model_table
from genmodels.errors import CheckpointError

FORMAT = "genmodels-checkpoint"
FORMAT_VERSION = 1


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` so that `path` is always either the old or the new file
    (OutputError naming `path` and the cause when it cannot be written)."""
    with atomic_file(path) as f:
        torch.save(obj, f)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read and sanity-check a checkpoint; CheckpointError if missing, truncated, foreign or unsafe."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: refused: the file needs arbitrary unpickling, which could run "
                              f"code; only tensors and plain data are loaded ({first})") from None
    except Exception as e:  # truncated zip, bad magic number, short read, ...
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genmodels checkpoint (no format tag {FORMAT!r})")
    if obj.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {obj.get('version')!r}; this genmodels "
                              f"reads version {FORMAT_VERSION}")
    missing = [k for k in ("model_name", "model_config", "step", "modules", "optimizers") if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return obj


def check_model(ckpt: dict, model_name: str, model_config: dict, path: str | Path = "checkpoint",
                defaults: dict | None = None) -> None:
    """CheckpointError unless the checkpoint was written by the same family with the same config.

    defaults: the family config's default values; a field the checkpoint does not record (one added
    to the library after it was written) is accepted when this config leaves it at its default,
    since the checkpoint's model then had that behaviour."""
    if ckpt["model_name"] != model_name:
        raise CheckpointError(f"{path}: written by model {ckpt['model_name']!r}, not {model_name!r}")

    saved, _ = upgrade_saved_model_table(model_name, ckpt["model_config"])   # names an older version wrote
    defaults = defaults or {}
    keys = sorted(set(saved) | set(model_config))
    differ = [k for k in keys if saved.get(k) != model_config.get(k)
              and not (k not in saved and k in defaults and model_config.get(k) == defaults[k])]
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} in checkpoint vs {model_config.get(k)!r}" for k in differ)
        raise CheckpointError(f"{path}: written with a different {model_name} config ({detail})")


def load_modules(modules: dict[str, torch.nn.Module], states: dict, path: str | Path = "checkpoint") -> None:
    """Load {name: state_dict} into modules; CheckpointError naming any missing or mismatched net."""
    if set(states) != set(modules):
        raise CheckpointError(f"{path}: holds networks {sorted(states)}, the model has {sorted(modules)}")
    for name, module in modules.items():
        try:
            module.load_state_dict(states[name])
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"{path}: network {name!r} does not match the model: {e}") from None


def load_optimizers(optimizers: dict[str, torch.optim.Optimizer], states: dict,
                    path: str | Path = "checkpoint") -> None:
    """Load {name: optimizer state} into optimizers; CheckpointError on a mismatch."""
    if set(states) != set(optimizers):
        raise CheckpointError(f"{path}: holds optimisers {sorted(states)}, the model has {sorted(optimizers)}")
    for name, opt in optimizers.items():
        try:
            opt.load_state_dict(states[name])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{path}: optimiser {name!r} does not match the model: {e}") from None
