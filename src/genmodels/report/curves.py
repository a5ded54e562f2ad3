"""The loss curves' numbers for the report: every logged series of `metrics.jsonl` (drawn by
`genmodels.viz.curves_png`, the same picture as the trainer's losses.png)."""

from __future__ import annotations

from genmodels.run.metrics_file import NOT_SERIES


def series_of(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """{name: [(step, value), ...]} of every numeric logged value (NaN/inf written as strings kept as such)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for k, v in r.items():
            if k in NOT_SERIES:
                continue
            if isinstance(v, str):
                try:
                    v = float(v)  # "nan", "inf" as written by the logger
                except ValueError:
                    continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(k, []).append((int(r["step"]), float(v)))
    return out
