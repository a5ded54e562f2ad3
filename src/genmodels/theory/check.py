"""The result of one numerical check: what was computed, its value, what the claim predicts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    """One line of the `genmodels theory` table.

    claim:     the seed's statement, e.g. "Proposition 2 (eq. 2.4)".
    computed:  what was computed, in words.
    value:     the computed number (a deviation, a divergence, an estimate).
    expected:  what the claim predicts for `value`, in words (e.g. "0", "-log 4", "decreasing").
    tolerance: the largest accepted |value - target| (or bound on value), as used by `passed`.
    passed:    whether the computation agrees with the claim within the tolerance.
    plot:      path of the figure written for this check, or None.
    details:   further numbers (per pair, per beta, per K) for the JSON output and the docs.
    """

    claim: str
    computed: str
    value: float
    expected: str
    tolerance: float
    passed: bool
    plot: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats become strings)."""
        return _jsonable(asdict(self))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
