"""The Python API (train, load, evaluate, compare), and the steps `genmodels train` takes once its
flags are parsed.

    import genmodels
    model = genmodels.train("ddpm", data="mnist5k", steps=500, out="runs/x", batch_size=128, lr=2e-4)
    x = model.sample(64, generator=torch.Generator().manual_seed(0))
    report = genmodels.evaluate("runs/x", metrics="fd,prdc", n=1000)     # what `genmodels evaluate` prints
    table = genmodels.compare(["runs/x", "zoo:ddpm-mnist"], metrics="fd", n=1000)

`genmodels.train(...)` builds the same RunConfig as `genmodels train ddpm --data mnist5k --steps 500
--out runs/x --batch-size 128 --lr 2e-4`, trains it with the same code (`fit_config`) and returns
the model as `genmodels.load("runs/x")` would. `choose_base` is the one chooser of the run config a
run starts from, for the command and the function alike.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genmodels.atomic import check_output_path
from genmodels.config import DataConfig, RunConfig, TrainerConfig, load_toml, update_dataclass
from genmodels.config_fields import validate_options
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError, DataError
from genmodels.evaluation import EvalReport, compare_sources, evaluate_source
from genmodels.latent_run import decode_latents
from genmodels.metrics.evaluate import EvalConfig
from genmodels.models.base import GenerativeModel
from genmodels.recipes import load_recipe
from genmodels.report import write_report
from genmodels.report.compare import CompareConfig, CompareTable
from genmodels.report.compare_cache import RowCache
from genmodels.run import RunDir, build_model, load_data_config
from genmodels.sources import init_from_source, load_source, reflow_from_source, source_config
from genmodels.training import Trainer, distributed
from genmodels.training.hardware import check_machine
from genmodels.training.identity import check_resume

SOURCE = "genmodels.train()"     # names the options in error messages
SECTIONS = {"data": DataConfig, "trainer": TrainerConfig}   # and "model": the family's config


@dataclass
class Fitted:
    """What `fit_config` leaves: the trained model (raw weights, train mode), the trainer's FitResult,
    and whether this process is the one that wrote the run (rank 0 under torchrun)."""

    model: GenerativeModel
    result: Any          # genmodels.training.trainer.FitResult
    is_main: bool


# trainer fields that describe the machine a source was trained on, reset when a run starts from its config
MACHINE_FIELDS = ("device", "threads", "precision")


def init_base(source: str, zoo_root: str | Path | None) -> RunConfig:
    """The run config of an init source (a run directory or zoo:NAME), as the base of a fine-tuning
    run: its out cleared and the machine settings (MACHINE_FIELDS) back at their defaults."""
    base, _ = source_config(source, zoo_root=zoo_root)
    base.out = ""
    defaults = TrainerConfig()
    for name in MACHINE_FIELDS:
        setattr(base.trainer, name, getattr(defaults, name))
    return base


def choose_base(*, model: str | None, out: str | Path | None, resume: bool = False,
                config_file: str | Path | None = None, recipe: str | None = None, init: str | None = None,
                zoo_root: str | Path | None = None) -> RunConfig | None:
    """The run config a training run starts from, the first that applies of: the run's own
    config.toml (resume; read here, once), a config file, a recipe, the family's defaults (model), the
    run config of the init source; None when none is named. Shared by `genmodels train` and
    `genmodels.train`, which check beforehand which combinations they accept."""
    if resume and out and RunDir(out).config.is_file():
        return load_toml(RunDir(out).config)[0]
    if config_file:
        return load_toml(config_file)[0]
    if recipe:
        return load_recipe(recipe).config
    if model:
        return RunConfig.default(model)
    if init:
        return init_base(init, zoo_root)
    return None


def load_training_data(config: DataConfig, seed: int) -> Dataset:
    """The training split named by the [data] table (2-D toys are drawn from the run seed)."""
    return load_data_config(config, "train", seed=seed)


def check_init_unchanged(config: RunConfig, resume: bool, stored: RunConfig | None = None) -> None:
    """With resume: ConfigError when the config's init (e.g. through --set init=...) is not the one
    the run was created with (a run keeps the weights it started from). `stored`: the run's
    config.toml as already read (None: read it here)."""
    run = RunDir(config.out)
    if not (resume and run.config.is_file()):
        return
    if stored is None:
        stored, _ = load_toml(run.config)
    if stored.init != config.init:
        raise ConfigError(f"{run.path}: resuming would change the run's init ({stored.init!r} in the run vs "
                          f"{config.init!r} now); a run keeps the weights it started from")


def needs_init(config: RunConfig, resume: bool) -> bool:
    """Whether the networks start from config.init: a fine-tuning run that has no checkpoint yet (a
    resumed one continues from its checkpoint, whose weights already began at the source's)."""
    return bool(config.init) and not (resume and RunDir(config.out).latest.is_file())


def needs_reflow(config: RunConfig, resume: bool) -> bool:
    """Whether a flow run starts from a previous flow's reflow pairs (model.reflow_from) now: not when
    resumed from a checkpoint, which holds the pairs already."""
    return config.model_name == "flow" and bool(config.model.reflow_from) and \
        not (resume and RunDir(config.out).latest.is_file())


def fit_config(config: RunConfig, *, resume: bool = False, override_identity: bool = False,
               zoo_root: str | Path | None = None,
               load_data: Callable[[DataConfig, int], Dataset] = load_training_data,
               stored: RunConfig | None = None) -> Fitted:
    """Train a validated run config into config.out: join the process group under torchrun, check
    the device, precision and batch split on this machine, load the data, build the model (from
    config.init's weights when fine-tuning), run the Trainer, and write RUN_DIR/report.html at the
    end when trainer.report is on. Everything up to the Trainer leaves config.out untouched: a
    refused run creates no run directory. `stored`: with resume, the run's config.toml as
    `choose_base` read it."""
    check_init_unchanged(config, resume, stored)
    if resume:   # a refused resume is one line, before the machine's warnings (the Trainer records the changes)
        check_resume(RunDir(config.out), config, override_identity, stored)
    info, device = distributed.setup(config.trainer.device)   # joins the process group under torchrun
    try:
        check_machine(config.trainer, device, info)
        dataset = load_data(config.data, config.seed)
        if len(dataset) == 0:        # the data's checks, before the run directory is made
            raise DataError(f"data {config.data.name!r}: the training split holds no examples")
        if config.trainer.batch_size > len(dataset):
            raise ConfigError(f"trainer.batch_size {config.trainer.batch_size} is larger than the data set "
                              f"({config.data.name} has {len(dataset)} training examples)")
        model = build_model(config, dataset.spec, device)
        if not resume:                   # a new run records its family's measured sampling defaults
            config.sample = {**model.recommended_sample_options(), **config.sample}
        if needs_init(config, resume):   # before the trainer copies the weights into its EMA
            source = init_from_source(model, config, dataset.spec, config.init, zoo_root=zoo_root)
            if info.is_main:
                print(f"genmodels: networks initialised from {config.init} (step {source.step}"
                      f"{', EMA weights' if source.ema else ''})", file=sys.stderr, flush=True)
        if needs_reflow(config, resume):   # a flow's reflow pairs and weights, before the EMA copy too
            m = config.model
            if info.is_main:
                how = f"taking the {m.reflow_pairs:,} reflow pairs of {m.reflow_pairs_from}" if m.reflow_pairs_from \
                    else f"drawing {m.reflow_pairs:,} reflow pairs"
                print(f"genmodels: {how} from {m.reflow_from} ({m.reflow_sampler}, {m.reflow_steps} steps)",
                      file=sys.stderr, flush=True)
            reflow_from_source(model, config, dataset.spec, zoo_root=zoo_root,
                               progress=config.trainer.progress and info.is_main)
        result = Trainer(config, resume=resume, override_identity=override_identity,
                         on_finish=write_report).fit(model, dataset)
        distributed.barrier(info)   # rank 0's report written: no rank leaves the group while another is in it
    finally:
        distributed.teardown()
    return Fitted(model=model, result=result, is_main=info.is_main)


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def route_options(model_config_cls: type, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{section: {field: value}} for the keyword options of `genmodels.train`.

    A plain name goes to the trainer ([trainer]) when TrainerConfig has that field, else to the
    family's config ([model]); `section__field` (data__limit, trainer__ema_decay, model__lr) names
    the section itself and reaches [data] too. A name in both the trainer's and the family's config,
    or in neither, is a ConfigError listing the valid names."""
    sections = {**SECTIONS, "model": model_config_cls}
    names = {section: _fields(cls) - {"name"} for section, cls in sections.items()}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in options.items():
        section, sep, name = key.partition("__")
        if sep:
            if section not in sections or name not in names[section]:
                valid = ", ".join(sorted(f"{s}__{n}" for s in sections for n in names[s]))
                raise ConfigError(f"{SOURCE}: unknown option {key!r}; section__field options are: {valid}")
        else:
            name = key
            owners = [s for s in ("trainer", "model") if name in names[s]]
            if len(owners) > 1:
                raise ConfigError(f"{SOURCE}: option {name!r} is a field of both the trainer and the model "
                                  f"config; pass trainer__{name}=... or model__{name}=...")
            if not owners:
                raise ConfigError(f"{SOURCE}: unknown option {name!r}; valid: the trainer's "
                                  f"{', '.join(sorted(names['trainer']))}; the model's "
                                  f"{', '.join(sorted(names['model']))}; or data__FIELD for "
                                  f"{', '.join(sorted(names['data']))}")
            section = owners[0]
        nested.setdefault(section, {})[name] = value
    return nested


def train(model: str | None = None, data: str | Path | dict | None = None, *, out: str | Path | None = None,
          steps: int | None = None, seed: int | None = None, recipe: str | None = None, init: str | None = None,
          resume: bool = False, zoo_root: str | Path | None = None, **options) -> GenerativeModel:
    """Train a model into the run directory `out` and return it, as `genmodels.load(out)` would
    (latest checkpoint, EMA weights where kept, eval mode), ready for `model.sample(n, generator=...)`.

    model: the family (ddpm, gan, infogan, vae, or one added with `genmodels.register_model`);
           optional with `recipe` or `init`.
    data:  a built-in data set, a file or folder, `latents:VAE_RUN`, or the whole [data] table as a
           dict ({"name": "mnist", "limit": 5000}).
    steps, seed, recipe, init: as `--steps`, `--seed`, `--recipe`, `--init` of `genmodels train`.
    resume: continue the run in `out` from its latest checkpoint, with its config.toml.
    options: fields of the trainer (batch_size=128, ema_decay=0.999, device="cuda", report=False)
           or of the family's config (lr=2e-4, T=1000); see `route_options` for the rule and for
           data__FIELD / trainer__FIELD / model__FIELD.
    Raises ConfigError for an unknown option or value, before the run directory is touched.
    """
    if out is None:
        raise ConfigError(f"{SOURCE}: out is required (the run directory to write)")
    if recipe is not None and resume:
        raise ConfigError(f"{SOURCE}: recipe cannot be combined with resume: the run's own config.toml is used")
    run_config = RunDir(out).config
    if resume:
        if not run_config.is_file():
            raise ConfigError(f"{SOURCE}: resume: {out} holds no run to resume (no {run_config.name})")
    base = choose_base(model=model, out=out, resume=resume, recipe=recipe, init=init, zoo_root=zoo_root)
    if base is None:
        raise ConfigError(f"{SOURCE}: name the model (genmodels.train(\"ddpm\", ...)), a recipe or an init source")
    if model is not None and model != base.model_name:
        raise ConfigError(f"{SOURCE}: the config is for model {base.model_name!r} but the call names {model!r}")
    nested = route_options(type(base.model), options)
    if isinstance(data, dict):
        nested["data"] = {**nested.get("data", {}), **data}
    elif data is not None:
        nested.setdefault("data", {})["name"] = str(data)
    if steps is not None:
        nested.setdefault("trainer", {}).setdefault("steps", steps)
        nested["trainer"].setdefault("epochs", 0)    # steps win over epochs set by a recipe, as on the command line
    top = {"out": str(out), "seed": seed, "init": init}
    config = base.merge({**{k: v for k, v in top.items() if v is not None}, **nested}, SOURCE)
    config.validate()
    check_output_path(config.out, folder=True)
    fitted = fit_config(config, resume=resume, zoo_root=zoo_root, stored=base if resume else None)
    return load(fitted.result.run_dir, device=fitted.model.device, zoo_root=zoo_root)


def load(source: str | Path, device: str | torch.device = "cpu", *, ema: bool = True,
         zoo_root: str | Path | None = None) -> GenerativeModel:
    """The trained model of `source` in eval mode, ready to `sample(n, options, generator=...)`.

    source: a run directory written by `genmodels train` (its latest checkpoint; its EMA weights
    when it kept them, unless ema=False) or "zoo:NAME", a model shipped with the package
    (`genmodels zoo` lists them; zoo_root reads the entries of another folder). A model trained
    on VAE latents samples images, decoded through its VAE (as `genmodels sample` does).
    Raises ConfigError / CheckpointError naming the problem."""
    return decode_latents(load_source(source, device=device, ema=ema, zoo_root=zoo_root), device).model


def evaluate(source: str | Path, *, sample_options: dict[str, Any] | None = None,
             evaluate_options: dict[str, Any] | None = None, ema: bool = True, checkpoint: str | Path | None = None,
             zoo_root: str | Path | None = None, **settings) -> EvalReport:
    """The EvalReport `genmodels evaluate SOURCE` prints (`report.format_table()`, `report.to_dict()`
    for its --json): the model's samples against its data set's test split, beside the real-data floor.

    settings: fields of `genmodels.metrics.evaluate.EvalConfig` (metrics="fd,prdc", n=1000, seed=0,
    device="cpu", progress=False, ...), as the command's flags. sample_options / evaluate_options:
    {field: value} of the family's `sample_options` (sampler="dpm++", steps=20) and
    `evaluate_options` (DDPM: nll_estimates="bound"). ConfigError for an unknown name or value."""
    cfg = EvalConfig()
    update_dataclass(cfg, settings, "genmodels.evaluate()")
    validate_options(cfg, "evaluate")
    return evaluate_source(source, cfg, sample_options, given_evaluate=evaluate_options, ema=ema,
                           checkpoint=checkpoint, zoo_root=zoo_root)


def compare(sources: list[str | Path], *, sample_options: dict[str, dict[str, Any]] | None = None,
            ema: bool = True, zoo_root: str | Path | None = None, cache: str | Path | None = None,
            **settings) -> CompareTable:
    """The CompareTable `genmodels compare SOURCE ...` prints (`format_text()`, `format_markdown()`,
    `format_html()`, `to_dict()` for its --json): one row per source, measured on the same data set
    with the same metrics, and the real-data floor.

    settings: fields of `genmodels.report.compare.CompareConfig` (metrics, n, nll_n, k, seed, device,
    progress, ...). sample_options: {family: {field: value}} for every source of that family
    ({"ddpm": {"sampler": "dpm++", "steps": 20}}). cache: a folder keeping each row (`--cache DIR`)."""
    cfg = CompareConfig()
    update_dataclass(cfg, settings, "genmodels.compare()")
    validate_options(cfg, "compare")
    return compare_sources([str(s) for s in sources], cfg, ema=ema, sample_options=sample_options,
                           zoo_root=zoo_root, cache=RowCache(str(cache) if cache is not None else None))
