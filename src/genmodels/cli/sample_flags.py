"""The sampling flags of `genmodels sample` and `genmodels evaluate`: one parser for both commands.

When the command line names a SOURCE (a run directory or zoo:NAME), the fields of its family's
sample-options dataclass become typed flags (`--sampler dpm++ --steps 20`, by `add_config_flags`;
a field whose flag the command already has gets `--sample-` in front). `--sample-option
KEY=VALUE` (repeatable) is their text alias, kept for scripts and docs; a typed flag beats the
alias for the same field. `read_given(args)` collects both as {field: text} and builds the
family's options instance over the source's defaults (its run's [sample] table or its zoo card,
from the record the flags were read with), once, before any weights are read: the one check of
the options on the command-line path. `genmodels evaluate` also gets the typed flags of the
family's evaluation options (`given_evaluate`). The source's record (`args.source_record`) goes on
to the loader, so that a zoo card is read once per command.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from genmodels.cli import add_config_flags, flag_values, help_requested
from genmodels.errors import ConfigError, GenmodelsError
from genmodels.models.registry import families, get_model
from genmodels.run.sample_options import ALIAS, layered_sample_options, parse_pairs
from genmodels.sources import SourceRecord, is_zoo, read_source


def option_strings(parser: argparse.ArgumentParser, *, with_value: bool = False) -> set[str]:
    """The option strings `parser` has so far (only those that take a value, with_value)."""
    return {s for a in parser._actions for s in a.option_strings if not with_value or a.nargs != 0}


def source_from_argv(argv: list[str], value_options: set[str]) -> str | None:
    """SOURCE among argv: the tokens that are neither options nor the values of `value_options`;
    of those the first that is a zoo:NAME or a folder (a typed sample flag written before SOURCE
    leaves its value among them), else the first."""
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


def model_class(record: SourceRecord) -> type:
    """The model class of the family that trained the source of `record` (a run directory or zoo:NAME,
    as `read_source` read it): its `sample_options` and `evaluate_options` are the dataclasses of the
    typed flags."""
    try:
        return get_model(record.config.model_name).model_cls
    except ImportError as e:
        raise ConfigError(f"model {record.config.model_name!r} cannot be loaded: {e}") from None


def add_sample_flags(parser: argparse.ArgumentParser, argv: list[str] | None, taken: Iterable[str] = (), *,
                     evaluate: bool = False) -> None:
    """Add `--sample-option KEY=VALUE` and, when argv names a SOURCE, its family's typed flags (after
    the command's own options, which must all be added by then; a field named like one of them, or
    like one of `taken`, gets `--sample-` in front); with `evaluate`, also the typed flags of the
    family's evaluation options (`evaluate_options`, e.g. DDPM's --nll-estimates). A SOURCE that
    cannot be read is a GenmodelsError then, unless --help is asked."""
    parser.add_argument(ALIAS, action="append", default=[], metavar="KEY=VALUE",
                        help="a sampling option of the model as text, e.g. sampler=dpm++ (repeatable; the same as "
                             "the typed flags listed by `--help` with a SOURCE; default: none)")
    mapping: dict[str, str] = {}
    evaluate_mapping: dict[str, str] = {}
    cls = evaluate_cls = record = None
    source = source_from_argv(argv, option_strings(parser, with_value=True)) if argv else None
    if source is not None:
        try:
            record = read_source(source, zoo_root=zoo_root_from_argv(argv))
            model_cls = model_class(record)
        except GenmodelsError:
            record = None
            if not help_requested(argv):
                raise
        else:
            cls = model_cls.sample_options
            group = parser.add_argument_group("sampling options of this source's model")
            mapping = add_config_flags(group, cls, dest_prefix="sample__", taken=option_strings(parser) | set(taken),
                                       rename_prefix="sample")
            evaluate_cls = model_cls.evaluate_options
    else:
        parser.epilog = ("Each model has its own sampling options: name a SOURCE before --help to list them "
                         f"as flags, or give them as {ALIAS} KEY=VALUE.")
    if evaluate:
        evaluate_mapping = add_evaluate_flags(parser, set(taken))
    parser.set_defaults(sample_flags=mapping, sample_options_cls=cls, evaluate_flags=evaluate_mapping,
                        evaluate_options_cls=evaluate_cls, source_record=record)


def add_evaluate_flags(parser: argparse.ArgumentParser, taken: set[str]) -> dict[str, str]:
    """The typed flags of every family's evaluation options (`evaluate_options`: DDPM's --nll-estimates,
    --ode-trace, ...), one flag per field name, so that one command line (the one `genmodels compare`
    writes in its caption) serves sources of any family; `given_evaluate` keeps the source's own."""
    mapping: dict[str, str] = {}
    for name, entry in families().items():
        try:
            options_cls = entry.load()[0].evaluate_options
        except (ImportError, GenmodelsError):
            continue                        # a plugin that cannot be loaded offers no flags
        fields = [f for f in dataclasses.fields(options_cls) if f.name not in mapping.values()]
        if not fields:
            continue
        group = parser.add_argument_group(f"evaluation options of {name} sources (their own metrics)")
        mapping.update(add_config_flags(group, options_cls, dest_prefix="evaluate__",
                                        taken=option_strings(parser) | taken, rename_prefix="evaluate",
                                        fields={f.name: f.name for f in fields}))
    return mapping


class Given(NamedTuple):
    """The sampling options of a command line: as text, and the family's instance built from them."""

    values: dict[str, str]      # {field: text}: the KEY=VALUE alias, then the typed flags
    options: Any                # the options instance over the source's defaults; None: SOURCE was not read


def read_given(args: argparse.Namespace, use_defaults: bool = True) -> Given:
    """The sampling options on the command line, and the family's options instance built from them
    over the source's defaults (its run's [sample] table or zoo card, from `args.source_record`;
    use_defaults=False: over the family's dataclass defaults only): built once, here, before any
    weights are read, so that a bad value fails first."""
    values = {**parse_pairs(args.sample_option), **flag_values(args, args.sample_flags)}
    record, options = args.source_record, None
    if args.sample_options_cls is not None and record is not None:
        options = layered_sample_options(args.sample_options_cls, record.sample_defaults if use_defaults else {},
                                         values)
    return Given(values, options)


def given(args: argparse.Namespace) -> dict[str, str]:
    """{field: text} of the sampling options on the command line, checked (`read_given`)."""
    return read_given(args).values


def given_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """{field: value} of the SOURCE family's evaluation options given as typed flags; a flag of another
    family's options does not apply to this source and is left out."""
    own = {f.name for f in dataclasses.fields(args.evaluate_options_cls)} if args.evaluate_options_cls else set()
    return {k: v for k, v in flag_values(args, args.evaluate_flags).items() if k in own}
