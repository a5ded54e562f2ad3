"""Limits every config value must respect, whatever its field, read off the dataclass fields.

A float must be finite (an infinite learning rate or a NaN sampler option is refused before
anything starts, not found by the divergence guard or in all-NaN samples) and an integer must fit
in 64 bits (what torch can hold). Because the checks walk `dataclasses.fields`, a field added to a
config later is covered too; the ranges specific to a field are each config's own `validate()`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from genmodels.config_fields import check_choices
from genmodels.errors import ConfigError

INT64_MAX = 2 ** 63 - 1


def check_numbers(cfg: Any, section: str = "") -> None:
    """ConfigError naming `section.field` for a non-finite float or an integer beyond 64 bits,
    in any field of dataclass `cfg` (also inside list and tuple fields)."""
    for f in dataclasses.fields(cfg):
        _check_value(getattr(cfg, f.name), f"{section}.{f.name}" if section else f.name)


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value}")
    if isinstance(value, int) and abs(value) > INT64_MAX:
        raise ConfigError(f"{where} is out of range: {value} does not fit in a 64-bit integer")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")


def validate_options(cfg: Any, section: str) -> None:
    """Every check of an options dataclass (e.g. a family's sample options): choices, the limits
    above, then its own `validate()` when it has one."""
    check_choices(cfg, section)
    check_numbers(cfg, section)
    if hasattr(cfg, "validate"):
        cfg.validate()
