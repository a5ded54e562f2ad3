"""A zoo entry's card and where entries are: the folder `models/NAME/` of the package (or of another
zoo root) holding `card.json` (what the entry is and how it was made, CARD_KEYS) beside its weights.

A zoo *root* is a folder of entries. Every function takes `root=None`, meaning the package's own
`models/` folder; another root (`genmodels zoo export --dest DIR`, `--zoo-root DIR`) is always
passed explicitly, never held in a global setting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genmodels.atomic import write_text
from genmodels.config import RunConfig, checked_sample_table, upgrade_saved_model_table
from genmodels.config_fields import check_record, require
from genmodels.data.dataset import DataSpec
from genmodels.errors import CheckpointError, ConfigError, choice_error

WEIGHTS = "weights.safetensors"
CARD = "card.json"
CARD_FORMAT = "genmodels-zoo-card"
CARD_VERSION = 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
RESERVED = ("export",)          # `genmodels zoo export ...` is the export command
CARD_KEYS = ("name", "family", "data", "step", "params", "dtype", "ema", "sha256", "size_bytes", "train_cpu_minutes",
             "recipe", "commands", "metrics", "note", "config")
DTYPES = ("fp32", "bf16", "fp16")   # the dtypes an entry's weights are stored in (`genmodels.zoo.weights`)
MetricRecord = dict[str, float | str | None]   # {value, std, n_samples, dataset, extractor, real_floor, ...}


@dataclass
class CardFields:
    """The fields of a card.json and their types, read by `config_fields.check_record` (types,
    finite numbers) and `validate` (ranges): every card read or written is checked against them."""

    name: str
    family: str
    data: str
    step: int
    params: int
    dtype: str
    ema: bool
    sha256: str
    size_bytes: int
    train_cpu_minutes: float | None
    recipe: str | None
    commands: dict[str, str]
    metrics: dict[str, MetricRecord | float]
    note: str | None
    config: dict[str, Any]
    networks: list[str] | None = None
    sample_options: dict[str, Any] | None = field(default_factory=dict)

    def validate(self) -> None:
        require(NAME_PATTERN.fullmatch(self.name) is not None, f"name {self.name!r} is not an entry name")
        for key in ("step", "params", "size_bytes"):
            require(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}")
        require(self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        require(re.fullmatch(r"[0-9a-f]{64}", self.sha256) is not None,
                f"sha256 must be 64 hexadecimal digits, got {self.sha256!r}")
        require(self.train_cpu_minutes is None or self.train_cpu_minutes >= 0,
                f"train_cpu_minutes must be >= 0, got {self.train_cpu_minutes}")


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
    """The names of the entries (folders holding a card.json), sorted; [] for an empty zoo.
    ConfigError for a zoo root that is not a folder (a mistyped --zoo-root is not an empty zoo)."""
    folder = zoo_root(root)
    if not folder.is_dir():
        if root is None:
            return []
        raise ConfigError(f"zoo root {folder}: {'not a folder' if folder.exists() else 'no such folder'}")
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
    check_card(card, path)
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


def card_config(card: dict, source: str = "card") -> tuple[RunConfig, DataSpec]:
    """(RunConfig, DataSpec) of a card's config tables (the tables of the run's config.toml)."""
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


def zoo_config(name: str, root: str | Path | None = None) -> tuple[RunConfig, DataSpec]:
    """(RunConfig, DataSpec) of entry `name`, without reading its weights."""
    path = entry_dir(name, root) / CARD
    return card_config(read_card(path), str(path))


def check_card(card: dict, path: Path) -> None:
    """CheckpointError naming the file and the field unless `card` has the fields of `CardFields` with
    their types and ranges, and sample options its family's sampling accepts (the entry's defaults,
    blamed on the card rather than on the command line that samples it)."""
    try:
        check_record(card, CardFields, str(path))
        if card.get("sample_options"):
            checked_sample_table(card["family"], card["sample_options"], f"{path}: sample_options")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def write_card(path: Path, card: dict) -> None:
    """Write a card.json atomically (a reader finds the old card or the new one, never half of one),
    checked first (`check_card`: no non-finite number is recorded) and as strict JSON."""
    check_card(card, path)
    write_text(path, json.dumps(card, indent=2, allow_nan=False) + "\n")
