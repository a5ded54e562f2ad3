"""Where a trained model comes from: a run directory written by `genmodels train`, or a zoo entry.

A *source* is the string a user types after `genmodels sample`, `evaluate`, `compare` or
`train --init`: a run directory's path, or `zoo:NAME` for a model shipped with the package
(`genmodels zoo` lists them). Everything that reads a trained model goes through here, so that a
zoo entry works wherever a run does.

Zoo entries are read from the package's own zoo unless `zoo_root` names another folder of entries
(`genmodels zoo export --dest DIR` writes one); it is an argument, never a setting held globally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from genmodels.config import RunConfig, dataclass_to_dict
from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError
from genmodels.run import LoadedRun, RunDir, load_run
from genmodels.run.metrics_file import training_cpu_minutes as run_cpu_minutes
from genmodels.zoo import load_zoo, zoo_card
from genmodels.zoo.load import ZooEntry, read_entry

ZOO_PREFIX = "zoo:"


@dataclass(frozen=True)
class SourceRecord:
    """A source as read before any weights (`read_source`): its run config and data spec and, for
    zoo:NAME, the entry's card as read once (`entry`), which `load_source(..., record=)` reuses."""

    source: str
    zoo_root: str | None
    config: RunConfig
    spec: DataSpec
    entry: ZooEntry | None = None

    @property
    def sample_defaults(self) -> dict:
        """The source's sampling defaults, as `LoadedRun.sample_defaults` will hold them: the zoo card's
        sample options, or the run's [sample] table."""
        if self.entry is not None:
            return dict(self.entry.card.get("sample_options") or {})
        return dict(self.config.sample)

    def matches(self, source: str | Path, zoo_root: str | Path | None) -> bool:
        """Whether this is the record of `source` read from `zoo_root`."""
        return self.source == str(source) and self.zoo_root == (str(zoo_root) if zoo_root is not None else None)


def is_zoo(source: str | Path) -> bool:
    """Whether `source` names a zoo entry (`zoo:NAME`) rather than a run directory."""
    return isinstance(source, str) and source.startswith(ZOO_PREFIX)


def zoo_name(source: str) -> str:
    """NAME of `zoo:NAME`."""
    return source[len(ZOO_PREFIX):]


def load_source(source: str | Path, device: str | torch.device = "cpu", ema: bool = True,
                checkpoint: str | Path | None = None, *, zoo_root: str | Path | None = None,
                record: SourceRecord | None = None) -> LoadedRun:
    """The model of a run directory (its latest checkpoint, or `checkpoint`) or of a zoo entry, in eval mode.

    A zoo entry holds one set of weights (the EMA weights where the run kept an EMA), so `ema` and
    `checkpoint` do not apply to it (a checkpoint is refused with a ConfigError); an entry of the
    sampling networks only leaves the others freshly initialised (LoadedRun.networks says which).
    `record`: the source as `read_source` read it already (its zoo card is not read again); a record
    of another source or zoo root is not used."""
    if is_zoo(source):
        if checkpoint is not None:
            raise ConfigError(f"{source}: a zoo entry has one set of weights; --checkpoint is for run directories")
        entry = record.entry if record is not None and record.matches(source, zoo_root) else None
        return load_zoo(zoo_name(source), device=device, root=zoo_root, entry=entry)
    return load_run(source, device=device, ema=ema, checkpoint=checkpoint)


def read_source(source: str | Path, *, zoo_root: str | Path | None = None) -> SourceRecord:
    """The run config and data spec of a source (and a zoo entry's card), without loading any weights."""
    root = str(zoo_root) if zoo_root is not None else None
    if is_zoo(source):
        entry = read_entry(zoo_name(source), root=zoo_root)
        return SourceRecord(str(source), root, entry.config, entry.spec, entry)
    config, spec = RunDir(source).read_config()
    return SourceRecord(str(source), root, config, spec)


def source_config(source: str | Path, *, zoo_root: str | Path | None = None) -> tuple[RunConfig, DataSpec]:
    """The run config and data spec of a source, without loading any weights."""
    record = read_source(source, zoo_root=zoo_root)
    return record.config, record.spec


def training_cpu_minutes(source: str | Path, *, zoo_root: str | Path | None = None) -> float | None:
    """CPU-minutes the source's training took (its metrics.jsonl, `genmodels.run.metrics_file`), or the
    zoo card's figure; None when it was not recorded."""
    if is_zoo(source):
        value = zoo_card(zoo_name(source), root=zoo_root).get("train_cpu_minutes")
        return float(value) if value is not None else None
    return run_cpu_minutes(RunDir(source).metrics)


def init_from_source(model, config: RunConfig, spec: DataSpec, source: str | Path, *,
                     zoo_root: str | Path | None = None) -> LoadedRun:
    """Copy the weights of `source` (its EMA weights where it kept an EMA) into every network of
    `model`, a freshly built model of `config` for data `spec`: the start of a fine-tuning run
    (`genmodels train --init SOURCE`). Its optimisers are left as they are (fresh).

    The source must be of the same family, built for data of the same kind, shape and classes,
    and with the same model config (its values after automatic defaults were resolved), else a
    ConfigError names what differs; a zoo entry of the sampling networks only (`zoo export
    --networks sampling`) is refused, naming the networks it lacks. Returns the source as loaded."""
    modules = model.modules()
    device = next((p.device for m in modules.values() for p in m.parameters()), torch.device("cpu"))
    src_config, src_spec = source_config(source, zoo_root=zoo_root)
    if src_config.model_name != config.model_name:
        raise ConfigError(f"--init {source}: it is a {src_config.model_name} model, this run trains "
                          f"{config.model_name}")
    theirs, ours = src_spec.to_dict(), spec.to_dict()    # kind, shape, num_classes (and the VAE of latents)
    theirs.setdefault("latent", None)
    ours.setdefault("latent", None)
    differ = [f"{k}: {theirs[k]!r} in the source vs {ours[k]!r} here" for k in theirs if theirs[k] != ours[k]]
    if differ:
        raise ConfigError(f"--init {source}: it was trained on other data ({'; '.join(differ)})")
    a, b = dataclass_to_dict(src_config.model), dataclass_to_dict(config.model)
    differ = [f"model.{k}: {a.get(k)!r} in the source vs {b.get(k)!r} here"
              for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if differ:
        raise ConfigError(f"--init {source}: the model config differs from the source's ({'; '.join(differ)}); "
                          f"fine-tuning keeps the source's model config (leave out MODEL, --recipe and --config "
                          f"to start from the source's own run config)")
    loaded = load_source(source, device=device, ema=True, zoo_root=zoo_root)
    missing = loaded.missing_networks()
    if missing:
        raise ConfigError(f"--init {source}: {source} stores only the sampling networks "
                          f"({', '.join(loaded.networks or ())}); fine-tuning needs every network of the model: "
                          f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in it")
    theirs_modules = loaded.model.modules()
    if set(theirs_modules) != set(modules):
        raise ConfigError(f"--init {source}: holds networks {sorted(theirs_modules)}, the model has {sorted(modules)}")
    with torch.no_grad():
        for name, module in modules.items():
            module.load_state_dict(theirs_modules[name].state_dict())
    return loaded


def reflow_from_source(model, config: RunConfig, spec: DataSpec, *, zoo_root: str | Path | None = None,
                       progress: bool = False) -> LoadedRun:
    """Start a flow reflow run (Liu et al. 2023; `genmodels train flow --reflow-from SOURCE`): read the
    previous flow config.model.reflow_from (a run directory or zoo:NAME; its EMA weights), check that it
    is a flow trained on data of the same kind, shape and classes, and hand it to the new model
    (`Flow.start_reflow`: its weights copied, the (noise, sample) pairs drawn, with a progress bar when
    `progress`). Returns the source as loaded."""
    from genmodels.models.flow import Flow  # lazy: a family loads on first use

    source = config.model.reflow_from
    loaded = load_source(source, device=model.device, ema=True, zoo_root=zoo_root)
    if not isinstance(loaded.model, Flow) or not isinstance(model, Flow):
        raise ConfigError(f"--reflow-from {source}: it is a {loaded.config.model_name} model; reflow needs a flow "
                          f"run (`genmodels train flow`) and trains a flow")
    theirs, ours = loaded.spec.to_dict(), spec.to_dict()
    differ = [f"{k}: {theirs.get(k)!r} in the source vs {ours.get(k)!r} here" for k in ("kind", "shape", "num_classes")
              if theirs.get(k) != ours.get(k)]
    if differ:
        raise ConfigError(f"--reflow-from {source}: it was trained on other data ({'; '.join(differ)}); pass its "
                          f"--data")
    pairs = reflow_pairs_of(config.model.reflow_pairs_from, config, device=model.device) \
        if config.model.reflow_pairs_from else None
    model.start_reflow(loaded.model, progress=progress, pairs=pairs)
    return loaded


REFLOW_PAIR_SETTINGS = ("reflow_from", "reflow_pairs", "reflow_seed", "reflow_sampler", "reflow_steps",
                        "class_conditional")    # what makes two reflow runs' pairs the same


def reflow_pairs_of(run: str | Path, config: RunConfig, *, device: str | torch.device = "cpu"):
    """The drawn pairs (`ReflowPairs`) of an earlier reflow run directory (its latest checkpoint), for
    a new reflow run of `config` that trains on the same pairs with other settings
    (model.reflow_pairs_from). ConfigError unless that run is a flow reflow that drew its pairs with the
    same REFLOW_PAIR_SETTINGS, as written in both configs."""
    from genmodels.models.flow import FlowConfig  # lazy: a family loads on first use

    where = f"--reflow-pairs-from {run}"
    if is_zoo(run):
        raise ConfigError(f"{where}: a zoo entry keeps no reflow pairs; name the reflow run's directory")
    theirs = read_source(run).config.model
    if not isinstance(theirs, FlowConfig) or not theirs.reflow_from:
        raise ConfigError(f"{where}: it is not a reflow run (a flow run with model.reflow_from)")
    there, here = dataclass_to_dict(theirs), dataclass_to_dict(config.model)
    differ = [f"model.{k}: {there[k]!r} there vs {here[k]!r} here" for k in REFLOW_PAIR_SETTINGS if there[k] != here[k]]
    if differ:
        raise ConfigError(f"{where}: its pairs were drawn otherwise ({'; '.join(differ)})")
    pairs = load_run(run, device=device, ema=False).model.pairs
    if pairs is None or not bool(pairs.filled):
        raise ConfigError(f"{where}: its checkpoint holds no drawn pairs")
    return pairs
