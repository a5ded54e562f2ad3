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
