"""Reading RUN_DIR/metrics.jsonl: one JSON object per logged step, appended by
`genmodels.training.logging.MetricsLogger`.

A record with an "event" key marks something that happened at its step rather than logged
values: {"step": 40, "event": "stopped", "signal": "SIGTERM"} or
{"step": 40, "event": "resumed with changes", "changes": "seed: 11 -> 12"}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TypeGuard

# keys of a record that are bookkeeping, not logged series (no curve is drawn for them)
NOT_SERIES = ("step", "epoch", "time", "cpu_time")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seconds(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def read_metrics(path: str | Path) -> list[dict]:
    """The logged records, skipping a torn last line left by a crash and any line that is not a
    record (a JSON object whose "step" is a non-negative integer): a damaged line is not a record."""
    records: list[dict] = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(record, dict) and _is_count(record.get("step")):
            records.append(record)
    return records


def training_cpu_minutes(path: str | Path) -> float | None:
    """CPU-minutes of training that the metrics file at `path` records; None when there is none.

    `cpu_time` counts from the start of each training process, so a resumed run's total is the sum
    of each segment's last value (a segment ends where the value falls). A value that is not a
    finite number of seconds >= 0 is not a record of the time, and is skipped."""
    path = Path(path)
    if not path.is_file():
        return None
    total, last = 0.0, None
    for record in read_metrics(path):
        value = record.get("cpu_time")
        if not _is_seconds(value):
            continue
        if last is not None and value < last:   # a resumed process started counting again
            total += last
        last = float(value)
    return None if last is None else (total + last) / 60.0
