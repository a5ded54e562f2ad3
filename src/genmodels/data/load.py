"""`load(name_or_path, split=...)`: the one entry point from a name or a path to a `Dataset`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import get_args

from genmodels.data.builtins import BUILTINS
from genmodels.data.convert import to_dataset
from genmodels.data.dataset import Dataset, Split
from genmodels.data.files import PATH_HELP, read_path
from genmodels.data.latents import ReadVae, is_latents, load_latents
from genmodels.errors import ConfigError, DataError, choice_error

SPLITS = get_args(Split)


def load(name_or_path: str | os.PathLike, split: Split = "train", *, image_size: int = 0, channels: int = 0,
         binarize: bool = False, limit: int = 0, seed: int = 0, read_vae: ReadVae | None = None) -> Dataset:
    """Load a built-in data set (see `BUILTINS`), the data at a path, or `latents:VAE_RUN` (the encoder
    means of a trained VAE run's data, `genmodels.data.latents`, read with `read_vae`, which the layers
    above pass: `genmodels.run.load_data` is this function with it), as one split.

    Returns a Dataset: images float32 (N, C, H, W) in [-1, 1] with int64 labels where they exist,
    or points (N, D). Options, applied in this order:
      limit:      keep only the first `limit` examples of the split (0 = all)
      image_size: scale the shorter side to this size and crop the centre square (0 = native)
      channels:   1 (grey, ITU-R 601-2 luma) or 3 (RGB, grey repeated); 0 = native
      binarize:   threshold intensities at 0.5 -> {-1, 1} (static binarisation for Bernoulli models;
                  see `dynamic_binarize` for a fresh sample each batch)
      seed:       the generator seed of the 2-D toys (their test split uses a different stream)
    Raises DataError for an unknown name, a missing source package (with the command that installs
    it) and any corrupt or badly shaped file; ConfigError for a bad option.
    """
    if split not in SPLITS:
        raise choice_error("split", split, SPLITS)
    if image_size < 0 or channels not in (0, 1, 3) or limit < 0:
        raise ConfigError(f"bad load options: image_size={image_size} (>= 0), channels={channels} (0, 1 or 3), "
                          f"limit={limit} (>= 0)")
    name = os.fspath(name_or_path)
    if is_latents(name):              # latents:VAE_RUN, a trained VAE's encoder means (latent diffusion)
        return load_latents(name, split, read_vae, limit=limit, image_size=image_size, channels=channels,
                            binarize=binarize)
    if name in BUILTINS:
        raw = BUILTINS[name].load_raw(split, seed)
    elif name and Path(name).exists():
        raw = read_path(Path(name), split, image_size=image_size, channels=channels, limit=limit)
    else:
        what = "no file or folder" if any(c in name for c in "/\\.") else "unknown data set"
        raise DataError(f"{what} {name!r}: built-in data sets are {', '.join(BUILTINS)}; {PATH_HELP}")
    return to_dataset(raw, name, split, image_size=image_size, channels=channels, binarize_images=binarize,
                      limit=limit)


def load_config(config, split: Split = "train", seed: int = 0, read_vae: ReadVae | None = None) -> Dataset:
    """`load` driven by a DataConfig-like object (fields name, image_size, channels, binarize, limit)."""
    return load(config.name, split, image_size=config.image_size, channels=config.channels,
                binarize=config.binarize, limit=config.limit, seed=seed, read_vae=read_vae)
