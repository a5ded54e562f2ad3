"""`genmodels compare SOURCE [SOURCE ...] [--markdown FILE.md] [--html FILE.html] [--json]`: models side by side.

One table of trained models of any family (run directories or zoo:NAME), measured on the same
data set with the same metrics, at the same n and seed: one row per source (family, parameters,
training CPU-minutes, training step, the metrics) and one row for the real-data floor, computed
once. Every source must have been trained on the same data set (same preparation); a mix is
refused. Default metrics: fd, prdc, parzen (images; modes for points) and nll, each family's
likelihood (VAE: IWAE bound, nats; DDPM: Theorem 8 bound, bits/dim; GAN and InfoGAN: -) on
--nll-n test examples with --k importance samples.

Each row's numbers are those of `genmodels evaluate SOURCE --n N --seed S --metrics ...` (the
sample metrics) and `genmodels evaluate SOURCE --metrics nll --n NLL_N --k K --nll-estimates bound`
(the likelihood). Sampling options go as --sample-option FAMILY:KEY=VALUE (e.g. ddpm:sampler=ddim);
they apply to every source of that family. With --cache DIR each row (and the floor) is kept in DIR,
keyed by a hash of the weights, the settings, the machine's sampling precision and the versions:
adding a source to a table measures only its row (`genmodels.report.compare_cache`). The engine is
`genmodels.evaluation.compare` (`genmodels.compare(...)` in Python).
"""

from __future__ import annotations

import argparse

from genmodels.atomic import check_output_path, json_report, write_text
from genmodels.cli import add_config_flags, flag_values
from genmodels.config import update_dataclass
from genmodels.config_fields import validate_options
from genmodels.errors import ConfigError
from genmodels.evaluation import compare_sources
from genmodels.models.registry import families
from genmodels.report.compare import CompareConfig
from genmodels.report.compare_cache import RowCache
from genmodels.run.sample_options import parse_pairs
from genmodels.training import distributed

OWN_FLAGS = {"--markdown", "--html", "--json", "--ema", "--no-ema", "--sample-option", "--cache"}


def register(subparsers) -> None:
    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("compare", help="one table of trained models (any family) on the same data and metrics",
                              description=lines[0] + "\n\n" + "\n".join(lines[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a run directory written by `genmodels train`, or zoo:NAME (`genmodels zoo` lists them)")
    p.add_argument("--markdown", default=None, metavar="FILE.md",
                   help="also write the table as GitHub Markdown, with a caption giving every setting and the command")
    p.add_argument("--html", default=None, metavar="FILE.html", help="also write the table as a standalone HTML page")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read zoo:NAME from DIR (written by `genmodels zoo export --dest DIR`) "
                        "instead of the package's zoo")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="keep each row in DIR and reuse the rows measured before with the same weights and settings")
    p.add_argument("--ema", default=True, action=argparse.BooleanOptionalAction,
                   help="use each run's EMA weights when it kept them")
    p.add_argument("--sample-option", action="append", default=[], metavar="FAMILY:KEY=VALUE",
                   help="a sampling option for every source of one family (see `genmodels sample SOURCE --help`)")
    group = p.add_argument_group("comparison settings")
    mapping = add_config_flags(group, CompareConfig, dest_prefix="compare__", taken=OWN_FLAGS, rename_prefix="compare")
    p.set_defaults(func=run, compare_flags=mapping)


def _config(args: argparse.Namespace):
    cfg = CompareConfig()
    update_dataclass(cfg, flag_values(args, args.compare_flags), "compare")
    validate_options(cfg, "compare")
    return cfg


def family_sample_options(pairs: list[str]) -> dict[str, dict[str, str]]:
    """{family: {field: text}} of --sample-option FAMILY:KEY=VALUE (the KEY=VALUE part read as by
    `genmodels evaluate`, `genmodels.run.sample_options.parse_pairs`)."""
    MODELS = families()
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        family, sep, option = pair.partition(":")
        if not sep or "=" not in option:
            raise ConfigError(f"--sample-option {pair!r}: expected FAMILY:KEY=VALUE (e.g. ddpm:sampler=ddim), since "
                              f"the sources may be of different families")
        family = family.strip()
        if family not in MODELS:
            raise ConfigError(f"--sample-option {pair!r}: unknown family {family!r}; "
                              f"valid choices: {', '.join(MODELS)}")
        out.setdefault(family, {}).update(parse_pairs([option], example="ddpm:sampler=ddim"))
    return out


def run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    for path in (args.markdown, args.html):   # a bad path fails now, not after the evaluation
        if path:
            check_output_path(path)
    tail = [a for option in args.sample_option for a in ("--sample-option", option)]
    tail += [a for flag, path in (("--markdown", args.markdown), ("--html", args.html)) if path for a in (flag, path)]
    tail += ["--json"] if args.json else []
    with distributed.session(cfg.device) as (info, device):   # under torchrun: each rank its share, rank 0 writes
        table = compare_sources(args.sources, cfg, ema=args.ema, zoo_root=args.zoo_root,
                                sample_options=family_sample_options(args.sample_option),
                                cache=RowCache(args.cache), command_tail=tail,
                                device=device if info.enabled else None)   # a rank's GPU (cuda:LOCAL_RANK) or CPU
    if not info.is_main:
        return 0
    if args.markdown:
        write_text(args.markdown, table.format_markdown())
    if args.html:
        write_text(args.html, table.format_html())
    print(json_report(table.to_dict(), indent=2) if args.json else table.format_text())
    return 0
