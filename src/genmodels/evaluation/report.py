"""What an evaluation gives back: one row per metric, beside its real-data floor (`EvalReport`),
printed as a table (`format_table`) or as JSON (`to_dict`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from genmodels.sampling.loop import SamplingStats


@dataclass
class MetricRow:
    """One line of the table: value (+- std) for the model and the floor (None when not defined)."""

    name: str
    value: float
    std: float | None = None
    floor: float | None = None
    floor_std: float | None = None


@dataclass
class EvalReport:
    title: str
    dataset: str
    extractor: str
    n_samples: int
    n_reference: int
    n_floor: int
    rows: list[MetricRow] = field(default_factory=list)
    floor_only: bool = False
    notes: list[str] = field(default_factory=list)
    sampling: SamplingStats | None = None   # how the model's samples were drawn (None: no model sampled)

    def to_dict(self) -> dict[str, Any]:
        def clean(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

        return {
            "title": self.title, "dataset": self.dataset, "extractor": self.extractor,
            "n_samples": self.n_samples, "n_reference": self.n_reference, "n_floor": self.n_floor,
            "metrics": {r.name: {"value": clean(r.value), "std": clean(r.std), "real_floor": clean(r.floor),
                                 "real_floor_std": clean(r.floor_std)} for r in self.rows},
            "notes": list(self.notes),
            **({"sampling": {k: clean(v) for k, v in self.sampling.to_dict().items()}} if self.sampling else {}),
        }

    def format_table(self) -> str:
        def fmt(v, s):
            if v is None:
                return "-"
            return f"{v:.4g}" + (f" ± {s:.2g}" if s is not None else "")

        head = ("metric", "real floor") if self.floor_only else ("metric", "model", "real floor")
        lines = [[r.name, fmt(r.floor, r.floor_std)] if self.floor_only
                 else [r.name, fmt(r.value, r.std), fmt(r.floor, r.floor_std)] for r in self.rows]
        widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
        out = [self.title] if self.title else []
        sizes = [f"{self.n_samples} samples"] if not self.floor_only else []
        sizes += [f"reference: {self.n_reference} test examples", f"floor: {self.n_floor} training examples"]
        out.append(f"{'; '.join(sizes)}; features: {self.extractor}")
        out += ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), "  ".join("-" * w for w in widths)]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        if self.sampling is not None:
            out.append(f"sampling: {self.sampling.summary()}")
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)
