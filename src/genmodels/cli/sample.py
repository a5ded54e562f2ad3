"""`genmodels sample RUN_DIR --n N --out PATH`: draw samples from a trained run (or zoo:NAME).

PATH ending in .png writes a grid of images (a scatter plot for 2-D data); PATH ending in .npy
writes float32 samples: images as (N, C, H, W) in [0, 1], points as (N, D) in data coordinates.
The model's own sampling options (sampler, steps, ...) are listed by
`genmodels sample RUN_DIR --help` (or given as --sample-option KEY=VALUE). Sampling runs in
inference mode in the run's precision, in batches chosen from the free memory unless --batch-size
says otherwise, and ends with a line giving the images/s. For an image DDPM run, `--inpaint IMAGE --mask MASK` fills the
mask's 0 pixels (RePaint) and `--init IMAGE --strength S` edits the image (SDEdit); a run trained
on `latents:VAE_RUN` writes its samples decoded through the VAE. RUN_DIR may be `zoo:NAME`, a model
shipped with the package (`genmodels zoo` lists them; --zoo-root DIR reads another zoo folder).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import get_args

import torch

from genmodels.cli import require_arg, sample_conditioning, sample_flags
from genmodels.errors import ConfigError
from genmodels.metrics.evaluate import SamplingPrecision

OUTPUT_SUFFIXES = (".png", ".npy")
BATCH_CAP = 1000     # the most samples per automatic batch (genmodels.run.sample_batch) on an accelerator
# on a CPU, larger batches than this only add page faults: 1,000 DPM-Solver++-20 samples of zoo:ddpm-mnist on one
# thread took 42.8 CPU-s (user + system) at batch 1,000 in bf16 against 35.7 at 500 and 36.5 at 250, and 88.0
# against 68.2 and 59.6 in fp32 (measured on a busy 2-core machine); 500 is also evaluate's cap
CPU_BATCH_CAP = 500
CONDITIONING = ("--inpaint", "--mask", "--jump-length", "--resample", "--init", "--strength")  # sample_conditioning
# the command's own flags: a sample option of the same name gets the flag --sample-NAME instead
OPTIONS = ("--n", "--out", "--seed", "--ema", "--no-ema", "--device", "--batch-size", "--precision", "--checkpoint",
           "--zoo-root", "--sample-option", "-h", "--help", *CONDITIONING)


def register(subparsers, argv: list[str] | None = None) -> None:
    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("sample", help="draw samples from a trained run (.png grid or .npy array)",
                              description=lines[0] + "\n\n" + "\n".join(lines[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `genmodels train`, or zoo:NAME "
                                                      "(a model of the zoo, see `genmodels zoo`)")
    p.add_argument("--n", default=None, type=int, metavar="N",
                   help="number of samples (required, except with --inpaint / --init: default the number of images)")
    p.add_argument("--out", default=None, metavar="PATH", help="output file, .png or .npy (required)")
    p.add_argument("--seed", default=0, type=int, metavar="S", help="seed of the sampling generator (default: 0)")
    p.add_argument("--ema", default=True, action=argparse.BooleanOptionalAction,
                   help="use the EMA weights when the run kept them (default: true)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--batch-size", default=None, type=int, metavar="B",
                   help=f"generate in chunks of this many samples (0 = all at once; default: automatic, from the "
                        f"free memory, at most {CPU_BATCH_CAP} on a CPU and {BATCH_CAP} elsewhere)")
    p.add_argument("--precision", default="run", choices=get_args(SamplingPrecision),
                   help="precision of the sampling: run (the run's trainer.precision, fp32 where this device does "
                        "not run it natively), fp32, bf16 or fp16 (default: run)")
    p.add_argument("--checkpoint", default=None, metavar="FILE.pt",
                   help="a checkpoint other than RUN_DIR/checkpoints/latest.pt (default: the latest)")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read zoo:NAME from the entries in DIR instead of the package's zoo (default: the package's)")
    sample_conditioning.add_arguments(p)
    sample_flags.add_sample_flags(p, argv, taken=OPTIONS)
    p.set_defaults(func=run)


def write_samples(x: torch.Tensor, path: str | Path, kind: str, title: str = "", nrow: int | None = None) -> Path:
    """Save samples (n, C, H, W) in [-1, 1] or points (n, D) to a .png or .npy file; `nrow` images
    per row in a grid (None = near-square)."""
    import numpy as np

    from genmodels.viz import save_grid, save_scatter

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {path}: unknown file type {suffix or '(none)'}; valid: {', '.join(OUTPUT_SUFFIXES)}")
    x = x.detach().float().cpu()
    if suffix == ".npy":
        from genmodels.atomic import atomic_file

        array = ((x + 1) / 2).clamp(0, 1) if kind == "image" else x
        with atomic_file(path) as f:  # a reader never finds a truncated array that loads as real output
            np.save(f, array.numpy().astype(np.float32))
        return path
    if kind == "image":
        return save_grid(x, path, nrow=nrow, scale=max(1, 64 // x.shape[-1]))
    if x.shape[1] < 2:
        raise ConfigError(f"--out {path}: a scatter plot needs at least 2-D points, got shape {tuple(x.shape)}")
    return save_scatter(x[:, :2], path, title=title)


def check_sample_memory(n: int, shape: tuple[int, ...]) -> None:
    """ConfigError when n float32 samples of `shape` (the array the command returns) would not fit
    in this machine's memory, before any is drawn."""
    from genmodels.run.model_size import format_bytes, memory_bytes

    need = 4 * n * math.prod(shape)
    have = memory_bytes(torch.device("cpu"))
    if have is not None and need > have:
        raise ConfigError(f"--n {n}: {n} samples of shape {tuple(shape)} need {format_bytes(need)}, more than this "
                          f"machine's {format_bytes(have)} of memory; draw fewer per call")


def run(args: argparse.Namespace) -> int:
    from genmodels.atomic import check_output_path
    from genmodels.latent_run import decode_latents
    from genmodels.metrics.evaluate import SamplingStats, sample_batches
    from genmodels.models.base import option_values
    from genmodels.run import resolve_device
    from genmodels.run.sample_options import run_sample_options
    from genmodels.run.seeds import derive_seed, private_global_rng
    from genmodels.sources import load_source
    from genmodels.training.inference import sampling_plan

    conditioned = sample_conditioning.requested(args)      # --inpaint / --init: n defaults to the images given
    n = args.n if conditioned else require_arg(args.n, "--n")
    out = require_arg(args.out, "--out")
    if n is not None and n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    if args.batch_size is not None and args.batch_size < 0:
        raise ConfigError(f"--batch-size must be >= 0 (0 = all at once), got {args.batch_size}")
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {out}: unknown file type; valid: {', '.join(OUTPUT_SUFFIXES)}")
    check_output_path(out)  # a folder, or a path under a file, is refused before any sampling
    given = sample_flags.given(args)                        # checked before any weights are read
    device = resolve_device(args.device)
    loaded = load_source(args.run_dir, device=device, ema=args.ema, checkpoint=args.checkpoint, zoo_root=args.zoo_root)
    loaded = decode_latents(loaded, device)  # a model of VAE latents (latents:VAE_RUN) samples decoded images
    options = run_sample_options(loaded, given)              # the zoo entry's defaults under the flags
    if n is not None:
        check_sample_memory(n, loaded.spec.shape)
    generator = torch.Generator(device=device)
    generator.manual_seed(args.seed)
    image = loaded.spec.kind == "image"
    stats = SamplingStats(unit="image" if image else "sample")
    with private_global_rng(seed=derive_seed(args.seed, "sample-global"), device=device):
        given_batch = args.batch_size if args.batch_size is None or args.batch_size > 0 else (n or 0)  # 0: one chunk
        cap = CPU_BATCH_CAP if device.type == "cpu" else BATCH_CAP
        plan = sampling_plan(loaded, options, n or cap, precision=args.precision, cap=cap,
                             batch_size=given_batch)
        stats.precision = plan.precision
        if conditioned:
            began = time.perf_counter()
            with plan.context():
                x = sample_conditioning.draw_conditioned(loaded.model, args, n, generator, plan.batch_size, options,
                                                         tuple(loaded.spec.shape))
            x = x.float().clone()                          # an ordinary tensor again, outside inference mode
            stats.n, stats.seconds, stats.batch_size = len(x), time.perf_counter() - began, plan.batch_size or len(x)
        else:
            x = torch.cat(list(sample_batches(loaded.model, n, plan.batch_size, generator, tuple(loaded.spec.shape),
                                              options, progress=sys.stderr.isatty(), clamp=image,
                                              context=plan.context, stats=stats)))
    n = len(x)
    title = f"{loaded.config.model_name}, step {loaded.step}{' (EMA)' if loaded.ema else ''}"
    nrow = loaded.model.sample_nrow(**option_values(options))  # a model whose samples form a fixed layout says so
    path = write_samples(x, out, loaded.spec.kind, title, nrow=nrow)
    print(f"wrote {n} samples from {args.run_dir} (step {loaded.step}{', EMA' if loaded.ema else ''}) to {path}")
    print(f"sampling: {stats.summary()}")
    return 0
