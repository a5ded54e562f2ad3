"""Rebuilding a trained model from a run directory: `load_run(RUN_DIR)` -> LoadedRun.

Reading a run needs only this package (and the model families), never the trainer: `genmodels
sample`, `evaluate`, `report` and the zoo load runs through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from genmodels.config import RunConfig, dataclass_to_dict
from genmodels.data.dataset import DataSpec
from genmodels.errors import CheckpointError, ConfigError
from genmodels.models.base import GenerativeModel
from genmodels.models.registry import get_model
from genmodels.run.checkpoint import check_model, load_checkpoint, load_modules
from genmodels.run.layout import RunDir
from genmodels.run.model_size import allocation_refused, check_model_size
from genmodels.run.seeds import derive_seed, private_global_rng


def resolve_device(name: str) -> torch.device:
    """trainer.device -> torch.device ("auto" picks CUDA when available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device is {name!r} but CUDA is not available; use cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"trainer.device is {name!r} but this machine has {count} CUDA device(s): use cuda:0.."
                          f"cuda:{count - 1}, cuda or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"trainer.device is {name!r} but MPS (Apple GPUs) is not available; use cpu or auto")
    return device


def build_model(config: RunConfig, spec: DataSpec, device: torch.device) -> GenerativeModel:
    """Construct the family's model; its weight initialisation draws from the `init` stream of the
    run seed (inside a private copy of torch's global RNG, so the caller's RNG is untouched).
    A model too large for the device is a ConfigError before anything is allocated
    (`genmodels.run.model_size`). config.model becomes the model's own config, with any
    data-dependent defaults resolved."""

    model_cls = get_model(config.model_name).model_cls
    device = torch.device(device)
    check_model_size(config.model_name, model_cls, config.model, spec, device)
    with private_global_rng(seed=derive_seed(config.seed, "init"), device=device), \
            allocation_refused(config.model_name, config.model):
        model = model_cls(config.model, spec, device)
    # a family may fix defaults that depend on the kind of data (e.g. "0 = automatic" sizes) when it
    # builds its networks: the run records the values actually used
    config.model = model.config
    return model


@dataclass
class LoadedRun:
    """A model rebuilt from a run directory with its latest weights (eval mode)."""

    model: GenerativeModel
    config: RunConfig
    spec: DataSpec
    step: int
    ema: bool = False           # whether EMA weights were swapped in
    path: Path | None = None    # the checkpoint read
    sample_defaults: dict = field(default_factory=dict)   # the run's [sample] table or a zoo card's; flags override
    # the networks whose weights were read, when not all of model.modules() (a zoo entry exported with
    # `--networks sampling`; the others keep their fresh initialisation); None: every network
    networks: tuple[str, ...] | None = None

    def missing_networks(self) -> list[str]:
        """The networks of model.modules() whose weights were not read (sorted; [] when all were)."""
        if self.networks is None:
            return []
        return sorted(set(self.model.modules()) - set(self.networks))


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", ema: bool = True,
             checkpoint: str | Path | None = None) -> LoadedRun:
    """Rebuild the model from RUN_DIR/config.toml and load the latest checkpoint (or `checkpoint`).

    With ema=True the EMA weights replace those of model.ema_modules() when the run kept an EMA.
    Raises ConfigError for a directory that is not a run, CheckpointError for a missing, broken or
    foreign checkpoint.
    """
    run = RunDir(run_dir)
    config, spec = run.read_config()
    device = torch.device(device) if not isinstance(device, torch.device) else device
    path = Path(checkpoint) if checkpoint is not None else run.latest
    if not path.is_file():
        raise CheckpointError(f"{run.path}: no checkpoint at {path} (has the run saved one yet?)")
    ckpt = load_checkpoint(path)  # CPU tensors, copied into the model's device below
    check_model(ckpt, config.model_name, dataclass_to_dict(config.model), path,
                defaults=dataclass_to_dict(type(config.model)()))
    model = build_model(config, spec, device)
    modules = model.modules()
    load_modules(modules, ckpt["modules"], path)
    used_ema = False
    if ema and ckpt.get("ema") is not None:
        shadow = ckpt["ema"]["shadow"]
        for name, state in shadow.items():
            if name not in modules:
                raise CheckpointError(f"{path}: EMA of unknown network {name!r}")
            try:
                modules[name].load_state_dict(state)
            except RuntimeError as e:
                raise CheckpointError(f"{path}: EMA of {name!r} does not match the model: {e}") from None
        used_ema = bool(shadow)
    for m in modules.values():
        m.eval()
    return LoadedRun(model=model, config=config, spec=spec, step=int(ckpt["step"]), ema=used_ema, path=path,
                     sample_defaults=dict(config.sample))
