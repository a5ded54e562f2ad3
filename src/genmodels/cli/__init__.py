"""The thin command-line front end: each subcommand lives in its own module and calls the library.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func=run` (a function taking the parsed args and returning an exit code).
"""

from __future__ import annotations

import argparse
import sys

from genmodels.errors import GenmodelsError

COMMANDS = ("datasets", "train", "sample", "evaluate", "theory", "report", "runs")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="genmodels", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"genmodels.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"genmodels.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GenmodelsError as e:
        print(f"genmodels {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
