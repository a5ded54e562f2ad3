"""Rows of `genmodels compare` kept between runs (`--cache DIR`): a leaderboard that gains a model
measures only that model's row.

A row's numbers depend only on what goes into them: the weights (their SHA-256, not the source's
path or name), the training step and EMA choice, the family's sampling options, every setting of
the comparison, the data set's preparation, the metrics asked for, the precision the machine
samples in, and the versions of genmodels and PyTorch. `row_key` hashes exactly these into the
row's file name, so a row comes back from the cache only when a fresh evaluation would repeat it
(each row's sampling generator is seeded by the comparison's seed, whatever the other rows).
The real-data floor is kept the same way, keyed by the data set and the settings. A cached file
that cannot be read, or whose stored key parts differ from the ones asked for, is measured anew
and written over; the cache is never the only copy of anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from genmodels.atomic import make_folder, write_text
from genmodels.version import __version__

FORMAT = 2   # 2: payloads keep the evaluation's order of metrics (1 sorted them, and the columns with them)
IGNORED_SETTINGS = ("progress",)   # changes no number


def weights_digest(model) -> str:
    """SHA-256 of every tensor of the model's networks (name, dtype, shape and bytes), in name order."""
    h = hashlib.sha256()
    for net_name, module in sorted(model.modules().items()):
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{net_name}.{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())   # 0-dim buffers too (BatchNorm counts)
    return h.hexdigest()


def settings_parts(cfg) -> dict[str, Any]:
    """The comparison's settings that change a number."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in IGNORED_SETTINGS}


def row_key(parts: dict[str, Any]) -> str:
    """The file stem of a row: a hash of its key parts (with the versions that produced it)."""

    full = {**parts, "format": FORMAT, "genmodels": __version__, "torch": torch.__version__}
    text = json.dumps(full, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _as_stored(parts: dict[str, Any]) -> Any:
    """The key parts as a row file holds them (JSON types, non-JSON values as text)."""
    return json.loads(json.dumps(parts, sort_keys=True, default=str))


class RowCache:
    """A folder of JSON rows, one per key (`row_key`); `folder=None` keeps nothing."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder is not None else None
        self.hits = 0
        if self.folder is not None:
            make_folder(self.folder)

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{key}.json"

    def get(self, parts: dict[str, Any]) -> dict[str, Any] | None:
        """The stored payload of the row with these key parts, or None (nothing stored, or a file that
        does not read back as one: reported on stderr, then measured anew)."""
        if self.folder is None:
            return None
        path = self._path(row_key(parts))
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text())
            if stored.get("parts") != _as_stored(parts):
                raise ValueError("its key parts differ from the row's")
            payload = stored["payload"]
            if not isinstance(payload, dict):
                raise ValueError("no payload")
        except (OSError, ValueError, KeyError, AttributeError) as e:
            print(f"genmodels compare: cached row {path} is unusable ({e}); measuring it again", file=sys.stderr)
            return None
        self.hits += 1
        return payload

    def put(self, parts: dict[str, Any], payload: dict[str, Any]) -> None:
        if self.folder is None:
            return
        record = {"parts": _as_stored(parts), "payload": payload}
        write_text(self._path(row_key(parts)), json.dumps(record, indent=1))   # unsorted: the columns follow it
