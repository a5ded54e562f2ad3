"""Run metrics: `metrics.jsonl` (one JSON object per logged step), a loss-curve PNG, and
TensorBoard event files when the `tensorboard` package is installed.

metrics.jsonl is append-only; it is read by `genmodels.run.metrics_file.read_metrics` (importable
from here too), which also describes its event records."""

from __future__ import annotations

import json
import math
from pathlib import Path

from genmodels.atomic import LineAppender, write_text
from genmodels.run.layout import CURVES, METRICS, TENSORBOARD
from genmodels.run.metrics_file import NOT_SERIES, read_metrics
from genmodels.viz import save_curves

__all__ = ["MetricsLogger", "NOT_SERIES", "read_metrics"]


def _json_value(v: float) -> float | str:
    """JSON has no NaN/inf: write them as strings."""
    return v if math.isfinite(v) else str(v)


class MetricsLogger:
    """Appends records to `metrics.jsonl`, keeps the series for the loss curve, mirrors to TensorBoard."""

    def __init__(self, run_dir: str | Path, *, resume_step: int | None = None, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS
        if resume_step is None:
            records = []
        else:  # drop what was logged after the checkpoint we resume from
            records = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
        self._rewrite(records)
        self.series: dict[str, list[tuple[int, float]]] = {}
        for r in records:
            self._remember(r)
        self.file = LineAppender(self.path)
        self.writer = self._tensorboard(resume_step) if tensorboard else None

    def _rewrite(self, records: list[dict]) -> None:
        write_text(self.path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in records))

    def _tensorboard(self, resume_step: int | None):
        try:
            from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard is optional and slow
        except ImportError:  # tensorboard not installed: the JSON log is the record
            return None
        return SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD), purge_step=resume_step)

    def _remember(self, record: dict) -> None:
        for k, v in record.items():
            if k not in NOT_SERIES and isinstance(v, (int, float)):
                self.series.setdefault(k, []).append((record["step"], float(v)))

    def log(self, step: int, values: dict[str, float], **extra) -> None:
        """Write one record {step, **extra, **values} and flush it."""
        record = {"step": step, **extra, **{k: _json_value(float(v)) for k, v in values.items()}}
        self.file.append(json.dumps(record, allow_nan=False))
        self._remember(record)
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, float(v), step)

    def event(self, step: int, event: str, **details: str) -> None:
        """Write one event record {step, event, **details} (strings, so no curve plots them)."""
        self.file.append(json.dumps({"step": step, "event": event, **details}, allow_nan=False))

    def save_curves(self, path: str | Path | None = None) -> Path | None:
        """Plot every logged series against the step (`losses.png`); None if nothing was logged."""

        if not self.series:
            return None
        return save_curves(self.series, path or self.run_dir / CURVES, title=self.run_dir.name)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
