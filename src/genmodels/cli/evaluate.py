"""`genmodels evaluate RUN_DIR --metrics fd,kid,prdc,is [--n 10000] [--json]`: measure a trained model.

Samples the run's model (EMA weights by default), compares the samples with the data set's test
split and prints each figure beside the real-data floor (real test vs real train, same sizes).
Also:
  genmodels evaluate --real-vs-real DATASET                 the floor alone
  genmodels evaluate --samples FILE.npy --data DATASET      samples from a file (as written by
                                                            `genmodels sample --out FILE.npy`)
Metrics: fd (FD-<extractor>; FID only with --extractor inception), kid, prdc (precision, recall,
density, coverage), is, modes (2-D mixtures), parzen, and the model's own (e.g. nll, elbo).
The model's sampling options go as --sample-option KEY=VALUE (repeatable).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from genmodels.cli import add_config_flags, flag_values
from genmodels.errors import ConfigError, DataError

OWN_FLAGS = {"--json", "--real-vs-real", "--samples", "--data", "--ema", "--no-ema", "--checkpoint", "--sample-option"}


def register(subparsers) -> None:
    from genmodels.metrics.evaluate import EvalConfig

    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("evaluate", help="metrics of a run or of samples, beside the real-data floor",
                              description=lines[0] + "\n\n" + "\n".join(lines[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="?", default=None, metavar="RUN_DIR", help="a run directory written by `genmodels train`")
    p.add_argument("--real-vs-real", default=None, metavar="DATASET", help="print the real-data floor of DATASET alone")
    p.add_argument("--samples", default=None, metavar="FILE.npy", help="evaluate samples from a .npy file (needs --data)")
    p.add_argument("--data", default=None, metavar="DATASET", help="the data set the --samples are compared with")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--ema", default=True, action=argparse.BooleanOptionalAction, help="use the run's EMA weights when it kept them")
    p.add_argument("--checkpoint", default=None, metavar="FILE.pt", help="a checkpoint other than the run's latest")
    p.add_argument("--sample-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampling option of the run's model (see `genmodels sample RUN_DIR --help`)")
    group = p.add_argument_group("evaluation settings")
    mapping = add_config_flags(group, EvalConfig, dest_prefix="eval__", taken=OWN_FLAGS, rename_prefix="eval")
    p.set_defaults(func=run, eval_flags=mapping)


def _config(args: argparse.Namespace):
    from genmodels.config import update_dataclass
    from genmodels.metrics.evaluate import EvalConfig

    from genmodels.config_checks import validate_options

    cfg = EvalConfig()
    update_dataclass(cfg, flag_values(args, args.eval_flags), "evaluate")
    validate_options(cfg, "evaluate")
    return cfg


def _load(name: str, split: str, **options):
    from genmodels.data import load

    return load(name, split=split, **options)


def _sample_options(model_name: str, pairs: list[str]) -> dict:
    from genmodels.config import update_dataclass
    from genmodels.config_checks import validate_options
    from genmodels.models.registry import get_model

    options = get_model(model_name)[2]()
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--sample-option {pair!r}: expected KEY=VALUE")
        values[key.strip().replace("-", "_")] = value.strip()
    update_dataclass(options, values, "sample option")
    validate_options(options, "sample")
    return dataclasses.asdict(options)


def _data_options(data_cfg) -> dict:
    """The preparation the run trained with (resize, channels, binarisation), applied to the test split too."""
    return {k: getattr(data_cfg, k) for k in ("image_size", "channels", "binarize") if hasattr(data_cfg, k)}


def run(args: argparse.Namespace) -> int:
    from genmodels.metrics import evaluate as E

    modes = [m for m in (args.run_dir, args.real_vs_real, args.samples) if m is not None]
    if len(modes) != 1:
        raise ConfigError("give exactly one of RUN_DIR, --real-vs-real DATASET or --samples FILE.npy --data DATASET")
    if args.data is not None and args.samples is None:
        raise ConfigError("--data goes with --samples (a run knows its data set)")
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
        report = _evaluate_run(args, cfg)

    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return 0


def _evaluate_run(args: argparse.Namespace, cfg):
    from genmodels.metrics import evaluate as E
    from genmodels.latent_run import decode_latents
    from genmodels.train.run_dir import load_run, resolve_device
    from genmodels.train.seeds import derive_seed, private_global_rng

    device = resolve_device(cfg.device)
    loaded = load_run(args.run_dir, device=device, ema=args.ema, checkpoint=args.checkpoint)
    loaded = decode_latents(loaded, device)  # latents:VAE_RUN: decoded images, scored against the VAE's data
    data_name = loaded.config.data.name
    options = _data_options(loaded.config.data)
    train, test = _load(data_name, "train", **options), _load(data_name, "test", **options)
    sample_options = _sample_options(loaded.config.model_name, args.sample_option)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    title = (f"{loaded.config.model_name} on {data_name}, step {loaded.step}"
             f"{', EMA weights' if loaded.ema else ''}: {cfg.n} samples vs the test split")

    def samples(batch_size):
        return E.sample_batches(loaded.model, cfg.n, batch_size, generator, tuple(loaded.spec.shape), sample_options,
                                progress=cfg.progress, clamp=loaded.spec.kind == "image")

    with private_global_rng(seed=derive_seed(cfg.seed, "evaluate-global"), device=device):
        return E.evaluate(train, test, cfg, samples=samples, n_samples=cfg.n, model=loaded.model, title=title)
