"""Making a zoo entry from a run directory: `export_run(RUN_DIR, NAME)` writes its weights and card,
with the `genmodels train` command that reproduces it (`train_command`)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from genmodels.atomic import make_folder, write_bytes
from genmodels.config import RunConfig, dataclass_to_dict
from genmodels.errors import ConfigError, choice_error
from genmodels.models.registry import get_model
from genmodels.recipes import load_recipe
from genmodels.run import LoadedRun, RunDir, load_run
from genmodels.run.metrics_file import training_cpu_minutes
from genmodels.run.sample_options import USER_LAYER, build_sample_options
from genmodels.version import __version__
from genmodels.zoo import weights as W
from genmodels.zoo.card import CARD, CARD_FORMAT, CARD_VERSION, WEIGHTS, check_name, write_card, zoo_root

# which networks an export stores: every network of model.modules(), or model.sampling_modules() only
# (enough to sample and evaluate from samples; a GAN's discriminator is left out; fine-tuning needs "all")
ZooNetworks = Literal["all", "sampling"]
# trainer fields that do not change the weights a run reaches; left out of the derived train command
_NOT_IN_COMMAND = ("threads", "progress", "tensorboard", "report", "log_every", "sample_every", "sample_n",
                   "checkpoint_every", "keep_every")


def export_run(run_dir: str | Path, name: str, dtype: str = "bf16", recipe: str | None = None,
               commands: dict[str, str] | None = None, metrics: dict | None = None, note: str = "",
               dest: str | Path | None = None, overwrite: bool = False,
               sample_options: dict | None = None, networks: ZooNetworks = "all",
               checkpoint: str | Path | None = None) -> Path:
    """Write zoo entry `name` from the run in `run_dir` into `dest` (a zoo root; default the
    package's zoo folder) and return the entry's folder.

    The run is loaded with `load_run(ema=True)`, so the EMA weights are exported where the run kept
    an EMA; the tensors of the networks `networks` names go to weights.safetensors in `dtype` (fp32,
    bf16 or fp16): "all" (every network of model.modules(), what fine-tuning with `train --init`
    needs) or "sampling" (model.sampling_modules(): enough to sample and evaluate from samples, e.g.
    a GAN without its discriminator). card.json records the stored networks ("networks", sorted),
    the run's config tables, step, the parameter count of the stored networks, the file's sha256 and size,
    the training CPU-minutes, `recipe`, the `commands` that made it (a train command is derived
    from the config when none is given), `metrics` and `note`. Both files are written atomically
    (weights first: a reader between the two writes finds a hash mismatch, never a silent mix).
    `sample_options` ({field: value} of the family's sample options, e.g. a 20-step solver for a
    DDPM) over the run's own [sample] table become the entry's defaults for `genmodels sample` /
    `evaluate` (flags override them).
    `checkpoint`: a checkpoint of the run other than its latest, e.g. one `genmodels ema` rebuilt
    (RUN_DIR/checkpoints/posthoc_sigmaS_step_XXXXXXX.pt); the export command on the card names it
    by its file name. An existing entry is replaced only with overwrite=True."""
    _check_export_options(name, dtype, networks, recipe)
    root = zoo_root(dest)
    folder = root / name
    if (folder / CARD).exists() and not overwrite:
        raise ConfigError(f"zoo entry {name!r} already exists in {root}; pass --force (overwrite=True) to replace it")
    loaded = load_run(run_dir, device="cpu", ema=True, checkpoint=checkpoint)
    sample_options = checked_sample_options(loaded.config.model_name,               # the run's [sample] table,
                                            {**loaded.sample_defaults, **(sample_options or {})})  # then flags
    if loaded.spec.latent is not None:
        raise ConfigError(f"{run_dir}: a model of VAE latents needs its VAE run to decode its samples; the zoo holds "
                          f"self-contained models only")
    modules = stored_modules(loaded.model, networks)
    tensors = W.flatten(modules, dtype)
    data = W.encode(tensors, {"name": name, "family": loaded.config.model_name, "dtype": dtype})
    minutes = training_cpu_minutes(RunDir(run_dir).metrics)
    all_commands = {"train": train_command(loaded.config, recipe),
                    "export": _export_command(name, dtype, recipe, networks, checkpoint), **(commands or {})}
    card = _card(loaded, name, dtype, modules, data, minutes, recipe, all_commands, metrics, sample_options, note)
    make_folder(folder)
    write_bytes(folder / WEIGHTS, data)
    write_card(folder / CARD, card)
    return folder


def _card(loaded: LoadedRun, name: str, dtype: str, modules: dict[str, torch.nn.Module], data: bytes,
          minutes: float | None, recipe: str | None, commands: dict[str, str], metrics: dict | None,
          sample_options: dict, note: str) -> dict:
    """The card.json of an entry exported from `loaded` (CARD_KEYS and the format tags); `data`: its
    weights file's bytes, `minutes` the run's training CPU-minutes."""
    tables = loaded.config.to_dict()
    tables.pop("out", None)                                    # the run's folder is the user's, not the model's
    tables["spec"] = loaded.spec.to_dict()
    return {
        "name": name,
        "family": loaded.config.model_name,
        "data": loaded.config.data.name,
        "step": loaded.step,
        "params": sum(p.numel() for m in modules.values() for p in m.parameters()),
        "dtype": dtype,
        "networks": sorted(modules),
        "ema": loaded.ema,
        "sha256": W.sha256_hex(data),
        "size_bytes": len(data),
        "train_cpu_minutes": round(minutes, 3) if minutes is not None else None,
        "recipe": recipe,
        "commands": commands,
        "metrics": dict(metrics or {}),
        "sample_options": sample_options,
        "note": note,
        "config": tables,
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "genmodels_version": __version__,
    }


def _check_export_options(name: str, dtype: str, networks: str, recipe: str | None) -> None:
    """ConfigError for a bad entry name, dtype, networks choice or unknown recipe (listing the choices)."""
    check_name(name)
    W.check_dtype(dtype)
    if networks not in get_args(ZooNetworks):
        raise choice_error("networks", networks, get_args(ZooNetworks))
    if recipe is not None:
        load_recipe(recipe)                                    # ConfigError listing the recipes


def _export_command(name: str, dtype: str, recipe: str | None, networks: str,
                    checkpoint: str | Path | None = None) -> str:
    """The `genmodels zoo export` command that made the entry (RUN_DIR standing for the run)."""
    return shlex.join(["genmodels", "zoo", "export", "RUN_DIR", "--name", name, "--dtype", dtype]
                      + (["--recipe", recipe] if recipe else [])
                      + (["--networks", networks] if networks != "all" else [])
                      + (["--checkpoint", f"RUN_DIR/checkpoints/{Path(checkpoint).name}"] if checkpoint else []))


def stored_modules(model, networks: ZooNetworks) -> dict[str, torch.nn.Module]:
    """{name: network} of the networks an export of `model` stores (see export_run's `networks`);
    ConfigError when the family's sampling_modules() names a network it does not have."""
    modules = model.modules()
    if networks == "all":
        return modules
    names = model.sampling_modules()
    unknown = sorted(set(names) - set(modules))
    if unknown or not names:
        raise ConfigError(f"{type(model).__name__}.sampling_modules() gives {names!r}, which must be a non-empty "
                          f"subset of its networks {sorted(modules)}")
    return {net: modules[net] for net in sorted(names)}


def checked_sample_options(family: str, values: dict) -> dict:
    """`values` ({field: value or its text}) checked against the family's sample options: the typed
    values of the fields given (ConfigError naming an unknown field or a bad value)."""
    options = build_sample_options(get_model(family).options_cls, (values, USER_LAYER))   # unknown keys refused
    return {k: getattr(options, k) for k in values}


def train_command(config, recipe: str | None = None) -> str:
    """A `genmodels train` command that reproduces `config`: the recipe (or the family's defaults)
    plus a `--set` for every value that differs from it."""
    if recipe:
        base = load_recipe(recipe).config
        words = ["genmodels", "train", "--recipe", recipe]
    else:
        base = RunConfig.default(config.model_name)
        words = ["genmodels", "train", config.model_name]
    if config.data.name != base.data.name:
        words += ["--data", config.data.name]
    words += ["--out", "RUN_DIR"]
    if config.seed != base.seed:
        words += ["--seed", str(config.seed)]
    if config.init:
        words += ["--init", config.init]
    for section in ("data", "trainer", "model"):
        before, after = dataclass_to_dict(getattr(base, section)), dataclass_to_dict(getattr(config, section))
        for key, value in after.items():
            if (section, key) == ("data", "name") or (section == "trainer" and key in _NOT_IN_COMMAND):
                continue
            if before.get(key) != value:
                words += ["--set", f"{section}.{key}={_format(value)}"]
    return shlex.join(words)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_format(v) for v in value)
    return str(value)
