"""`genmodels sample RUN_DIR --n N --out PATH`: draw samples from a trained run (or zoo:NAME).

PATH ending in .png writes a grid of images (a scatter plot for 2-D data); PATH ending in .npy
writes float32 samples: images as (N, C, H, W) in [0, 1], points as (N, D) in data coordinates.
The model's own sampling options (sampler, steps, ...) are listed by
`genmodels sample RUN_DIR --help`. For an image DDPM run, `--inpaint IMAGE --mask MASK` fills the
mask's 0 pixels (RePaint) and `--init IMAGE --strength S` edits the image (SDEdit); a run trained
on `latents:VAE_RUN` writes its samples decoded through the VAE. RUN_DIR may be `zoo:NAME`, a model
shipped with the package (`genmodels zoo` lists them; --zoo-root DIR reads another zoo folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch

from genmodels.cli import add_config_flags, flag_values, help_requested, require_arg, sample_conditioning
from genmodels.errors import ConfigError, GenmodelsError

OUTPUT_SUFFIXES = (".png", ".npy")
CONDITIONING = ("--inpaint", "--mask", "--jump-length", "--resample", "--init", "--strength")  # sample_conditioning
OPTIONS = ("--n", "--out", "--seed", "--ema", "--no-ema", "--device", "--batch-size", "--checkpoint", "--zoo-root",
           "-h", "--help", *CONDITIONING)
VALUE_OPTIONS = ("--n", "--out", "--seed", "--device", "--batch-size", "--checkpoint", "--zoo-root", *CONDITIONING)


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
    p.add_argument("--batch-size", default=1000, type=int, metavar="B",
                   help="generate in chunks of this many samples (0 = all at once; default: 1000)")
    p.add_argument("--checkpoint", default=None, metavar="FILE.pt",
                   help="a checkpoint other than RUN_DIR/checkpoints/latest.pt (default: the latest)")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read zoo:NAME from the entries in DIR instead of the package's zoo (default: the package's)")
    sample_conditioning.add_arguments(p)
    mapping: dict[str, str] = {}
    run_dir = run_dir_from_argv(argv) if argv else None
    if run_dir is not None:
        try:
            options_cls = sample_options_class(run_dir, zoo_root_from_argv(argv))
        except GenmodelsError:
            if not help_requested(argv):
                raise
        else:
            group = p.add_argument_group("sampling options of this run's model")
            mapping = add_config_flags(group, options_cls, dest_prefix="sample__", taken=set(OPTIONS),
                                       rename_prefix="sample")
    else:
        p.epilog = "Each model has its own sampling options: run `genmodels sample RUN_DIR --help` to list them."
    p.set_defaults(func=run, sample_flags=mapping)


def run_dir_from_argv(argv: list[str]) -> str | None:
    """The RUN_DIR positional: the first token that is neither an option nor an option's value."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("-"):
            i += 2 if token in VALUE_OPTIONS else 1
            continue
        return token
    return None


def zoo_root_from_argv(argv: list[str]) -> str | None:
    """The value of --zoo-root DIR (or --zoo-root=DIR) in argv, else None."""
    for i, token in enumerate(argv):
        if token == "--zoo-root" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--zoo-root="):
            return token.partition("=")[2]
    return None


def sample_options_class(run_dir: str, zoo_root: str | None = None) -> type:
    """The SampleOptions dataclass of the family that trained `run_dir` (a run directory or zoo:NAME)."""
    from genmodels.models.registry import get_model
    from genmodels.sources import source_config

    config, _ = source_config(run_dir, zoo_root=zoo_root)
    try:
        return get_model(config.model_name)[2]
    except ImportError as e:
        raise ConfigError(f"model {config.model_name!r} cannot be loaded: {e}") from None


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


def draw(model, n: int, generator: torch.Generator, batch_size: int, options: dict) -> torch.Tensor:
    """n samples from model.sample in chunks of batch_size (0 = one chunk), same generator throughout."""
    chunk = batch_size if batch_size > 0 else n
    parts = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            parts.append(model.sample(min(chunk, n - start), generator=generator, **options).detach())
    return torch.cat(parts)


def run(args: argparse.Namespace) -> int:
    from genmodels.atomic import check_output_path
    from genmodels.config import update_dataclass
    from genmodels.config_checks import validate_options
    from genmodels.latent_run import decode_latents
    from genmodels.sources import load_source, sample_defaults
    from genmodels.run import resolve_device
    from genmodels.run.seeds import derive_seed, private_global_rng

    conditioned = sample_conditioning.requested(args)      # --inpaint / --init: n defaults to the images given
    n = args.n if conditioned else require_arg(args.n, "--n")
    out = require_arg(args.out, "--out")
    if n is not None and n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    if args.batch_size < 0:
        raise ConfigError(f"--batch-size must be >= 0 (0 = all at once), got {args.batch_size}")
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {out}: unknown file type; valid: {', '.join(OUTPUT_SUFFIXES)}")
    check_output_path(out)  # a folder, or a path under a file, is refused before any sampling
    options_cls = sample_options_class(args.run_dir, args.zoo_root)
    options = options_cls()
    update_dataclass(options, sample_defaults(args.run_dir, zoo_root=args.zoo_root), "the zoo entry's sample options")
    update_dataclass(options, flag_values(args, args.sample_flags), "sample options")
    validate_options(options, "sample")
    device = resolve_device(args.device)
    loaded = load_source(args.run_dir, device=device, ema=args.ema, checkpoint=args.checkpoint, zoo_root=args.zoo_root)
    loaded = decode_latents(loaded, device)  # a model of VAE latents (latents:VAE_RUN) samples decoded images
    if n is not None:
        check_sample_memory(n, loaded.spec.shape)
    generator = torch.Generator(device=device)
    generator.manual_seed(args.seed)
    with private_global_rng(seed=derive_seed(args.seed, "sample-global"), device=device):
        options_dict = dataclasses.asdict(options)
        if conditioned:
            x = sample_conditioning.draw_conditioned(loaded.model, args, n, generator, args.batch_size, options_dict,
                                                     tuple(loaded.spec.shape))
        else:
            x = draw(loaded.model, n, generator, args.batch_size, options_dict)
    n = len(x)
    title = f"{loaded.config.model_name}, step {loaded.step}{' (EMA)' if loaded.ema else ''}"
    nrow = loaded.model.sample_nrow(**options_dict)  # a model whose samples form a fixed layout says so
    path = write_samples(x, out, loaded.spec.kind, title, nrow=nrow)
    print(f"wrote {n} samples from {args.run_dir} (step {loaded.step}{', EMA' if loaded.ema else ''}) to {path}")
    return 0
