"""`genmodels compare`'s engine: trained models of any family, one data set, the same metrics.

`compare_sources` checks that the sources share one data set (from their configs, before any
weights are read), measures the real-data floor once, then each source's row with
`evaluate_loaded` (its sample metrics at cfg.n, its model metrics at cfg.nll_n), and fills a
`report.compare.CompareTable`, which lays the numbers out. With a `RowCache`, a row measured
before with the same weights and settings comes back without being measured again.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from genmodels.config import DataConfig
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError
from genmodels.evaluation import measure
from genmodels.evaluation.source import (
    check_counts,
    data_options,
    evaluate_loaded,
    evaluation_data,
    load_for_evaluation,
)
from genmodels.models.base import GenerativeModel
from genmodels.models.registry import get_model
from genmodels.report.compare import (
    LIKELIHOOD_OPTIONS,
    CompareConfig,
    CompareRow,
    CompareTable,
    likelihood_of,
    resolve_metrics,
)
from genmodels.report.compare_cache import FloorPayload, RowCache, RowPayload, settings_parts
from genmodels.run import LoadedRun, RunDir, resolve_device
from genmodels.run.digest import data_digest, weights_digest
from genmodels.run.sample_options import USER_LAYER, build_sample_options, run_sample_options
from genmodels.sampling import sampling_precision
from genmodels.sources import is_zoo, source_config, training_cpu_minutes

ALWAYS_SHOWN = ("n", "seed", "nll_n", "k")   # written in the command line even at their defaults
NOT_SHOWN = ("metrics", "progress")          # metrics is written resolved; progress changes no number


def source_name(source: str) -> str:
    """The row's name: zoo:NAME, or the run directory's name."""
    return source if is_zoo(source) else (Path(source).name or Path(source).resolve().name)


def data_of(source: str, zoo_root: str | Path | None = None) -> tuple[DataConfig, str, str, tuple[str, ...]]:
    """(DataConfig the source's samples are scored against, family, kind of data, family's metric names),
    read from its config without loading weights (a latent model: its VAE run's data, no likelihood)."""
    config, spec = source_config(source, zoo_root=zoo_root)
    family, metric_names = config.model_name, tuple(get_model(config.model_name).model_cls.metric_names)
    if spec.latent is not None:
        metric_names = ()
        if Path(spec.latent.vae_run).is_dir():
            vae_config, vae_spec = RunDir(spec.latent.vae_run).read_config()
            return vae_config.data, f"{family} (latent)", vae_spec.kind, metric_names
    return config.data, family, spec.kind, metric_names


def data_key(data_cfg: DataConfig) -> tuple[str, dict]:
    """(data set name, its preparation where it differs from the defaults): what must agree across the rows."""
    default = DataConfig()
    options = {k: v for k, v in data_options(data_cfg).items() if v != getattr(default, k)}
    return data_cfg.name, options


def _label(key: tuple[str, dict]) -> str:
    name, options = key
    return name + (" (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else "")


def command_line(sources: list[str], cfg: CompareConfig, metrics: list[str], *, ema: bool = True,
                 zoo_root: str | Path | None = None, tail: Sequence[str] = ()) -> str:
    """The `genmodels compare` command that reproduces the table: the sources as given, every
    setting that changes a number (n, seed, nll-n, k and the resolved metrics always; the others
    where they differ from their defaults), then `tail` (the sample options and outputs)."""
    default = CompareConfig()
    argv = ["genmodels", "compare", *map(str, sources), "--metrics", ",".join(metrics)]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in NOT_SHOWN or (f.name not in ALWAYS_SHOWN and value == getattr(default, f.name)):
            continue
        argv += ["--" + f.name.replace("_", "-"), str(value)]
    if not ema:
        argv.append("--no-ema")
    if zoo_root:
        argv += ["--zoo-root", str(zoo_root)]
    return shlex.join([*argv, *tail])


def count_parameters(model: GenerativeModel) -> int:
    """Parameters of all the model's networks (model.modules()), each shared tensor counted once."""
    seen: dict[int, int] = {}
    for module in model.modules().values():
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _metrics_of(report) -> dict[str, dict]:
    return {r.name: {"value": r.value, "std": r.std} for r in report.rows}


def compare_sources(sources: list[str], cfg: CompareConfig, *, ema: bool = True,
                    sample_options: Mapping[str, Mapping[str, Any]] | None = None,
                    zoo_root: str | Path | None = None, cache: RowCache | None = None,
                    command_tail: list[str] | None = None, device: torch.device | None = None) -> CompareTable:
    """Fill a CompareTable: check that the sources share one data set, then evaluate each (its
    sample metrics at cfg.n, its model metrics at cfg.nll_n) and the real-data floor once.
    `sample_options`: {family: {field: value or text}}, for every source of that family. `cache`
    (a `report.compare_cache.RowCache`) gives back the rows measured before and keeps the new ones.
    The table's command is `command_line(...)` followed by `command_tail` (None: the
    --sample-option flags of `sample_options`). `device`: where this process measures (under torchrun
    each rank's own); None: cfg.device resolved. The table's command and the cache keys name the
    resolved device's type, never the process's own device, so one launch's rows serve another's."""
    cfg.validate()
    device = device if device is not None else resolve_device(cfg.device)
    shown, cfg = cfg, dataclasses.replace(cfg, device=str(device))   # the command as given; measured here
    sample_options = {family: dict(values) for family, values in (sample_options or {}).items()}
    cache = cache if cache is not None else RowCache(None)
    info = {s: data_of(s, zoo_root) for s in sources}
    keys = {s: data_key(d[0]) for s, d in info.items()}
    _check_sources(info, keys, sample_options)
    data_cfg = next(iter(info.values()))[0]
    sample_metrics, model_metrics = _metrics(cfg, info)
    if command_tail is None:
        command_tail = [a for family, values in sample_options.items() for key, value in values.items()
                        for a in ("--sample-option", f"{family}:{key}={value}")]
    command = command_line(sources, shown, [*sample_metrics, *model_metrics], ema=ema, zoo_root=zoo_root,
                           tail=command_tail)

    train, test = evaluation_data(data_cfg)
    check_counts(cfg, tuple(test.x.shape[1:]))     # --n and --k bounded before anything is measured
    name, options = keys[sources[0]]
    table = CompareTable(dataset=name, data_options=options, extractor="-", settings=shown, command=command,
                         sample_metrics=sample_metrics, model_metrics=model_metrics)
    names = [source_name(s) for s in sources]
    names = [n if names.count(n) == 1 else s for n, s in zip(names, sources, strict=True)]   # two runs called the same

    content = data_digest(train, test) if cache.folder is not None else None   # a rewritten file is other data
    settings = {**settings_parts(cfg), "device": device.type}   # the device's type, not a rank's own
    common = {"settings": settings, "data": [name, options], "data_sha256": content, "sample_metrics": sample_metrics}
    if sample_metrics:
        got = _floor(cache, common, train, test, cfg, sample_metrics, name)
        table.floor = CompareRow("real-data floor", source="test vs train", floor=True, metrics=got["metrics"])
        table.extractor, table.n_reference, table.n_floor = got["extractor"], got["n_reference"], got["n_floor"]
        table.n_samples = cfg.n
        table.notes += got["notes"]
    bar = tqdm(total=len(sources), desc="compare", unit="model", disable=not cfg.progress, file=sys.stderr)
    for source, row_name in zip(sources, names, strict=True):
        bar.set_postfix_str(row_name)
        family = info[source][1]
        row, got = _source_row(source, row_name, family, cfg, sample_options.get(family.split()[0], {}),
                               (train, test), sample_metrics, model_metrics, cache, common, device,
                               ema=ema, zoo_root=zoo_root)
        table.notes += [n for n in got["notes"] if n not in table.notes]
        if got["n_likelihood"]:
            table.n_likelihood = got["n_likelihood"]
        table.rows.append(row)
        bar.update(1)
    bar.close()
    if model_metrics and not table.n_likelihood:
        table.n_likelihood = min(cfg.nll_n, len(test.x))
    return table


def _source_row(source: str, row_name: str, family: str, cfg: CompareConfig, opts: Mapping[str, Any], data: tuple,
                sample_metrics: list[str], model_metrics: list[str], cache: RowCache, common: dict,
                device: torch.device, *, ema: bool, zoo_root: str | Path | None) -> tuple[CompareRow, dict]:
    """One source's row (its sample metrics and its own model metrics, from `cache` when measured
    before) and the payload it came from (notes, likelihood sample size)."""
    loaded = load_for_evaluation(source, cfg.eval_config(sample_metrics), ema=ema, zoo_root=zoo_root)
    row = CompareRow(row_name, source=str(source), family=family, params=count_parameters(loaded.model),
                     train_cpu_minutes=training_cpu_minutes(source, zoo_root=zoo_root), step=loaded.step,
                     ema=loaded.ema, sample_options=dict(opts))
    own = [m for m in model_metrics if m in loaded.model.metric_names]
    got = _cached_row(loaded, cfg, opts, data, sample_metrics, own, family, cache, common, device)
    row.metrics.update(got["metrics"])
    row.likelihood = likelihood_of(row.metrics, cfg.k)
    return row, got


def _metrics(cfg: CompareConfig, info: Mapping[str, tuple]) -> tuple[list[str], list[str]]:
    """(sample metrics, model metrics) of the table: cfg.metrics, or the defaults for the sources' kind of
    data and their families' metrics; ConfigError when that names none."""
    kinds = {d[2] for d in info.values()}
    model_names = {m for d in info.values() for m in d[3]}
    sample_metrics, model_metrics = resolve_metrics(cfg, kinds.pop(), model_names)
    if not sample_metrics and not model_metrics:
        raise ConfigError("--metrics names no metric")
    return sample_metrics, model_metrics


def _check_sources(info: Mapping[str, tuple], keys: Mapping[str, tuple[str, dict]],
                   sample_options: Mapping[str, Mapping[str, Any]]) -> None:
    """ConfigError, before any weights are read, unless every source is on one data set (`keys`: each
    source's `data_key`) and every family of `sample_options` is a source's, with valid options."""
    if len({_label(k) for k in keys.values()}) > 1:
        listing = "; ".join(f"{s}: {_label(k)}" for s, k in keys.items())
        raise ConfigError(f"compare needs every source on the same data set (one test split, one real-data floor); "
                          f"got {listing}. Compare the sources of each data set separately")
    families = {d[1].split()[0] for d in info.values()}
    for family, opts in sample_options.items():
        if family not in families:
            raise ConfigError(f"--sample-option {family}:...: no source is of family {family} "
                              f"(the sources are {', '.join(sorted(families))})")
        build_sample_options(get_model(family).options_cls, (opts, USER_LAYER))  # bad options fail before evaluating


def _floor(cache: RowCache, common: dict, train: Dataset, test: Dataset, cfg: CompareConfig,
           sample_metrics: list[str], name: str) -> dict:
    """The real-data floor's payload (metrics, extractor, sizes, notes): from the cache, else measured and kept."""
    floor_parts = {"row": "real-data floor", **common}
    got = cache.get(floor_parts, FloorPayload)
    if got is None:
        floor = measure.evaluate(train, test, cfg.eval_config(sample_metrics),
                                 title=f"real-data floor of {name}: test vs train")
        got = {"metrics": {r.name: {"value": r.floor, "std": r.floor_std} for r in floor.rows},
               "extractor": floor.extractor, "n_reference": floor.n_reference, "n_floor": floor.n_floor,
               "notes": list(floor.notes)}
        cache.put(floor_parts, got)
    return got


def _cached_row(loaded: LoadedRun, cfg: CompareConfig, opts: Mapping[str, Any], data: tuple[Dataset, Dataset],
                sample_metrics: list[str], own: list[str], family: str, cache: RowCache, common: dict,
                device: torch.device) -> dict:
    """A source's row payload from the cache, keyed by its weights and every setting that changes a
    number (the sample options as drawn: the card's or run's under `opts`); else measured and kept."""
    parts = {**common, "family": family, "weights": weights_digest(loaded.model), "step": loaded.step,
             "ema": loaded.ema, "model_metrics": own,
             "sample_options": dataclasses.asdict(run_sample_options(loaded, opts)),   # as drawn: card/run too
             "precision": sampling_precision(cfg.precision, loaded.config.trainer.precision, device)[0]}
    got = cache.get(parts, RowPayload)
    if got is None:
        got = _measure_row(loaded, cfg, opts, data, sample_metrics, own, family)
        cache.put(parts, got)
    return got


def _measure_row(loaded: LoadedRun, cfg: CompareConfig, opts: Mapping[str, Any], data: tuple[Dataset, Dataset],
                 sample_metrics: list[str], own: list[str], family: str) -> dict:
    """A source's row payload: its sample metrics at cfg.n, then its own (likelihood) metrics at cfg.nll_n."""
    got: dict = {"metrics": {}, "notes": [], "n_likelihood": 0}
    if sample_metrics:
        report = evaluate_loaded(loaded, cfg.eval_config(sample_metrics), opts, data=data)
        got["metrics"].update(_metrics_of(report))
        got["notes"] += list(report.notes)
    if own:
        report = evaluate_loaded(loaded, cfg.eval_config(own, likelihood=True), opts, data=data,
                                 given_evaluate=LIKELIHOOD_OPTIONS.get(family.split()[0]))
        got["metrics"].update(_metrics_of(report))
        got["n_likelihood"] = report.n_reference
    return got
