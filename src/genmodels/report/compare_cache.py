"""Rows of `genmodels compare` kept between runs (`--cache DIR`): a leaderboard that gains a model
measures only that model's row.

A row's numbers depend only on what goes into them: the weights (their SHA-256, not the source's
path or name), the training step and EMA choice, the sampling options the row is drawn with (the
options instance actually used: the family's defaults, the run's or zoo card's own, then the
user's), every setting of the comparison, the content of the data (a digest of its examples, not
its name or path) and its preparation, the metrics asked for, the precision the machine samples
in, and the versions of genmodels and PyTorch. `row_key` hashes exactly these into the row's file
name, so a row comes back from the cache only when a fresh evaluation would repeat it (each row's
sampling generator is seeded by the comparison's seed, whatever the other rows). The real-data
floor is kept the same way, keyed by the data and the settings.

Reading the cache never raises: a file that cannot be read, whose stored key parts differ from the
ones asked for, or whose payload does not have the payload's fields and types (`FloorPayload`,
`RowPayload`, checked by `config_fields.check_record`) is reported on stderr, measured anew and
written over. A payload holding a non-finite number is not kept (JSON is written strictly); the
cache is never the only copy of anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genmodels.atomic import make_folder, write_text
from genmodels.config_fields import check_record
from genmodels.version import __version__

FORMAT = 2   # 2: payloads keep the evaluation's order of metrics (1 sorted them, and the columns with them)
# progress changes no number; metrics, the table's request, is keyed resolved instead: each key holds the
# sample metrics measured and a row's key its own model metrics, so a metric added for one family's rows
# (code-accuracy for an InfoGAN) leaves the other rows' keys as they were
IGNORED_SETTINGS = ("progress", "metrics")


@dataclass
class MetricValue:
    """One figure of a row: its value and standard deviation (None where there is none)."""

    value: float | None
    std: float | None = None


@dataclass
class FloorPayload:
    """What the cache keeps of the real-data floor."""

    metrics: dict[str, MetricValue]
    extractor: str
    n_reference: int
    n_floor: int
    notes: list[str] = field(default_factory=list)


@dataclass
class RowPayload:
    """What the cache keeps of one source's row."""

    metrics: dict[str, MetricValue]
    notes: list[str] = field(default_factory=list)
    n_likelihood: int = 0


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

    def get(self, parts: dict[str, Any], payload_cls: type = RowPayload) -> dict[str, Any] | None:
        """The stored payload of the row with these key parts, or None: nothing stored, or a file that
        does not read back as a row whose payload has the fields and types of `payload_cls` (reported
        on stderr, then measured anew). Never raises."""
        if self.folder is None:
            return None
        path = self._path(row_key(parts))
        try:
            if not path.exists():
                return None
            stored = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(stored, dict) or stored.get("parts") != _as_stored(parts):
                raise ValueError("its key parts differ from the row's")
            check_record(stored.get("payload"), payload_cls, "payload")
            payload = stored["payload"]
        except (OSError, ValueError, TypeError, RecursionError) as e:   # ConfigError is a ValueError
            print(f"genmodels compare: cached row {path} is unusable ({e}); measuring it again", file=sys.stderr)
            return None
        self.hits += 1
        return payload

    def put(self, parts: dict[str, Any], payload: dict[str, Any]) -> None:
        """Keep a row (written atomically, strict JSON); a payload holding a non-finite number is not
        kept, so that it is measured again rather than recorded as NaN."""
        if self.folder is None:
            return
        record = {"parts": _as_stored(parts), "payload": payload}
        try:
            text = json.dumps(record, indent=1, allow_nan=False)   # unsorted: the columns follow it
        except ValueError:
            print(f"genmodels compare: a row holds a non-finite number; not kept in {self.folder}", file=sys.stderr)
            return
        write_text(self._path(row_key(parts)), text)
