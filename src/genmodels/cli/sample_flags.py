"""The sampling flags of `genmodels sample` and `genmodels evaluate`: one parser for both commands.

When the command line names a SOURCE (a run directory or zoo:NAME), the fields of its family's
sample-options dataclass become typed flags (`--sampler dpm++ --steps 20`, by `add_config_flags`;
a field whose flag the command already has gets `--sample-` in front). `--sample-option
KEY=VALUE` (repeatable) is their text alias, kept for scripts and docs; a typed flag beats the
alias for the same field. `given(args)` collects both as {field: text} (checked against the
family's dataclass before any weights are read), and
`genmodels.run.sample_options.run_sample_options(loaded, given)` builds the options instance over
the zoo entry's defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from genmodels.errors import ConfigError, GenmodelsError
from genmodels.run.sample_options import ALIAS, USER_LAYER, build_sample_options, parse_pairs


def option_strings(parser: argparse.ArgumentParser, *, with_value: bool = False) -> set[str]:
    """The option strings `parser` has so far (only those that take a value, with_value)."""
    return {s for a in parser._actions for s in a.option_strings if not with_value or a.nargs != 0}


def source_from_argv(argv: list[str], value_options: set[str]) -> str | None:
    """SOURCE among argv: the tokens that are neither options nor the values of `value_options`;
    of those the first that is a zoo:NAME or a folder (a typed sample flag written before SOURCE
    leaves its value among them), else the first."""
    from genmodels.sources import is_zoo

    candidates, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("-"):
            i += 2 if token in value_options else 1
            continue
        candidates.append(token)
        i += 1
    return next((t for t in candidates if is_zoo(t) or Path(t).is_dir()), candidates[0] if candidates else None)


def zoo_root_from_argv(argv: list[str]) -> str | None:
    """The value of --zoo-root DIR (or --zoo-root=DIR) in argv, else None."""
    for i, token in enumerate(argv):
        if token == "--zoo-root" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--zoo-root="):
            return token.partition("=")[2]
    return None


def options_class(source: str, zoo_root: str | None = None) -> type:
    """The sample-options dataclass of the family that trained `source` (a run directory or zoo:NAME)."""
    from genmodels.models.registry import get_model
    from genmodels.sources import source_config

    config, _ = source_config(source, zoo_root=zoo_root)
    try:
        return get_model(config.model_name)[2]
    except ImportError as e:
        raise ConfigError(f"model {config.model_name!r} cannot be loaded: {e}") from None


def add_sample_flags(parser: argparse.ArgumentParser, argv: list[str] | None, taken: Iterable[str] = ()) -> None:
    """Add `--sample-option KEY=VALUE` and, when argv names a SOURCE, its family's typed flags (after
    the command's own options, which must all be added by then; a field named like one of them, or
    like one of `taken`, gets `--sample-` in front). A SOURCE that cannot be read is a
    GenmodelsError then, unless --help is asked."""
    parser.add_argument(ALIAS, action="append", default=[], metavar="KEY=VALUE",
                        help="a sampling option of the model as text, e.g. sampler=dpm++ (repeatable; the same as "
                             "the typed flags listed by `--help` with a SOURCE; default: none)")
    mapping: dict[str, str] = {}
    cls = None
    source = source_from_argv(argv, option_strings(parser, with_value=True)) if argv else None
    if source is not None:
        from genmodels.cli import add_config_flags, help_requested

        try:
            cls = options_class(source, zoo_root_from_argv(argv))
        except GenmodelsError:
            if not help_requested(argv):
                raise
        else:
            group = parser.add_argument_group("sampling options of this source's model")
            mapping = add_config_flags(group, cls, dest_prefix="sample__", taken=option_strings(parser) | set(taken),
                                       rename_prefix="sample")
    else:
        parser.epilog = ("Each model has its own sampling options: name a SOURCE before --help to list them "
                         f"as flags, or give them as {ALIAS} KEY=VALUE.")
    parser.set_defaults(sample_flags=mapping, sample_options_cls=cls)


def given(args: argparse.Namespace) -> dict[str, str]:
    """{field: text} of the sampling options on the command line, checked against the family's
    options (before any model is loaded): the KEY=VALUE alias, then the typed flags."""
    from genmodels.cli import flag_values

    values = {**parse_pairs(args.sample_option), **flag_values(args, args.sample_flags)}
    if args.sample_options_cls is not None:
        build_sample_options(args.sample_options_cls, (values, USER_LAYER))
    return values
