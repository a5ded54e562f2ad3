"""Loading a zoo entry: `load_zoo(NAME)` -> LoadedRun, as `load_run` does for a run directory.

Loading never unpickles: the weights are safetensors, and their sha256 is checked against the
card before they are parsed (CheckpointError naming the file otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.config import RunConfig
from genmodels.data.dataset import DataSpec
from genmodels.run import LoadedRun, build_model
from genmodels.zoo import weights as W
from genmodels.zoo.card import CARD, WEIGHTS, card_config, card_networks, entry_dir, read_card


@dataclass(frozen=True)
class ZooEntry:
    """An entry's card as read and parsed once (`read_entry`): its folder, the card, and the run
    config and data spec of the card's config tables. `load_zoo(..., entry=)` loads from it without
    reading the card again."""

    name: str
    folder: Path
    card: dict
    config: RunConfig
    spec: DataSpec


def read_entry(name: str, root: str | Path | None = None) -> ZooEntry:
    """The card of entry `name`, read and parsed (ConfigError for an unknown entry, CheckpointError
    naming the file for a broken card); no weights are read."""
    folder = entry_dir(name, root)
    card_path = folder / CARD
    card = read_card(card_path)
    config, spec = card_config(card, str(card_path))
    return ZooEntry(name=name, folder=folder, card=card, config=config, spec=spec)


def load_zoo(name: str, device: str | torch.device = "cpu", root: str | Path | None = None, *,
             entry: ZooEntry | None = None) -> LoadedRun:
    """The model of entry `name` in eval mode, as a `LoadedRun` (path: its weights file).

    The model is built from the card's config with `build_model` (as `load_run` does), then the
    weights are read: their sha256 is checked against the card before they are parsed, they
    must be a safetensors file, and the tensors of every network the card lists (`card_networks`)
    must match the model's names and shapes, with none left over (CheckpointError naming the file
    and the network otherwise). Tensors stored in a reduced dtype are cast to the model's. `ema`
    is True when the run's EMA weights were exported. An entry of the sampling networks only
    leaves the others at their fresh initialisation and says so in `networks` (the ones read;
    None when every network was): it samples and evaluates, but cannot start a fine-tuning run.
    `entry`: the card as `read_entry(name, root)` read it already (None: read it here)."""
    entry = entry if entry is not None else read_entry(name, root)
    card, config, spec = entry.card, entry.config, entry.spec
    card_path, weights_path = entry.folder / CARD, entry.folder / WEIGHTS
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
