"""A family's options (sample or evaluate), built in one place from the layers that set them.

`genmodels sample`, `evaluate`, `compare` and `zoo export` take a family's sampling options (the
fields of its `sample_options` dataclass) from the same layers, each later one winning:

    the dataclass defaults  <  the run's [sample] table or a zoo entry's card (`LoadedRun.sample_defaults`)
                            <  what the user gave

What the user gave is typed flags (`--sampler dpm++ --steps 20`) or their text alias
`--sample-option KEY=VALUE` (`parse_pairs`), both {field: text}. `build_sample_options` applies
the layers, parsing each value by its field's type (`genmodels.config.coerce`), and checks the
result: choices, finite numbers and the dataclass's own `validate()`: the one check of the
options on their way from the command line to `model.sample(n, options)`. A family's evaluation
options (its `evaluate_options`, e.g. DDPM's likelihood estimates) are built the same way, with
kind="evaluate".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from genmodels.config import update_dataclass
from genmodels.config_fields import validate_options
from genmodels.errors import ConfigError
from genmodels.run.load import LoadedRun

ALIAS = "--sample-option"        # the KEY=VALUE spelling of a sample option on every command
CARD_LAYER = "the zoo entry's sample options"   # a run's [sample] table is checked when config.toml is read
USER_LAYER = "sample option"
EVALUATE_LAYER = "evaluate option"


def parse_pairs(pairs: Iterable[str], flag: str = ALIAS, example: str = "sampler=dpm++") -> dict[str, str]:
    """{field: text} of KEY=VALUE strings (a dash in KEY reads as an underscore, as in the flags);
    ConfigError naming the flag for one without '=' or without a key."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {example}")
        values[key.strip().replace("-", "_")] = value.strip()
    return values


def build_sample_options(options_cls: type, *layers: tuple[Mapping[str, Any], str], kind: str = "sample") -> Any:
    """An instance of `options_cls` with each (values, where) layer applied in turn, then checked.
    Values may be typed or text; `where` names the layer in a ConfigError (an unknown key lists the
    valid ones, a bad value names the field and its type); `kind` ("sample" or "evaluate") names the
    options in a refused value's message."""
    options = options_cls()
    for values, where in layers:
        update_dataclass(options, dict(values), where)
    validate_options(options, kind)
    return options


def run_sample_options(loaded: LoadedRun, given: Mapping[str, Any] | None = None) -> Any:
    """The options instance a loaded run samples with: its family's defaults, the run's [sample] table
    or the zoo entry's card, then `given` ({field: value or text} from the command line). The run's or
    card's defaults are one setting: naming another sampler than theirs drops them all (their steps
    belong to their sampler: `--sampler ancestral` is Algorithm 4.2 with its own default steps)."""
    return layered_sample_options(loaded.model.sample_options, loaded.sample_defaults, given)


def layered_sample_options(options_cls: type, sample_defaults: Mapping[str, Any],
                           given: Mapping[str, Any] | None = None) -> Any:
    """`run_sample_options` before the weights are read: the instance of `options_cls` over a source's
    `sample_defaults` (its run's [sample] table or its zoo card's, `genmodels.sources.SourceRecord`)."""
    defaults = dict(sample_defaults)
    given = dict(given or {})
    if "sampler" in given and "sampler" in defaults and str(given["sampler"]) != str(defaults["sampler"]):
        defaults = {}
    return build_sample_options(options_cls, (defaults, CARD_LAYER), (given, USER_LAYER))


def evaluate_options(options_cls: type, given: Mapping[str, Any] | None = None) -> Any:
    """The evaluation options instance of a family (`options_cls`, its `evaluate_options`): its defaults
    under `given` ({field: value or text})."""
    return build_sample_options(options_cls, (given or {}, EVALUATE_LAYER), kind="evaluate")
