"""Reading RUN_DIR/metrics.jsonl: one JSON object per logged step, appended by
`genmodels.training.logging.MetricsLogger`.

A record with an "event" key marks something that happened at its step rather than logged
values: {"step": 40, "event": "stopped", "signal": "SIGTERM"} or
{"step": 40, "event": "resumed with changes", "changes": "seed: 11 -> 12"}.
"""

from __future__ import annotations

import json
from pathlib import Path

# keys of a record that are bookkeeping, not logged series (no curve is drawn for them)
NOT_SERIES = ("step", "epoch", "time", "cpu_time")


def read_metrics(path: str | Path) -> list[dict]:
    """The logged records, skipping a torn last line left by a crash."""
    records: list[dict] = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def training_cpu_minutes(path: str | Path) -> float | None:
    """CPU-minutes of training that the metrics file at `path` records; None when there is none.

    `cpu_time` counts from the start of each training process, so a resumed run's total is the sum
    of each segment's last value (a segment ends where the value falls)."""
    path = Path(path)
    if not path.is_file():
        return None
    total, last = 0.0, None
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:       # a blank or torn line
                continue
            value = record.get("cpu_time") if isinstance(record, dict) else None
            if value is None:
                continue
            if last is not None and value < last:   # a resumed process started counting again
                total += last
            last = float(value)
    return None if last is None else (total + last) / 60.0
