"""Loss curves for the report: one small panel per logged series (losses of different scales
drawn on one axis hide each other), from the records of `metrics.jsonl`."""

from __future__ import annotations

import io
import math

from genmodels.train.logging import NOT_SERIES


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


def curves_png(series: dict[str, list[tuple[int, float]]], title: str = "") -> bytes:
    """PNG bytes of a grid of panels, one per series, value against step."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    names = list(series)
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(4 * cols, 2.6 * rows), dpi=90)
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        steps, values = zip(*series[name])
        ax.plot(steps, values, lw=1.2, marker="." if len(steps) < 30 else None)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
