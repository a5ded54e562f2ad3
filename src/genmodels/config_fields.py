"""Helpers for declaring typed dataclass config fields with help text and checking them.

Every config field is declared with `param(default, "help text")` so that the CLI can build
`--flag`s with documented defaults from the dataclass alone. A mode is annotated with a `Literal`
alias, defined once by the module that owns the concept (`Prediction` in diffusion/losses.py):

    prediction: PredictionSetting = param("auto", "what the network predicts: ...")

and its valid values are read off the annotation (`field_choices`), for the checks and for the
command line alike. `param(..., choices=...)` on a `str` field remains for configs written before.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

from genmodels.errors import ConfigError, choice_error


def param(default: Any, help: str, *, choices: Iterable[str] | None = None, metavar: str | None = None):
    """A dataclass field with a default, a one-line help, optional valid string choices (for a
    field annotated `str`; a `Literal` annotation names its choices itself) and an optional name
    of its value in the command-line help (default: the type's, e.g. INT)."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if metavar is not None:
        meta["metavar"] = metavar
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=functools.partial(type(default), default), metadata=meta)  # a copy
    return dataclasses.field(default=default, metadata=meta)


def choices_of(tp: Any) -> tuple | None:
    """The values of a `Literal` annotation (also of `Literal[...] | None`), None for other types."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if (found := choices_of(arg)) is not None:
                return found
    return None


def field_types(cls_or_obj: Any) -> dict[str, Any]:
    """{field name: resolved annotation} of a dataclass (string annotations evaluated)."""
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def field_choices(cls_or_obj: Any) -> dict[str, tuple]:
    """{field name: valid values} of the mode fields of a dataclass: its `Literal` annotation, or
    the `choices` given to `param` for a field annotated `str`."""
    types_ = field_types(cls_or_obj)
    out = {}
    for f in dataclasses.fields(cls_or_obj):
        found = choices_of(types_[f.name])
        if found is None:
            found = f.metadata.get("choices")
        if found is not None:
            out[f.name] = tuple(found)
    return out


def check_choices(cfg: Any, section: str = "") -> None:
    """Raise ConfigError for any field whose value is not among its choices (`field_choices`)."""
    types_ = field_types(cfg)
    for name, choices in field_choices(cfg).items():
        value = getattr(cfg, name)
        unset = value is None and type(None) in typing.get_args(types_[name])   # `Literal[...] | None`
        if value not in choices and not unset:
            raise choice_error(f"{section + '.' if section else ''}{name}", value, choices)


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)
