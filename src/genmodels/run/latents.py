"""Reading the VAE run behind `latents:VAE_RUN` data (`genmodels.data.latents`), which the data layer
leaves to the layers above it: `load_data` is `genmodels.data.load` with `read_vae` passed in."""

from __future__ import annotations

import os
from typing import cast

from genmodels.data.dataset import Dataset, Split
from genmodels.data.latents import PREFIX, Encoder, TrainedVae
from genmodels.data.load import load, load_config
from genmodels.errors import ConfigError
from genmodels.run.digest import weights_digest
from genmodels.run.load import load_run


def read_vae(run_path: str) -> TrainedVae:
    """The VAE of run `run_path` (latest checkpoint, EMA weights, CPU) and the data it trained on;
    ConfigError for a run of another family."""
    loaded = load_run(run_path, device="cpu", ema=True)
    if loaded.config.model_name != "vae":
        raise ConfigError(f"data {PREFIX + run_path!r}: {run_path} is a {loaded.config.model_name} run; "
                          f"latents:RUN_DIR needs a VAE run (`genmodels train vae`)")
    data, seed = loaded.config.data, loaded.config.seed

    def images(split: Split) -> Dataset:
        """The split of the data the VAE run trained on, prepared as it was (the train split keeps data.limit)."""
        return load(data.name, split, image_size=data.image_size, channels=data.channels,
                    binarize=data.binarize, limit=data.limit if split == "train" else 0, seed=seed)

    return TrainedVae(vae=cast(Encoder, loaded.model), step=loaded.step, sha256=weights_digest(loaded.model),
                      images=images)   # a VAE: it has encode()


def load_data(name_or_path: str | os.PathLike, split: Split = "train", **options) -> Dataset:
    """`genmodels.data.load` that also reads `latents:VAE_RUN` (the VAE run through `read_vae`)."""
    return load(name_or_path, split, read_vae=read_vae, **options)


def load_data_config(config, split: Split = "train", seed: int = 0) -> Dataset:
    """`genmodels.data.load_config` that also reads `latents:VAE_RUN` (the VAE run through `read_vae`)."""
    return load_config(config, split, seed, read_vae=read_vae)
