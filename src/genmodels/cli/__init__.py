"""The thin command-line front end: each subcommand lives in its own module and calls the library.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func=run` (a function taking the parsed args and returning an exit code). Commands whose
options depend on an argument (`train MODEL`: the family's fields; `sample RUN_DIR` and `evaluate
SOURCE`: the run family's sample options, `cli/sample_flags.py`) take `register(subparsers, argv)`
with the arguments after the command name, so that their parser can include those options (a
two-stage parse).

`add_config_flags` turns a config dataclass into documented `--field-name` flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import typing
from collections.abc import Iterable
from typing import Any

from genmodels.config_fields import field_choices, field_types
from genmodels.errors import ConfigError, GenmodelsError, RankFailed, TrainingStopped

COMMANDS = ("datasets", "recipes", "train", "sample", "evaluate", "compare", "ema", "theory", "report", "runs", "zoo")
ARGV_AWARE = ("train", "sample", "evaluate")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `genmodels` parser; `argv` lets `train`/`sample` add the options of the named model/run."""

    parser = argparse.ArgumentParser(
        prog="genmodels", description="Train, sample and evaluate VAE, GAN, InfoGAN and DDPM models, faithful "
                                      "to the papers. `genmodels COMMAND --help` documents each command.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"genmodels.cli.{name}")
        if name in ARGV_AWARE:
            module.register(sub, argv[1:] if argv and argv[0] == name else None)
        else:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else ""
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except TrainingStopped as e:  # a clean stop on SIGTERM/SIGINT, checkpoint written: 128 + signal number
        print(f"genmodels {command}: {e}", file=sys.stderr)
        return e.exit_code
    except GenmodelsError as e:
        if not (isinstance(e, RankFailed) and e.quiet):   # a failed rank: rank 0 says so, once
            print(f"genmodels {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------------
# Flags from config dataclasses


def help_requested(argv: list[str] | None) -> bool:
    return bool(argv) and any(a in ("-h", "--help") for a in argv)


def _format_default(value: Any) -> str:
    if value is None:
        return "automatic"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if value == "":
        return '""'
    return str(value)


def _metavar(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "LIST"
    return {int: "INT", float: "FLOAT", str: "STR"}.get(tp, "VALUE")


def config_flag(name: str, taken: Iterable[str] = (), rename_prefix: str = "") -> str:
    """The flag of config field `name`: `foo_bar` -> `--foo-bar`, or `--RENAME_PREFIX-foo-bar`
    when the command already has (`taken`) a `--foo-bar` of its own."""
    flag = "--" + name.replace("_", "-")
    return f"--{rename_prefix}-{name.replace('_', '-')}" if flag in taken else flag


def _is_switch(tp: Any) -> bool:
    """Whether a field of type `tp` gets `--flag/--no-flag` (bool | None: unset means "automatic")."""
    return tp in (bool, bool | None)


def config_flags(cls: type, taken: Iterable[str] = (),
                 rename_prefix: str = "") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the flags that take a value, the --flag/--no-flag switches) `add_config_flags` gives `cls`."""

    values, switches = [], []
    for name, tp in field_types(cls).items():
        flag = config_flag(name, taken, rename_prefix)
        if _is_switch(tp):
            switches += [flag, "--no-" + flag[2:]]
        else:
            values.append(flag)
    return tuple(values), tuple(switches)


def add_config_flags(group, cls: type, *, dest_prefix: str, taken: Iterable[str], rename_prefix: str,
                     fields: Iterable[str] | None = None, flags: dict[str, str] | None = None) -> dict[str, str]:
    """Add one documented flag per field of config dataclass `cls` (or of the named `fields`) to `group`.

    Field `foo_bar` becomes `config_flag(...)` (or `flags[field]`), bools become `--flag/--no-flag`,
    choices come from the field's `Literal` annotation (genmodels.config_fields.field_choices), the
    help from its `param` and every help line ends with its default. Values stay strings (None
    when not given) and are parsed later by the field types (genmodels.config.coerce). Returns
    {argparse dest: field name}.
    """

    types_, choices_ = field_types(cls), field_choices(cls)
    wanted = set(types_ if fields is None else fields)
    mapping = {}
    for f in dataclasses.fields(cls):
        if f.name not in wanted:
            continue
        flag = (flags or {}).get(f.name) or config_flag(f.name, taken, rename_prefix)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        dest = f"{dest_prefix}{f.name}"
        help_text = f"{f.metadata.get('help', f.name)} (default: {_format_default(default)})".replace("%", "%%")
        choices = choices_.get(f.name)
        if _is_switch(types_[f.name]):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=dest, default=None, choices=[str(c) for c in choices] if choices else None,
                               metavar=None if choices else f.metadata.get("metavar") or _metavar(types_[f.name]),
                               help=help_text)
        mapping[dest] = f.name
    return mapping


def flag_values(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """{field name: raw value} of the flags given on the command line."""
    out = {}
    for dest, name in mapping.items():
        value = getattr(args, dest)
        if value is not None:
            out[name] = value
    return out


def require_arg(value: Any, flag: str) -> Any:
    """ConfigError unless a required option was given."""
    if value is None or value == "":
        raise ConfigError(f"{flag} is required")
    return value
