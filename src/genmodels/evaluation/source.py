"""Evaluating a trained model (a run directory or zoo:NAME), a file of samples, or the real-data floor.

`evaluate_loaded` is the one path of a model's evaluation, shared by `genmodels evaluate` and
`genmodels compare`: the family's sample options (`run_sample_options`, the zoo entry's under the
user's) and evaluation options (`evaluate_options`), the sampling plan of `genmodels.sampling`,
cfg.n samples drawn with a generator seeded by cfg.seed, then `measure.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmodels.config import DataConfig
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError, DataError
from genmodels.evaluation.measure import evaluate
from genmodels.evaluation.report import EvalReport
from genmodels.evaluation.shard import is_main, share
from genmodels.latent_run import decode_latents
from genmodels.metrics.evaluate import DEFAULT_BATCH, EvalConfig, MetricSettings, samples_from_array
from genmodels.run import LoadedRun, load_data, resolve_device
from genmodels.run.sample_options import evaluate_options, run_sample_options
from genmodels.run.seeds import derive_seed, private_global_rng
from genmodels.sampling import SamplingStats, check_sample_memory, request_seeds, sample_batches, sampling_plan
from genmodels.sources import SourceRecord, load_source

PREPARATION = ("image_size", "channels", "binarize")   # the [data] fields that prepare a data set's examples


def data_options(data_cfg: DataConfig) -> dict[str, Any]:
    """The preparation the run trained with (resize, channels, binarisation), applied to the test split too."""
    return {k: getattr(data_cfg, k) for k in PREPARATION}


def evaluation_data(data_cfg: DataConfig) -> tuple[Dataset, Dataset]:
    """(train, test) of a run's data set, prepared as the run trained on it (resize, channels, binarisation)."""
    options = data_options(data_cfg)
    return load_data(data_cfg.name, split="train", **options), load_data(data_cfg.name, split="test", **options)


def load_for_evaluation(source: str | Path, cfg: MetricSettings, ema: bool = True,
                        checkpoint: str | Path | None = None, zoo_root: str | Path | None = None,
                        record: SourceRecord | None = None) -> LoadedRun:
    """The LoadedRun of `source` (a run directory or zoo:NAME) on cfg.device, in eval mode; a model
    trained on `latents:VAE_RUN` comes back decoding its samples to the VAE's images. `record`: the
    source as `genmodels.sources.read_source` read it already."""
    device = resolve_device(cfg.device)
    loaded = load_source(source, device=device, ema=ema, checkpoint=checkpoint, zoo_root=zoo_root, record=record)
    return decode_latents(loaded, device)  # latents:VAE_RUN: decoded images, scored against the VAE's data


def evaluate_loaded(loaded: LoadedRun, cfg: EvalConfig, given: Mapping[str, Any] | None = None, *,
                    given_evaluate: Mapping[str, Any] | None = None,
                    data: tuple[Dataset, Dataset] | None = None, options: Any = None) -> EvalReport:
    """The EvalReport of a loaded model: cfg.n samples, the images of seeds cfg.seed .. cfg.seed+n-1
    (each from its own generator, `genmodels.sampling.seeds`; under torchrun each rank draws its
    strided share, `shard.py`) against the test split, beside the floor when cfg.floor. `given`
    ({field: value or text}) are sample options of the family, over the zoo entry's defaults (`run_sample_options`);
    `given_evaluate` its evaluation options (the model metrics'); `data` is (train, test) when the
    caller has loaded them already (they must be `evaluation_data(loaded.config.data)`); `options` the
    sample-options instance when the caller has built it already from `given`."""
    check_counts(cfg, tuple(loaded.spec.shape))
    device = resolve_device(cfg.device)
    data_name = loaded.config.data.name
    train, test = data if data is not None else evaluation_data(loaded.config.data)
    options = options if options is not None else run_sample_options(loaded, given)
    model_options = evaluate_options(loaded.model.evaluate_options, given_evaluate)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    title = (f"{loaded.config.model_name} on {data_name}, step {loaded.step}"
             f"{', EMA weights' if loaded.ema else ''}: {cfg.n} samples vs the test split")
    image = loaded.spec.kind == "image"
    stats = SamplingStats(unit="image" if image else "sample")

    mine = share(request_seeds(cfg.n, cfg.seed))     # this rank's seeds: seed + r, seed + r + W, ...

    def samples(_):      # the model's own batches: cfg.batch_size, or automatic from memory
        plan = sampling_plan(loaded, options, cfg.n, precision=cfg.precision, batch_size=cfg.batch_size or None,
                             cap=DEFAULT_BATCH)
        stats.precision = plan.precision
        return sample_batches(loaded.model, len(mine), plan.batch_size, generator, tuple(loaded.spec.shape), options,
                              progress=cfg.progress and is_main(), clamp=image, context=plan.context, stats=stats,
                              seeds=mine)

    with private_global_rng(seed=derive_seed(cfg.seed, "evaluate-global"), device=device):
        report = evaluate(train, test, cfg, samples=samples, n_samples=cfg.n, model=loaded.model,
                          model_options=model_options, title=title)
    report.sampling = stats if stats.n else None
    return report


def check_counts(cfg: MetricSettings, shape: tuple[int, ...]) -> None:
    """ConfigError naming the option when cfg.n samples, or a batch of cfg.k importance samples per
    example, of `shape` would not fit in memory: checked before anything is loaded or drawn."""
    check_sample_memory(cfg.n, shape)
    check_sample_memory(cfg.k * cfg.work_batch(), shape, "--k", f"importance samples ({cfg.k} for each of a batch of "
                        f"{cfg.work_batch()})", given=cfg.k)


def evaluate_source(source: str | Path, cfg: EvalConfig, given: Mapping[str, Any] | None = None, *,
                    given_evaluate: Mapping[str, Any] | None = None, ema: bool = True,
                    checkpoint: str | Path | None = None, zoo_root: str | Path | None = None,
                    options: Any = None, record: SourceRecord | None = None) -> EvalReport:
    """`genmodels evaluate SOURCE`: load a run directory or zoo:NAME and return its EvalReport.
    `options`, `record`: the sample-options instance and the source as read, when the command line
    has them already (`genmodels.cli.sample_flags.read_given`)."""
    loaded = load_for_evaluation(source, cfg, ema=ema, checkpoint=checkpoint, zoo_root=zoo_root, record=record)
    return evaluate_loaded(loaded, cfg, given, given_evaluate=given_evaluate, options=options)


def evaluate_floor(dataset: str, cfg: EvalConfig) -> EvalReport:
    """`genmodels evaluate --real-vs-real DATASET`: the real-data floor alone."""
    train, test = load_data(dataset, split="train"), load_data(dataset, split="test")
    return evaluate(train, test, cfg, title=f"real-data floor of {dataset}: test vs train")


def evaluate_file(path: str | Path, dataset: str, cfg: EvalConfig) -> EvalReport:
    """`genmodels evaluate --samples FILE.npy --data DATASET`: samples from a file (as `genmodels sample
    --out FILE.npy` writes them) against DATASET; the report notes the pixel range assumed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from e
    if not isinstance(array, np.ndarray):      # an .npz archive loads as a mapping of arrays
        array.close()
        raise DataError(f"{path}: an .npz archive, not one .npy array of samples (as `genmodels sample --out "
                        f"FILE.npy` writes)")
    if array.size == 0:
        raise DataError(f"{path}: an empty array (shape {tuple(array.shape)}), no samples to evaluate")
    train, test = load_data(dataset, split="train"), load_data(dataset, split="test")
    x, assumed = samples_from_array(array, tuple(test.x.shape[1:]), test.kind, str(path))
    n = min(cfg.n, len(x))
    mine = share(x[:n])                      # under torchrun: this rank's strided rows
    report = evaluate(train, test, cfg, samples=lambda bs: (mine[i:i + bs] for i in range(0, len(mine), bs)),
                      n_samples=n, title=f"{path.name} vs {dataset}")
    if assumed:
        report.notes.append(assumed)
    return report


def check_one_mode(source: object, real_vs_real: object, samples: object, data: object) -> None:
    """ConfigError unless exactly one of a source, a floor's data set or a samples file is given
    (and a data set only with the file)."""
    if sum(m is not None for m in (source, real_vs_real, samples)) != 1:
        raise ConfigError("give exactly one of SOURCE (a run directory or zoo:NAME), --real-vs-real DATASET or "
                          "--samples FILE.npy --data DATASET")
    if data is not None and samples is None:
        raise ConfigError("--data goes with --samples (a run or zoo entry knows its data set)")
    if samples is not None and data is None:
        raise ConfigError("--samples needs --data DATASET (the data set to compare with)")
