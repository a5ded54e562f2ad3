"""`genmodels evaluate SOURCE --metrics fd,kid,prdc,is [--n 10000] [--json]`: measure a trained model.

SOURCE is a run directory written by `genmodels train` or zoo:NAME, a model shipped with the
package (`genmodels zoo` lists them). Samples the model (a run's EMA weights by default), compares
the samples with the data set's test split and prints each figure beside the real-data floor
(real test vs real train, same sizes). Also:
  genmodels evaluate --real-vs-real DATASET                 the floor alone
  genmodels evaluate --samples FILE.npy --data DATASET      samples from a file (as written by
                                                            `genmodels sample --out FILE.npy`)
Metrics: fd (FD-<extractor>; FID only with --extractor inception), kid, prdc (precision, recall,
density, coverage), is, modes (2-D mixtures), parzen, and the model's own (e.g. nll, elbo).
The model's sampling options are the flags of `genmodels sample` (`--sampler dpm++ --steps 20`, listed
by `genmodels evaluate SOURCE --help`), or --sample-option KEY=VALUE (repeatable).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmodels.cli import add_config_flags, flag_values
from genmodels.cli.sample_flags import add_sample_flags, given, option_strings
from genmodels.errors import ConfigError, DataError
from genmodels.run.sample_options import ALIAS


def register(subparsers, argv: list[str] | None = None) -> None:
    from genmodels.metrics.evaluate import EvalConfig

    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("evaluate", help="metrics of a run or of samples, beside the real-data floor",
                              description=lines[0] + "\n\n" + "\n".join(lines[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="?", default=None, metavar="SOURCE",
                   help="a run directory written by `genmodels train`, or zoo:NAME (a model shipped with the package; "
                        "`genmodels zoo` lists them)")
    p.add_argument("--real-vs-real", default=None, metavar="DATASET",
                   help="print the real-data floor of DATASET alone")
    p.add_argument("--samples", default=None, metavar="FILE.npy",
                   help="evaluate samples from a .npy file (needs --data)")
    p.add_argument("--data", default=None, metavar="DATASET", help="the data set the --samples are compared with")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--ema", default=True, action=argparse.BooleanOptionalAction,
                   help="use the run's EMA weights when it kept them")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read zoo:NAME from DIR (written by `genmodels zoo export --dest DIR`) "
                        "instead of the package's zoo")
    p.add_argument("--checkpoint", default=None, metavar="FILE.pt", help="a checkpoint other than the run's latest "
                   "(run directories only)")
    group = p.add_argument_group("evaluation settings")
    own = option_strings(p) | {ALIAS}
    mapping = add_config_flags(group, EvalConfig, dest_prefix="eval__", taken=own, rename_prefix="eval")
    add_sample_flags(p, argv)
    p.set_defaults(func=run, eval_flags=mapping)


def _config(args: argparse.Namespace):
    from genmodels.config import update_dataclass
    from genmodels.config_checks import validate_options
    from genmodels.metrics.evaluate import EvalConfig

    cfg = EvalConfig()
    update_dataclass(cfg, flag_values(args, args.eval_flags), "evaluate")
    validate_options(cfg, "evaluate")
    return cfg


def _load(name: str, split: str, **options):
    from genmodels.data import load

    return load(name, split=split, **options)


def _data_options(data_cfg) -> dict:
    """The preparation the run trained with (resize, channels, binarisation), applied to the test split too."""
    return {k: getattr(data_cfg, k) for k in ("image_size", "channels", "binarize") if hasattr(data_cfg, k)}


def run(args: argparse.Namespace) -> int:
    from genmodels.metrics import evaluate as E

    modes = [m for m in (args.run_dir, args.real_vs_real, args.samples) if m is not None]
    if len(modes) != 1:
        raise ConfigError("give exactly one of SOURCE (a run directory or zoo:NAME), --real-vs-real DATASET or "
                          "--samples FILE.npy --data DATASET")
    if args.data is not None and args.samples is None:
        raise ConfigError("--data goes with --samples (a run or zoo entry knows its data set)")
    cfg = _config(args)

    if args.real_vs_real is not None:
        train, test = _load(args.real_vs_real, "train"), _load(args.real_vs_real, "test")
        report = E.evaluate(train, test, cfg, title=f"real-data floor of {args.real_vs_real}: test vs train")
    elif args.samples is not None:
        if args.data is None:
            raise ConfigError("--samples needs --data DATASET (the data set to compare with)")
        path = Path(args.samples)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: not a readable .npy array ({e})") from e
        train, test = _load(args.data, "train"), _load(args.data, "test")
        x, assumed = E.samples_from_array(array, tuple(test.x.shape[1:]), test.kind, str(path))
        n = min(cfg.n, len(x))
        report = E.evaluate(train, test, cfg, samples=lambda bs: (x[i:i + bs] for i in range(0, n, bs)), n_samples=n,
                            title=f"{path.name} vs {args.data}")
        if assumed:
            report.notes.append(assumed)
    else:
        report = evaluate_source(args.run_dir, cfg, given(args), ema=args.ema, checkpoint=args.checkpoint,
                                 zoo_root=args.zoo_root)

    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return 0


# ---------------------------------------------------------------------------------------------
# Evaluating a trained model (shared with `genmodels compare`)


def load_for_evaluation(source, cfg, ema: bool = True, checkpoint=None, zoo_root=None):
    """The LoadedRun of `source` (a run directory or zoo:NAME) on cfg.device, in eval mode; a model
    trained on `latents:VAE_RUN` comes back decoding its samples to the VAE's images."""
    from genmodels.latent_run import decode_latents
    from genmodels.run import resolve_device
    from genmodels.sources import load_source

    device = resolve_device(cfg.device)
    loaded = load_source(source, device=device, ema=ema, checkpoint=checkpoint, zoo_root=zoo_root)
    return decode_latents(loaded, device)  # latents:VAE_RUN: decoded images, scored against the VAE's data


def evaluation_data(data_cfg):
    """(train, test) of a run's data set, prepared as the run trained on it (resize, channels, binarisation)."""
    options = _data_options(data_cfg)
    return _load(data_cfg.name, "train", **options), _load(data_cfg.name, "test", **options)


def evaluate_loaded(loaded, cfg, given: Mapping[str, Any] | None = None, *, data=None):
    """The EvalReport of a loaded model: cfg.n samples drawn with a generator seeded by cfg.seed
    against the test split, beside the floor when cfg.floor. `given` ({field: value or text}) are
    sample options of the family, over the zoo entry's defaults (`run_sample_options`); `data` is
    (train, test) when the caller has loaded them already (they must be
    `evaluation_data(loaded.config.data)`)."""
    from genmodels.metrics import evaluate as E
    from genmodels.run import resolve_device
    from genmodels.run.sample_options import run_sample_options
    from genmodels.run.seeds import derive_seed, private_global_rng
    from genmodels.training.inference import sampling_plan

    device = resolve_device(cfg.device)
    data_name = loaded.config.data.name
    train, test = data if data is not None else evaluation_data(loaded.config.data)
    options = run_sample_options(loaded, given)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    title = (f"{loaded.config.model_name} on {data_name}, step {loaded.step}"
             f"{', EMA weights' if loaded.ema else ''}: {cfg.n} samples vs the test split")
    image = loaded.spec.kind == "image"
    stats = E.SamplingStats(unit="image" if image else "sample")

    def samples(_):      # the model's own batches: cfg.batch_size, or automatic from memory
        plan = sampling_plan(loaded, options, cfg.n, precision=cfg.precision, batch_size=cfg.batch_size or None,
                             cap=E.DEFAULT_BATCH)
        stats.precision = plan.precision
        return E.sample_batches(loaded.model, cfg.n, plan.batch_size, generator, tuple(loaded.spec.shape), options,
                                progress=cfg.progress, clamp=image, context=plan.context, stats=stats)

    with private_global_rng(seed=derive_seed(cfg.seed, "evaluate-global"), device=device):
        report = E.evaluate(train, test, cfg, samples=samples, n_samples=cfg.n, model=loaded.model, title=title)
    report.sampling = stats if stats.n else None
    return report


def evaluate_source(source, cfg, given: Mapping[str, Any] | None = None, ema: bool = True, checkpoint=None,
                    zoo_root=None):
    """`genmodels evaluate SOURCE`: load a run directory or zoo:NAME and return its EvalReport."""
    return evaluate_loaded(load_for_evaluation(source, cfg, ema=ema, checkpoint=checkpoint, zoo_root=zoo_root),
                           cfg, given)
