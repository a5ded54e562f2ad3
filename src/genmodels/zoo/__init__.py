"""The model zoo: trained weights shipped inside the package, usable wherever a run directory is.

Each entry is a folder `models/NAME/` of this package (or of another zoo root, see below):

    weights.safetensors   the networks of model.modules() the card lists (all of them, or only those
                          sampling needs), tensors named NET.PARAM (genmodels.zoo.weights)
    card.json             what the entry is and how it was made (CARD_KEYS below; "networks" lists
                          the stored networks, and a card without it, written before it existed,
                          stores them all)

`zoo:NAME` is accepted by `genmodels sample`, `evaluate`, `compare` and `train --init`
(genmodels.sources), and `genmodels zoo` lists and shows the entries. `export_run` makes an entry
from a run directory. The parts: `card.py` (where entries are, reading and writing cards),
`load.py` (`load_zoo`), `export.py` (`export_run`), `record.py` (measured metrics on a card) and
`weights.py` (the safetensors file).

A zoo *root* is a folder of entries. Every function takes `root=None`, meaning the package's own
`models/` folder; another root (`genmodels zoo export --dest DIR`, `--zoo-root DIR`) is always
passed explicitly, never held in a global setting.

Loading never unpickles: the weights are safetensors, and their sha256 is checked against the
card before they are parsed (CheckpointError naming the file otherwise).
"""

from genmodels.zoo.card import (
    CARD,
    CARD_FORMAT,
    CARD_KEYS,
    CARD_VERSION,
    NAME_PATTERN,
    RESERVED,
    WEIGHTS,
    card_config,
    card_networks,
    check_name,
    default_root,
    entry_dir,
    read_card,
    write_card,
    zoo_card,
    zoo_config,
    zoo_names,
    zoo_root,
)
from genmodels.zoo.export import ZooNetworks, checked_sample_options, export_run, stored_modules, train_command
from genmodels.zoo.load import load_zoo
from genmodels.zoo.record import metrics_summary, read_metrics_file, record_metrics

__all__ = ["CARD", "CARD_FORMAT", "CARD_KEYS", "CARD_VERSION", "NAME_PATTERN", "RESERVED", "WEIGHTS", "ZooNetworks",
           "card_config", "card_networks", "check_name", "checked_sample_options", "default_root", "entry_dir",
           "export_run", "load_zoo", "metrics_summary", "read_card", "read_metrics_file", "record_metrics",
           "stored_modules", "train_command", "write_card", "zoo_card", "zoo_config", "zoo_names", "zoo_root"]
