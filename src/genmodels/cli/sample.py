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
import sys
from pathlib import Path
from typing import get_args

from genmodels.atomic import check_output_path
from genmodels.cli import require_arg, sample_conditioning, sample_flags
from genmodels.errors import ConfigError
from genmodels.metrics.evaluate import SamplingPrecision
from genmodels.sampling import draw_source, parse_seeds, write_samples
from genmodels.sampling.loop import OUTPUT_SUFFIXES
from genmodels.sampling.plan import BATCH_CAP, CPU_BATCH_CAP
from genmodels.training import distributed

CONDITIONING = ("--inpaint", "--mask", "--jump-length", "--resample", "--init", "--strength")  # sample_conditioning
# the command's own flags: a sample option of the same name gets the flag --sample-NAME instead
OPTIONS = ("--n", "--seeds", "--out", "--seed", "--ema", "--no-ema", "--device", "--batch-size", "--precision",
           "--checkpoint", "--zoo-root", "--sample-option", "-h", "--help", *CONDITIONING)


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
    p.add_argument("--seed", default=0, type=int, metavar="S",
                   help="the first image's seed: --n N draws the images of seeds S .. S+N-1 (default: 0)")
    p.add_argument("--seeds", default=None, metavar="A-B",
                   help="the images' seeds instead of --n/--seed, e.g. 0-49999 or 1,5,10-20: each image is a "
                        "function of its seed alone, at any batch size and number of processes (default: none, the "
                        "seeds of --n and --seed)")
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


def run(args: argparse.Namespace) -> int:
    conditioned = sample_conditioning.requested(args)      # --inpaint / --init: n defaults to the images given
    if args.seeds is not None and (args.n is not None or conditioned):
        raise ConfigError("--seeds names the images itself: give it without --n, --inpaint or --init")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    n = len(seeds) if seeds is not None else args.n if conditioned else require_arg(args.n, "--n")
    out = require_arg(args.out, "--out")
    if n is not None and n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    if args.batch_size is not None and args.batch_size < 0:
        raise ConfigError(f"--batch-size must be >= 0 (0 = all at once), got {args.batch_size}")
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {out}: unknown file type; valid: {', '.join(OUTPUT_SUFFIXES)}")
    check_output_path(out)  # a folder, or a path under a file, is refused before any sampling
    # the options, built and checked once; RePaint runs its own ancestral steps, so the run's recorded
    # sampler (e.g. a 20-step solver) does not apply to --inpaint: only the flags given do
    given = sample_flags.read_given(args, use_defaults=args.inpaint is None)
    with distributed.session(args.device) as (info, device):    # under torchrun: strided seeds, rank 0 writes
        drawn = draw_source(args.run_dir, n, given.values, seed=args.seed, ema=args.ema, device=str(device),
                            batch_size=args.batch_size, precision=args.precision, checkpoint=args.checkpoint,
                            zoo_root=args.zoo_root, progress=sys.stderr.isatty(),
                            conditioned=sample_conditioning.drawer(args) if conditioned else None,
                            options=given.options, record=args.source_record, seeds=seeds)
    if not info.is_main:
        return 0
    loaded = drawn.loaded
    title = f"{loaded.config.model_name}, step {loaded.step}{' (EMA)' if loaded.ema else ''}"
    path = write_samples(drawn.x, out, loaded.spec.kind, title, nrow=drawn.nrow)
    print(f"wrote {len(drawn.x)} samples from {args.run_dir} (step {loaded.step}{', EMA' if loaded.ema else ''}) "
          f"to {path}")
    print(f"sampling: {drawn.stats.summary()}")
    return 0
