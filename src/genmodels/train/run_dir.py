"""Run directories: their layout, building a model from a run config, and `load_run`.

    RUN_DIR/
      config.toml            the RunConfig plus a [spec] table (the DataSpec the nets were built for)
      metrics.jsonl          one JSON object per logged step
      losses.png             the logged series against the step
      checkpoints/latest.pt  (and step_XXXXXXX.pt every trainer.keep_every steps)
      samples/step_XXXXXXX.png
      tensorboard/           event files, when tensorboard is installed
      .lock                  held by the one process writing the run (genmodels.train.run_lock)

Every file is replaced atomically (genmodels.atomic) and metrics.jsonl only grows by whole lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genmodels.config import RunConfig, dataclass_to_dict, load_toml
from genmodels.data.dataset import DataSpec
from genmodels.errors import CheckpointError, ConfigError
from genmodels.train.checkpoint import check_model, load_checkpoint, load_modules
from genmodels.train.seeds import derive_seed, private_global_rng


class RunDir:
    """The paths of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.toml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.latest = self.checkpoints / "latest.pt"
        self.samples = self.path / "samples"
        self.curves = self.path / "losses.png"

    def checkpoint_at(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:07d}.pt"

    def sample_at(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def remove_stale_temporaries(self) -> None:
        """Delete the half-written temporaries a crash or a kill during a write left behind (in the run
        folder, checkpoints/, samples/ and views/; never a finished file, nor one being written now)."""
        from genmodels.atomic import remove_stale_temporaries

        for folder in (self.path, self.checkpoints, self.samples, self.path / "views"):
            remove_stale_temporaries(folder)

    def write_config(self, config: RunConfig, spec: DataSpec) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        config.save_toml(self.config, extra={"spec": spec.to_dict()})

    def read_config(self) -> tuple[RunConfig, DataSpec]:
        """The run's config and data spec; ConfigError if this is not a run directory."""
        if not self.config.is_file():
            raise ConfigError(f"{self.path}: not a run directory (no config.toml)")
        config, extra = load_toml(self.config)
        if "spec" not in extra:
            raise ConfigError(f"{self.config}: no [spec] table (kind, shape, num_classes of the data)")
        try:
            spec = DataSpec.from_dict(extra["spec"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{self.config}: invalid [spec] table: {e}") from None
        return config, spec


def resolve_device(name: str) -> torch.device:
    """trainer.device -> torch.device ("auto" picks CUDA when available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device is {name!r} but CUDA is not available; use cpu or auto")
    return device


def build_model(config: RunConfig, spec: DataSpec, device: torch.device) -> Any:
    """Construct the family's model; its weight initialisation draws from the `init` stream of the
    run seed (inside a private copy of torch's global RNG, so the caller's RNG is untouched).
    A model too large for the device is a ConfigError before anything is allocated
    (`genmodels.train.model_size`). config.model becomes the model's own config, with any
    data-dependent defaults resolved."""
    from genmodels.models.registry import get_model
    from genmodels.train.model_size import allocation_refused, check_model_size

    model_cls = get_model(config.model_name)[0]
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

    model: Any
    config: RunConfig
    spec: DataSpec
    step: int
    ema: bool = False           # whether EMA weights were swapped in
    path: Path | None = None    # the checkpoint read


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
    return LoadedRun(model=model, config=config, spec=spec, step=int(ckpt["step"]), ema=used_ema, path=path)
