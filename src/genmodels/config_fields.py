"""Typed dataclass config fields: declaring them, parsing values into them, checking them.

Every config field is declared with `param(default, "help text")` so that the CLI can build
`--flag`s with documented defaults from the dataclass alone. A mode is annotated with a `Literal`
alias, defined once by the module that owns the concept (`Prediction` in diffusion/losses.py):

    prediction: PredictionSetting = param("auto", "what the network predicts: ...")

and its valid values are read off the annotation (`field_choices`), for the checks and for the
command line alike. `param(..., choices=...)` on a `str` field remains for configs written before.

Values from TOML or the command line are parsed by the field's annotated type (`coerce`,
`update_dataclass`); `dataclass_to_dict` goes back to TOML-ready data. The limits every value must
respect, whatever its field, are read off the fields too (`check_numbers`): a float must be finite
(an infinite learning rate or a NaN sampler option is refused before anything starts, not found by
the divergence guard or in all-NaN samples) and an integer must fit in 64 bits (what torch can
hold); the ranges specific to a field are each config's own `validate()`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal

from genmodels.errors import ConfigError, choice_error

INT64_MAX = 2 ** 63 - 1
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# ---------------------------------------------------------------------------------------------
# Declaring fields and reading their modes

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


# ---------------------------------------------------------------------------------------------
# Limits of every value


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


# ---------------------------------------------------------------------------------------------
# Records read from files (zoo cards, cache rows, metrics): typed by a dataclass, checked strictly


def check_record(values: Any, cls: type, where: str) -> Any:
    """`values` (a JSON object read from a file) as an instance of dataclass `cls`, checked strictly:
    every field without a default is present, each value has its field's annotated type (no text
    for a number, no number for a flag; Literal choices; list[X] and dict[str, X] item by item;
    finite floats and 64-bit integers), then `cls.validate()` when it has one. ConfigError naming
    `where` (the file) and the field otherwise. Keys that are not fields are left alone."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(values).__name__}")
    types_ = field_types(cls)
    kept = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: {f.name} is missing")
            continue
        check_type(values[f.name], types_[f.name], f"{where}: {f.name}")
        kept[f.name] = values[f.name]
    record = cls(**kept)
    if hasattr(record, "validate"):
        try:
            record.validate()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return record


def _type_name(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def check_type(value: Any, tp: Any, where: str) -> None:
    """ConfigError naming `where` unless `value` (as JSON gives it) is of annotated type `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                if value is None:
                    return
                continue
            try:
                return check_type(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if not any(value == a and type(value) is type(a) for a in args):
            raise ConfigError(f"{where}: invalid value {value!r}; valid choices: {', '.join(map(str, args))}")
        return
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        for i, v in enumerate(value):
            check_type(v, item, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: key {k!r} is not a string")
            check_type(v, item, f"{where}.{k}")
        return
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        check_record(value, tp, where)
        return
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}.get(tp)
    if ok is None:
        return
    if not ok(value):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    _check_value(value, where)      # finite floats, 64-bit integers


# ---------------------------------------------------------------------------------------------
# Dataclass <-> plain data, with values parsed by their annotated types


def dataclass_to_dict(obj: Any) -> dict:
    """Fields of a config dataclass as TOML-ready values (tuples become lists, None is dropped)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def update_dataclass(obj: Any, values: dict, where: str) -> None:
    """Set fields of `obj` from `values`, parsing each by its type; unknown keys list the valid ones."""
    types_ = field_types(obj)
    for key, value in values.items():
        if key not in types_:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(types_))}")
        setattr(obj, key, coerce(value, _read_as(types_[key]), f"{where}.{key}"))


def _read_as(tp: Any) -> Any:
    """The type a value for a field annotated `tp` is parsed as: a mode (a Literal of strings) as a
    string, whose choice `validate()` checks (check_choices: one message, listing the choices)."""
    choices = choices_of(tp)
    if choices is None or not all(isinstance(c, str) for c in choices):
        return tp
    return str | None if type(None) in typing.get_args(tp) else str


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Parse `value` (from TOML or a command-line string) as type `tp`; ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(tp), where)
    if origin is Literal:
        return _coerce_literal(value, typing.get_args(tp), where)
    if isinstance(tp, type) and tp in _SCALARS:
        return _SCALARS[tp](value, where)
    if origin in (list, tuple):
        return _coerce_sequence(value, origin, typing.get_args(tp), where)
    return value


def _coerce_union(value: Any, args: tuple, where: str) -> Any:
    """None for "none"/"null" where the union allows it, else the first member type that parses."""
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if type(None) in args:
            return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(value, arg, where)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")


def _coerce_literal(value: Any, args: tuple, where: str) -> Any:
    for choice in args:
        if value == choice or (isinstance(value, str) and str(choice) == value):
            return choice
    raise ConfigError(f"{where}: invalid value {value!r}; valid choices: {', '.join(map(str, args))}")


def _coerce_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _coerce_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        number = float(value) if isinstance(value, (float, str)) else None
    except ValueError:
        number = None
    if number is not None and number.is_integer():
        return int(number)
    raise ConfigError(f"{where}: expected an integer, got {value!r}")


def _coerce_float(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return number


def _coerce_str(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected a string, got {value!r}")


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {bool: _coerce_bool, int: _coerce_int, float: _coerce_float,
                                                  str: _coerce_str}


def _coerce_sequence(value: Any, origin: Any, args: tuple, where: str) -> list | tuple:
    """A list or tuple field: a fixed-length tuple parses each item by its own type, else every
    item by the one item type."""
    items = _split_list(value, where)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis) and args:
        if len(items) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(items, args, strict=True)))
    item_type = args[0] if args else Any
    parsed = [coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(items)]
    return tuple(parsed) if origin is tuple else parsed


def _split_list(value: Any, where: str) -> list:
    """A list from a TOML array or a string such as "1,2,2" or "[1, 2, 2]"."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"{where}: cannot parse list {value!r}") from None
        return [v.strip() for v in text.split(",") if v.strip()]
    raise ConfigError(f"{where}: expected a list, got {value!r}")
