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
adding a source to a table measures only its row (`genmodels.report.compare_cache`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from genmodels.cli import add_config_flags, flag_values
from genmodels.errors import ConfigError

OWN_FLAGS = {"--markdown", "--html", "--json", "--ema", "--no-ema", "--sample-option", "--cache"}
ALWAYS_SHOWN = ("n", "seed", "nll_n", "k")   # written in the command line even at their defaults
NOT_SHOWN = ("metrics", "progress")          # metrics is written resolved; progress changes no number


def register(subparsers) -> None:
    from genmodels.report.compare import CompareConfig

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
    from genmodels.config import update_dataclass
    from genmodels.config_checks import validate_options
    from genmodels.report.compare import CompareConfig

    cfg = CompareConfig()
    update_dataclass(cfg, flag_values(args, args.compare_flags), "compare")
    validate_options(cfg, "compare")
    return cfg


def family_sample_options(pairs: list[str]) -> dict[str, dict[str, str]]:
    """{family: {field: text}} of --sample-option FAMILY:KEY=VALUE (the KEY=VALUE part read as by
    `genmodels evaluate`, `genmodels.run.sample_options.parse_pairs`)."""
    from genmodels.models.registry import families
    from genmodels.run.sample_options import parse_pairs

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


def source_name(source: str) -> str:
    """The row's name: zoo:NAME, or the run directory's name."""
    from genmodels.sources import is_zoo

    return source if is_zoo(source) else (Path(source).name or Path(source).resolve().name)


def data_of(source: str, zoo_root=None):
    """(DataConfig the source's samples are scored against, family, kind of data, family's metric names),
    read from its config without loading weights (a latent model: its VAE run's data, no likelihood)."""
    from genmodels.models.registry import get_model
    from genmodels.run import RunDir
    from genmodels.sources import source_config

    config, spec = source_config(source, zoo_root=zoo_root)
    family, metric_names = config.model_name, tuple(get_model(config.model_name)[0].metric_names)
    if spec.latent is not None:
        metric_names = ()
        if Path(spec.latent.vae_run).is_dir():
            vae_config, vae_spec = RunDir(spec.latent.vae_run).read_config()
            return vae_config.data, f"{family} (latent)", vae_spec.kind, metric_names
    return config.data, family, spec.kind, metric_names


def data_key(data_cfg) -> tuple[str, dict]:
    """(data set name, its preparation where it differs from the defaults): what must agree across the rows."""
    from genmodels.cli.evaluate import _data_options
    from genmodels.config import DataConfig

    default = DataConfig()
    options = {k: v for k, v in _data_options(data_cfg).items() if v != getattr(default, k)}
    return data_cfg.name, options


def _label(key: tuple[str, dict]) -> str:
    name, options = key
    return name + (" (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else "")


def command_line(sources: list[str], cfg, metrics: list[str], args: argparse.Namespace) -> str:
    """The `genmodels compare` command that reproduces the table: the sources as given, every
    setting that changes a number (n, seed, nll-n, k and the resolved metrics always; the others
    where they differ from their defaults) and the outputs asked for."""
    import dataclasses

    from genmodels.report.compare import CompareConfig

    default = CompareConfig()
    argv = ["genmodels", "compare", *sources, "--metrics", ",".join(metrics)]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in NOT_SHOWN or (f.name not in ALWAYS_SHOWN and value == getattr(default, f.name)):
            continue
        argv += ["--" + f.name.replace("_", "-"), str(value)]
    if not args.ema:
        argv.append("--no-ema")
    if getattr(args, "zoo_root", None):
        argv += ["--zoo-root", args.zoo_root]
    for option in args.sample_option:
        argv += ["--sample-option", option]
    for flag in ("markdown", "html"):
        if getattr(args, flag):
            argv += [f"--{flag}", getattr(args, flag)]
    if args.json:
        argv.append("--json")
    return shlex.join(argv)


def count_parameters(model) -> int:
    """Parameters of all the model's networks (model.modules()), each shared tensor counted once."""
    seen: dict[int, int] = {}
    for module in model.modules().values():
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _metrics_of(report) -> dict[str, dict]:
    return {r.name: {"value": r.value, "std": r.std} for r in report.rows}


def compare_sources(sources: list[str], cfg, *, ema: bool = True,
                    sample_options: dict[str, dict[str, str]] | None = None,
                    zoo_root=None, cache=None,
                    command: str | None = None, args: argparse.Namespace | None = None):
    """Fill a CompareTable: check that the sources share one data set, then evaluate each (its
    sample metrics at cfg.n, its model metrics at cfg.nll_n) and the real-data floor once. `cache`
    (a `report.compare_cache.RowCache`) gives back the rows measured before and keeps the new ones."""
    from tqdm import tqdm

    from genmodels.cli.evaluate import evaluate_loaded, evaluation_data, load_for_evaluation
    from genmodels.metrics import evaluate as E
    from genmodels.models.registry import get_model
    from genmodels.report.compare import CompareRow, CompareTable, likelihood_of, resolve_metrics
    from genmodels.report.compare_cache import RowCache, settings_parts, weights_digest
    from genmodels.run import resolve_device
    from genmodels.run.sample_options import USER_LAYER, build_sample_options
    from genmodels.sources import training_cpu_minutes
    from genmodels.training.inference import sampling_precision

    cfg.validate()
    sample_options = sample_options or {}
    cache = cache if cache is not None else RowCache(None)
    info = {s: data_of(s, zoo_root) for s in sources}
    keys = {s: data_key(d[0]) for s, d in info.items()}
    if len({_label(k) for k in keys.values()}) > 1:
        listing = "; ".join(f"{s}: {_label(k)}" for s, k in keys.items())
        raise ConfigError(f"compare needs every source on the same data set (one test split, one real-data floor); "
                          f"got {listing}. Compare the sources of each data set separately")
    families = {d[1].split()[0] for d in info.values()}
    for family, opts in sample_options.items():
        if family not in families:
            raise ConfigError(f"--sample-option {family}:...: no source is of family {family} "
                              f"(the sources are {', '.join(sorted(families))})")
        build_sample_options(get_model(family)[2], (opts, USER_LAYER))   # bad options fail before any evaluation
    data_cfg, kinds = next(iter(info.values()))[0], {d[2] for d in info.values()}
    model_names = {m for d in info.values() for m in d[3]}
    sample_metrics, model_metrics = resolve_metrics(cfg, kinds.pop(), model_names)
    if not sample_metrics and not model_metrics:
        raise ConfigError("--metrics names no metric")
    if command is None:
        command = command_line(sources, cfg, [*sample_metrics, *model_metrics], args) if args is not None else ""

    train, test = evaluation_data(data_cfg)
    name, options = keys[sources[0]]
    table = CompareTable(dataset=name, data_options=options, extractor="-", settings=cfg, command=command,
                         sample_metrics=sample_metrics, model_metrics=model_metrics)
    names = [source_name(s) for s in sources]
    names = [n if names.count(n) == 1 else s for n, s in zip(names, sources, strict=True)]   # two runs called the same

    common = {"settings": settings_parts(cfg), "data": [name, options], "sample_metrics": sample_metrics}
    if sample_metrics:
        floor_parts = {"row": "real-data floor", **common}
        got = cache.get(floor_parts)
        if got is None:
            floor = E.evaluate(train, test, cfg.eval_config(sample_metrics),
                               title=f"real-data floor of {name}: test vs train")
            got = {"metrics": {r.name: {"value": r.floor, "std": r.floor_std} for r in floor.rows},
                   "extractor": floor.extractor, "n_reference": floor.n_reference, "n_floor": floor.n_floor,
                   "notes": list(floor.notes)}
            cache.put(floor_parts, got)
        table.floor = CompareRow("real-data floor", source="test vs train", floor=True, metrics=got["metrics"])
        table.extractor, table.n_reference, table.n_floor = got["extractor"], got["n_reference"], got["n_floor"]
        table.n_samples = cfg.n
        table.notes += got["notes"]
    device = resolve_device(cfg.device)
    bar = tqdm(total=len(sources), desc="compare", unit="model", disable=not cfg.progress, file=sys.stderr)
    for source, row_name in zip(sources, names, strict=True):
        bar.set_postfix_str(row_name)
        loaded = load_for_evaluation(source, cfg.eval_config(sample_metrics), ema=ema, zoo_root=zoo_root)
        family = info[source][1]
        opts = sample_options.get(family.split()[0], {})
        row = CompareRow(row_name, source=str(source), family=family, params=count_parameters(loaded.model),
                         train_cpu_minutes=training_cpu_minutes(source, zoo_root=zoo_root), step=loaded.step,
                         ema=loaded.ema,
                         sample_options=dict(opts))
        own = [m for m in model_metrics if m in loaded.model.metric_names]
        parts = {**common, "family": family, "weights": weights_digest(loaded.model), "step": loaded.step,
                 "ema": loaded.ema, "sample_options": dict(opts), "model_metrics": own,
                 "precision": sampling_precision(cfg.precision, loaded.config.trainer.precision, device)[0],
                 "device": device.type}
        got = cache.get(parts)
        if got is None:
            got = {"metrics": {}, "notes": [], "n_likelihood": 0}
            if sample_metrics:
                report = evaluate_loaded(loaded, cfg.eval_config(sample_metrics), opts, data=(train, test))
                got["metrics"].update(_metrics_of(report))
                got["notes"] += list(report.notes)
            if own:
                report = evaluate_loaded(loaded, cfg.eval_config(own, likelihood=True), opts, data=(train, test))
                got["metrics"].update(_metrics_of(report))
                got["n_likelihood"] = report.n_reference
            cache.put(parts, got)
        row.metrics.update(got["metrics"])
        table.notes += [n for n in got["notes"] if n not in table.notes]
        if got["n_likelihood"]:
            table.n_likelihood = got["n_likelihood"]
        row.likelihood = likelihood_of(row.metrics, cfg.k)
        table.rows.append(row)
        bar.update(1)
        del loaded
    bar.close()
    if model_metrics and not table.n_likelihood:
        table.n_likelihood = min(cfg.nll_n, len(test.x))
    return table


def run(args: argparse.Namespace) -> int:
    from genmodels.atomic import check_output_path, write_text

    cfg = _config(args)
    for flag in ("markdown", "html"):   # a bad path fails now, not after the evaluation
        if getattr(args, flag):
            check_output_path(getattr(args, flag))
    from genmodels.report.compare_cache import RowCache

    table = compare_sources(args.sources, cfg, ema=args.ema, zoo_root=args.zoo_root,
                            sample_options=family_sample_options(args.sample_option),
                            cache=RowCache(args.cache), args=args)
    if args.markdown:
        write_text(args.markdown, table.format_markdown())
    if args.html:
        write_text(args.html, table.format_html())
    print(json.dumps(table.to_dict(), indent=2) if args.json else table.format_text())
    return 0
