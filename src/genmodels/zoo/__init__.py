"""The model zoo: trained weights shipped inside the package, usable wherever a run directory is.

Each entry is a folder `models/NAME/` of this package (or of another zoo root, see below):

    weights.safetensors   the networks of model.modules() the card lists (all of them, or only those
                          sampling needs), tensors named NET.PARAM (genmodels.zoo.weights)
    card.json             what the entry is and how it was made (CARD_KEYS below; "networks" lists
                          the stored networks, and a card without it, written before it existed,
                          stores them all)

`zoo:NAME` is accepted by `genmodels sample`, `evaluate`, `compare` and `train --init`
(genmodels.sources), and `genmodels zoo` lists and shows the entries. `export_run` makes an entry
from a run directory.

A zoo *root* is a folder of entries. Every function takes `root=None`, meaning the package's own
`models/` folder; another root (`genmodels zoo export --dest DIR`, `--zoo-root DIR`) is always
passed explicitly, never held in a global setting.

Loading never unpickles: the weights are safetensors, and their sha256 is checked against the
card before they are parsed (CheckpointError naming the file otherwise).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from genmodels.errors import CheckpointError, ConfigError, choice_error

WEIGHTS = "weights.safetensors"
CARD = "card.json"
CARD_FORMAT = "genmodels-zoo-card"
CARD_VERSION = 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
RESERVED = ("export",)          # `genmodels zoo export ...` is the export command
CARD_KEYS = ("name", "family", "data", "step", "params", "dtype", "ema", "sha256", "size_bytes", "train_cpu_minutes",
             "recipe", "commands", "metrics", "note", "config")
# which networks an export stores: every network of model.modules(), or model.sampling_modules() only
# (enough to sample and evaluate from samples; a GAN's discriminator is left out; fine-tuning needs "all")
ZooNetworks = Literal["all", "sampling"]
# trainer fields that do not change the weights a run reaches; left out of the derived train command
_NOT_IN_COMMAND = ("threads", "progress", "tensorboard", "report", "log_every", "sample_every", "sample_n",
                   "checkpoint_every", "keep_every")


# ---------------------------------------------------------------------------------------------
# Where entries are


def default_root() -> Path:
    """The package's own zoo folder (what `zoo:NAME` reads without another root)."""
    return Path(__file__).resolve().parent / "models"


def zoo_root(root: str | Path | None = None) -> Path:
    """`root` as a Path, or the package's zoo folder when it is None."""
    return Path(root) if root is not None else default_root()


def check_name(name: str) -> str:
    """ConfigError unless `name` can name an entry (letters, digits, '.', '_', '-'; not 'export')."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name in RESERVED or ".." in name:
        raise ConfigError(f"zoo entry name {name!r}: use letters, digits, '.', '_' and '-' (starting with a letter "
                          f"or digit, at most 80 characters; not {', '.join(RESERVED)})")
    return name


def zoo_names(root: str | Path | None = None) -> list[str]:
    """The names of the entries (folders holding a card.json), sorted; [] for an empty zoo."""
    folder = zoo_root(root)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and NAME_PATTERN.fullmatch(p.name) and (p / CARD).is_file())


def entry_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder of entry `name`; ConfigError listing the entries when there is none."""
    names = zoo_names(root)
    if name not in names:
        where = f" in {root}" if root is not None else ""
        if not names:
            raise ConfigError(f"unknown zoo entry {name!r}: the zoo{where} is empty (no entries yet; "
                              f"`genmodels zoo export RUN_DIR --name NAME` makes one)")
        error = choice_error("zoo entry", name, names)
        raise ConfigError(f"{error}{' (zoo at ' + str(root) + ')' if root is not None else ''}")
    return zoo_root(root) / name


# ---------------------------------------------------------------------------------------------
# Reading entries


def zoo_card(name: str, root: str | Path | None = None) -> dict:
    """The card of entry `name` (the parsed card.json); CheckpointError naming the file if it is broken."""
    path = entry_dir(name, root) / CARD
    return read_card(path)


def read_card(path: Path) -> dict:
    """A card.json, checked for its format tag and the keys every card has."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the card ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a valid JSON card ({e})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise CheckpointError(f"{path}: not a genmodels zoo card (no format = {CARD_FORMAT!r})")
    if card.get("version") != CARD_VERSION:
        raise CheckpointError(f"{path}: card version {card.get('version')!r}; this genmodels reads version "
                              f"{CARD_VERSION}")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise CheckpointError(f"{path}: the card lacks {', '.join(missing)}")
    if not isinstance(card["config"], dict) or "spec" not in card["config"]:
        raise CheckpointError(f"{path}: the card's config has no spec table")
    networks = card.get("networks")
    if networks is not None and not (isinstance(networks, list) and networks
                                     and all(isinstance(n, str) and n for n in networks)
                                     and len(set(networks)) == len(networks)):
        raise CheckpointError(f"{path}: the card's networks must be a list of distinct network names, "
                              f"got {networks!r}")
    return card


def card_networks(card: dict, path: Path, modules: dict[str, torch.nn.Module]) -> list[str]:
    """The networks of `modules` (the model's) whose weights the entry stores, sorted: the card's
    "networks" (every network when the card has none: it predates the list); CheckpointError naming
    the file when it names a network the model does not have."""
    networks = card.get("networks")
    if networks is None:
        return sorted(modules)
    unknown = sorted(set(networks) - set(modules))
    if unknown:
        raise CheckpointError(f"{path}: the card lists network(s) {', '.join(unknown)}, which the "
                              f"{card.get('family')} model does not have (its networks: {', '.join(sorted(modules))})")
    return sorted(networks)


def card_config(card: dict, source: str = "card") -> tuple[Any, Any]:
    """(RunConfig, DataSpec) of a card's config tables (the tables of the run's config.toml)."""
    from genmodels.config import RunConfig, upgrade_saved_model_table
    from genmodels.data.dataset import DataSpec

    tables = json.loads(json.dumps(card["config"]))        # a private copy
    spec_table = tables.pop("spec")
    model = tables.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        tables["model"], _ = upgrade_saved_model_table(model["name"], model)
    config = RunConfig.from_dict(tables, source)
    try:
        spec = DataSpec.from_dict(spec_table)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{source}: invalid spec table: {e}") from None
    if config.model_name != card.get("family"):
        raise CheckpointError(f"{source}: the card's family {card.get('family')!r} is not its config's model "
                              f"{config.model_name!r}")
    return config, spec


def zoo_config(name: str, root: str | Path | None = None) -> tuple[Any, Any]:
    """(RunConfig, DataSpec) of entry `name`, without reading its weights."""
    path = entry_dir(name, root) / CARD
    return card_config(read_card(path), str(path))


def load_zoo(name: str, device: str | torch.device = "cpu", root: str | Path | None = None):
    """The model of entry `name` in eval mode, as a `LoadedRun` (path: its weights file).

    The model is built from the card's config with `build_model` (as `load_run` does), then the
    weights are read: their sha256 is checked against the card before they are parsed, they
    must be a safetensors file, and the tensors of every network the card lists (`card_networks`)
    must match the model's names and shapes, with none left over (CheckpointError naming the file
    and the network otherwise). Tensors stored in a reduced dtype are cast to the model's. `ema`
    is True when the run's EMA weights were exported. An entry of the sampling networks only
    leaves the others at their fresh initialisation and says so in `networks` (the ones read;
    None when every network was): it samples and evaluates, but cannot start a fine-tuning run."""
    from genmodels.run import LoadedRun, build_model
    from genmodels.zoo import weights as W

    folder = entry_dir(name, root)
    card_path, weights_path = folder / CARD, folder / WEIGHTS
    card = read_card(card_path)
    config, spec = card_config(card, str(card_path))
    data = W.read_verified(weights_path, card["sha256"])       # before anything is parsed
    tensors, _ = W.decode(data, weights_path)
    device = torch.device(device)
    model = build_model(config, spec, device)
    modules = model.modules()
    networks = card_networks(card, card_path, modules)
    W.load_into({net: modules[net] for net in networks}, tensors, weights_path)
    for m in modules.values():
        m.eval()
    return LoadedRun(model=model, config=config, spec=spec, step=int(card["step"]), ema=bool(card["ema"]),
                     path=weights_path, sample_defaults=dict(card.get("sample_options") or {}),
                     networks=None if len(networks) == len(modules) else tuple(networks))


# ---------------------------------------------------------------------------------------------
# Making entries


def export_run(run_dir: str | Path, name: str, dtype: str = "bf16", recipe: str | None = None,
               commands: dict[str, str] | None = None, metrics: dict | None = None, note: str = "",
               dest: str | Path | None = None, overwrite: bool = False,
               sample_options: dict | None = None, networks: ZooNetworks = "all") -> Path:
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
    DDPM) become the entry's defaults for `genmodels sample` / `evaluate` (flags override them).
    An existing entry is replaced only with overwrite=True."""
    from genmodels import __version__
    from genmodels.atomic import make_folder, write_bytes
    from genmodels.run import load_run
    from genmodels.sources import training_cpu_minutes
    from genmodels.zoo import weights as W

    check_name(name)
    W.check_dtype(dtype)
    if networks not in get_args(ZooNetworks):
        raise choice_error("networks", networks, get_args(ZooNetworks))
    if recipe is not None:
        from genmodels.recipes import load_recipe

        load_recipe(recipe)                                    # ConfigError listing the recipes
    root = zoo_root(dest)
    folder = root / name
    if (folder / CARD).exists() and not overwrite:
        raise ConfigError(f"zoo entry {name!r} already exists in {root}; pass --force (overwrite=True) to replace it")
    loaded = load_run(run_dir, device="cpu", ema=True)
    sample_options = checked_sample_options(loaded.config.model_name, sample_options or {})
    if loaded.spec.latent is not None:
        raise ConfigError(f"{run_dir}: a model of VAE latents needs its VAE run to decode its samples; the zoo holds "
                          f"self-contained models only")
    modules = stored_modules(loaded.model, networks)
    tensors = W.flatten(modules, dtype)
    data = W.encode(tensors, {"name": name, "family": loaded.config.model_name, "dtype": dtype})
    tables = loaded.config.to_dict()
    tables.pop("out", None)                                    # the run's folder is the user's, not the model's
    tables["spec"] = loaded.spec.to_dict()
    minutes = training_cpu_minutes(run_dir)
    all_commands = {"train": train_command(loaded.config, recipe),
                    "export": shlex.join(["genmodels", "zoo", "export", "RUN_DIR", "--name", name, "--dtype", dtype]
                                         + (["--recipe", recipe] if recipe else [])
                                         + (["--networks", networks] if networks != "all" else []))}
    all_commands.update(commands or {})
    card = {
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
        "commands": all_commands,
        "metrics": dict(metrics or {}),
        "sample_options": sample_options,
        "note": note,
        "config": tables,
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "genmodels_version": __version__,
    }
    make_folder(folder)
    write_bytes(folder / WEIGHTS, data)
    write_card(folder / CARD, card)
    return folder


def write_card(path: Path, card: dict) -> None:
    """Write a card.json atomically (a reader finds the old card or the new one, never half of one)."""
    from genmodels.atomic import write_text

    write_text(path, json.dumps(card, indent=2) + "\n")


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
    from genmodels.models.registry import get_model
    from genmodels.run.sample_options import USER_LAYER, build_sample_options

    options = build_sample_options(get_model(family)[2], (values, USER_LAYER))   # unknown keys refused
    return {k: getattr(options, k) for k in values}


def train_command(config, recipe: str | None = None) -> str:
    """A `genmodels train` command that reproduces `config`: the recipe (or the family's defaults)
    plus a `--set` for every value that differs from it."""
    from genmodels.config import RunConfig, dataclass_to_dict

    if recipe:
        from genmodels.recipes import load_recipe

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


def read_metrics_file(path: str | Path, entry: str | None = None) -> dict:
    """Metrics for a card from a JSON file: the output of `genmodels evaluate --json` (its
    "metrics" table of {value, std, real_floor, ...}, with the sample count, data set and
    feature extractor added to each), the output of `genmodels compare --json` (the row of
    zoo:`entry`, with its real-data floor), or a plain {name: number} table. ConfigError naming the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such metrics file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable JSON metrics file ({e})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object of metrics")
    if isinstance(doc.get("rows"), list) and "model_metrics" in doc:
        return _compare_row_metrics(path, doc, entry)
    if isinstance(doc.get("metrics"), dict):
        context = {k: doc[k] for k in ("n_samples", "dataset", "extractor") if doc.get(k) is not None}
        out = {}
        for name, record in doc["metrics"].items():
            if isinstance(record, dict):
                out[name] = {**{k: v for k, v in record.items() if v is not None}, **context}
            elif isinstance(record, (int, float)) and not isinstance(record, bool):
                out[name] = {"value": record, **context}
        return out
    bad = [k for k, v in doc.items() if not (isinstance(v, (int, float, dict)) and not isinstance(v, bool))]
    if bad:
        raise ConfigError(f"{path}: metric(s) {bad} are not numbers")
    return {k: (v if isinstance(v, dict) else {"value": v}) for k, v in doc.items()}


def _compare_row_metrics(path: Path, doc: dict, entry: str | None) -> dict:
    """The metrics of zoo:`entry`'s row in a `genmodels compare --json` table: the sample metrics
    with n_samples, the data set, the extractor and the real-data floor beside each; the model
    metrics (likelihoods, code accuracy) with the test examples they were measured on."""
    sources = [r.get("source") for r in doc["rows"] if isinstance(r, dict)]
    row = next((r for r in doc["rows"] if isinstance(r, dict) and entry is not None
                and r.get("source") == f"zoo:{entry}"), None)
    if row is None or not isinstance(row.get("metrics"), dict):
        raise ConfigError(f"{path}: a `genmodels compare` table without a row of zoo:{entry} "
                          f"(its rows: {', '.join(map(str, sources)) or 'none'})")
    model = set(doc.get("model_metrics") or [])
    floor = ((doc.get("floor") or {}).get("metrics")) or {}
    out = {}
    for name, record in row["metrics"].items():
        if not isinstance(record, dict) or record.get("value") is None:
            continue
        kept = {k: v for k, v in record.items() if v is not None}
        if name.split(":")[0] in model:
            kept.update(n_samples=doc.get("n_likelihood"), dataset=doc.get("dataset"))
        else:
            kept.update(n_samples=doc.get("n_samples"), dataset=doc.get("dataset"), extractor=doc.get("extractor"))
            real = floor.get(name) or {}
            if real.get("value") is not None:
                kept["real_floor"] = real["value"]
                if real.get("std") is not None:
                    kept["real_floor_std"] = real["std"]
        out[name] = {k: v for k, v in kept.items() if v is not None}
    return out


def record_metrics(name: str, metrics: dict, commands: dict[str, str] | None = None,
                   root: str | Path | None = None) -> dict:
    """Add measured `metrics` (and the `commands` that measured them) to entry `name`'s card, over
    those it has; the weights and their hash are left as they are. Returns the new card (written
    atomically: `write_card`)."""
    path = entry_dir(name, root) / CARD
    card = read_card(path)
    card["metrics"] = {**(card.get("metrics") or {}), **metrics}
    card["commands"] = {**(card.get("commands") or {}), **(commands or {})}
    write_card(path, card)
    return card


def metrics_summary(card: dict, limit: int = 4) -> str:
    """'fd 12.3, kid 0.0101' from a card's metrics ('-' when none were measured)."""
    items = []
    for name, record in (card.get("metrics") or {}).items():
        value = record.get("value") if isinstance(record, dict) else record
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            items.append(f"{name} {value:.4g}")
    if not items:
        return "-"
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
