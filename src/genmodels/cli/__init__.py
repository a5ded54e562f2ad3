"""The thin command-line front end: each subcommand lives in its own module and calls the library.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func=run` (a function taking the parsed args and returning an exit code). Commands whose
options depend on an argument (`train MODEL`: the family's fields; `sample RUN_DIR`: the run
family's sample options) take `register(subparsers, argv)` with the arguments after the command
name, so that their parser can include those options (a two-stage parse).

`add_config_flags` turns a config dataclass into documented `--field-name` flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from typing import Any

from genmodels.errors import ConfigError, GenmodelsError, TrainingStopped

COMMANDS = ("datasets", "recipes", "train", "sample", "evaluate", "compare", "theory", "report", "runs", "zoo")
ARGV_AWARE = ("train", "sample")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `genmodels` parser; `argv` lets `train`/`sample` add the options of the named model/run."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="genmodels", description="Train, sample and evaluate VAE, GAN, InfoGAN and DDPM models, faithful "
                                      "to the papers. `genmodels COMMAND --help` documents each command.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"genmodels.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"genmodels.cli.{name}":
                continue  # command not built yet
            raise
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
    if origin is typing.Literal:
        return "{" + ",".join(map(str, typing.get_args(tp))) + "}"
    return {int: "INT", float: "FLOAT", str: "STR"}.get(tp, "VALUE")


def add_config_flags(group, cls: type, *, dest_prefix: str, taken: set[str], rename_prefix: str) -> dict[str, str]:
    """Add one documented flag per field of config dataclass `cls` to `group`.

    Field `foo_bar` becomes `--foo-bar` (`--RENAME_PREFIX-foo-bar` when that flag is already
    `taken` by the command), bools become `--flag/--no-flag`, choices come from the field metadata
    and every help line ends with the default. Values stay strings (None when not given) and are
    parsed later by the field types (genmodels.config.coerce). Returns {argparse dest: field name}.
    """
    from genmodels.config import field_types

    types_ = field_types(cls)
    mapping = {}
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if flag in taken:
            flag = f"--{rename_prefix}-{f.name.replace('_', '-')}"
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        dest = f"{dest_prefix}{f.name}"
        help_text = f"{f.metadata.get('help', f.name)} (default: {_format_default(default)})".replace("%", "%%")
        choices = f.metadata.get("choices")
        if types_[f.name] in (bool, bool | None):        # bool | None: unset means "automatic"
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=dest, default=None, choices=choices,
                               metavar=None if choices else _metavar(types_[f.name]), help=help_text)
        mapping[dest] = f.name
    return mapping


def flag_values(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """{field name: raw value} of the flags given on the command line."""
    out = {}
    for dest, name in mapping.items():
        value = getattr(args, dest, None)
        if value is not None:
            out[name] = value
    return out


def require_arg(value: Any, flag: str) -> Any:
    """ConfigError unless a required option was given."""
    if value is None or value == "":
        raise ConfigError(f"{flag} is required")
    return value
