"""The `genmodels sample` options that condition an image DDPM on images: --inpaint/--mask (RePaint)
and --init/--strength (SDEdit). The maths is `genmodels.diffusion.conditioning`; the model
methods `DDPM.inpaint` and `DDPM.img2img` (a family declares them in `capabilities`, see
`genmodels.models.base.TASKS`); this module reads the files and draws in chunks."""

from __future__ import annotations

import argparse

import torch

from genmodels.data.image_inputs import MASKS, read_images, read_mask
from genmodels.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inpainting and image-to-image (image DDPM runs; --n defaults to the number of images, "
                             "which are repeated in turn to make --n)")
    g.add_argument("--inpaint", default=None, metavar="IMAGE",
                   help="RePaint (Lugmayr et al. 2022): keep the known pixels of IMAGE and fill the others; IMAGE is "
                        "a PNG, or a .npy of one image or a batch (N, C, H, W) in [0, 1] or 0..255, of the run's size "
                        "(default: none, plain sampling)")
    g.add_argument("--mask", default=None, metavar="MASK",
                   help="with --inpaint: which pixels are known, a PNG or .npy of the image's size with 1 (white) = "
                        f"keep (known) and 0 (black) = fill, one or one per image; or one of {', '.join(MASKS)} "
                        "(default: none; required with --inpaint)")
    g.add_argument("--jump-length", default=10, type=int, metavar="J",
                   help="RePaint's jump length j (their sec. 4.2; default: 10)")
    g.add_argument("--resample", default=10, type=int, metavar="R",
                   help="RePaint's resampling count r: each jump is made r - 1 times (default: 10; 1 = none); "
                        "about r x --steps network calls")
    g.add_argument("--init", default=None, metavar="IMAGE",
                   help="SDEdit (Meng et al. 2022): noise IMAGE (as for --inpaint) to t0 = round(S T) and run the "
                        "chosen sampler from t0 to 0 (default: none, plain sampling)")
    g.add_argument("--strength", default=None, type=float, metavar="S",
                   help="with --init: S in [0, 1], 0 = return IMAGE, 1 = start from q(x_T | x_0) (default: 0.5)")


def requested(args: argparse.Namespace) -> bool:
    """Whether the command conditions on images; ConfigError for a flag given without its partner."""
    if args.inpaint is not None and args.init is not None:
        raise ConfigError("--inpaint and --init are two different tasks; give one of them")
    if args.inpaint is not None and args.mask is None:
        raise ConfigError("--inpaint needs --mask MASK (1 = keep, 0 = fill)")
    if args.mask is not None and args.inpaint is None:
        raise ConfigError("--mask goes with --inpaint IMAGE")
    if args.strength is not None and args.init is None:
        raise ConfigError("--strength goes with --init IMAGE")
    if args.inpaint is None and (args.jump_length != 10 or args.resample != 10):
        raise ConfigError("--jump-length and --resample go with --inpaint IMAGE")
    return args.inpaint is not None or args.init is not None


def _repeat(x: torch.Tensor, n: int) -> torch.Tensor:
    """Examples 0, 1, ..., B - 1, 0, 1, ... of x, n in all."""
    return x[torch.arange(n) % len(x)]


def draw_conditioned(model, args: argparse.Namespace, n: int | None, generator: torch.Generator, batch_size: int,
                     options, shape: tuple[int, ...]) -> torch.Tensor:
    """The inpainted or SDEdit images (n, C, H, W) in [-1, 1], in chunks of batch_size (0 = one);
    `options` is the model's sample-options instance."""

    task = "inpaint" if args.inpaint is not None else "img2img"
    if not model.supports(task):          # the optional tasks of genmodels.models.base.TASKS
        raise ConfigError(f"--{'inpaint' if task == 'inpaint' else 'init'} needs an image DDPM run; this run's model "
                          f"has no {task}")
    if len(shape) != 3:
        raise ConfigError(f"--inpaint / --init need a run trained on images; its data have shape {tuple(shape)}")
    images = read_images(args.inpaint or args.init, shape)
    mask = read_mask(args.mask, shape) if task == "inpaint" else None
    if mask is not None and len(mask) not in (1, len(images)):
        raise ConfigError(f"--mask {args.mask}: {len(mask)} masks for {len(images)} images; give one or one per image")
    n = len(images) if n is None else n
    images = _repeat(images, n)
    if mask is not None:
        mask = _repeat(mask, n) if len(mask) > 1 else mask
    chunk = batch_size if batch_size > 0 else n
    parts = []
    for start in range(0, n, chunk):
        x = images[start:start + chunk]
        if task == "inpaint":
            m = mask if len(mask) == 1 else mask[start:start + chunk]
            parts.append(model.inpaint(x, m, generator=generator, jump_length=args.jump_length,
                                       resample=args.resample, options=options))
        else:
            strength = 0.5 if args.strength is None else args.strength
            parts.append(model.img2img(x, strength, generator=generator, options=options))
    return torch.cat(parts)


def drawer(args: argparse.Namespace):
    """The conditioned draw of `genmodels.sampling.draw_source` for these flags (--inpaint or --init)."""
    def draw(model, n, generator, batch_size, options, shape):
        return draw_conditioned(model, args, n, generator, batch_size, options, shape)

    return draw
