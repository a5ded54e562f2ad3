"""Helpers for declaring typed dataclass config fields with help text and checking them.

Every config field is declared with `param(default, "help text")` so that the CLI can build
`--flag`s with documented defaults from the dataclass alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from genmodels.errors import ConfigError, choice_error


def param(default: Any, help: str, *, choices: Iterable[str] | None = None):
    """A dataclass field with a default, a one-line help and optional valid string choices."""
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_choices(cfg: Any, section: str = "") -> None:
    """Raise ConfigError for any field whose value is not among its declared choices."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices is not None:
            value = getattr(cfg, f.name)
            if value not in choices:
                raise choice_error(f"{section + '.' if section else ''}{f.name}", value, choices)


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)
