"""`latents:VAE_RUN`: the encoder means of a trained VAE run's data, for latent diffusion
(Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models").

    load("latents:runs/vae", split="train", read_vae=read_vae)  -> points Dataset (N, L), dataset.latent

The data layer does not read runs: the caller passes `read_vae`, which turns the run path into a
`TrainedVae` (its model, checkpoint step and the data it trained on); `genmodels.run.read_vae`
rebuilds it with `load_run` (its latest checkpoint, CPU), and `genmodels.run.load_data` is `load`
with it. The split of the data set the VAE trained on (with its [data] preparation; the train split
keeps its data.limit) is encoded to the means mu_phi(x) of q_phi(z | x). As in the LDM paper
(sec. 4.3.2, appendix G) the latents are multiplied by one scalar s = 1 / std, the standard
deviation over all latent dimensions of the *training* split's means, so that they have unit
variance; s, the VAE run, its checkpoint step and the digest of its weights go into the Dataset's
`latent` field, which the trainer records in the run's [spec] table, so that `genmodels sample` can
decode z = x / s through the VAE (`genmodels.latent_run`), and refuse a VAE retrained since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from genmodels.data.dataset import Dataset, LatentSource, Split
from genmodels.errors import ConfigError, DataError

PREFIX = "latents:"
ENCODE_BATCH = 1000   # images per encoder pass


class Encoder(Protocol):
    """What the data layer needs of a VAE: encode(x) -> (mu, log sigma^2) of q_phi(z | x)."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class TrainedVae:
    """A trained VAE run as `latents:VAE_RUN` uses it, read by the caller (`genmodels.run.read_vae`)."""

    vae: Encoder                           # the model, eval mode, on the CPU
    step: int                              # the checkpoint step it was read at
    sha256: str                            # the digest of its weights (`genmodels.run.digest.weights_digest`)
    images: Callable[[Split], Dataset]     # split -> that split of the data it trained on, prepared as it was


ReadVae = Callable[[str], TrainedVae]      # a VAE run's path -> the run (ConfigError for another family)


def is_latents(name: str) -> bool:
    """Whether a data name is the `latents:VAE_RUN` source."""
    return str(name).startswith(PREFIX)


@torch.no_grad()
def encoder_means(vae: Encoder, x: torch.Tensor) -> torch.Tensor:
    """mu_phi(x) (N, L) of the VAE's q_phi(z | x) for data x (N, ...), ENCODE_BATCH at a time."""
    return torch.cat([vae.encode(x[i:i + ENCODE_BATCH])[0].float().cpu() for i in range(0, len(x), ENCODE_BATCH)])


def latent_scale(mu: torch.Tensor) -> float:
    """The LDM scale factor s = 1 / std(mu) over all N x L entries (Rombach et al. 2022, sec. 4.3.2),
    rounded to 6 significant digits so that it survives the run's config.toml unchanged."""
    std = float(mu.double().std())
    if not std > 0:
        raise DataError("latents: the VAE's encoder means are all equal (std 0); is the VAE trained?")
    return float(f"{1.0 / std:.6g}")


def load_latents(name: str, split: Split = "train", read_vae: ReadVae | None = None, *, limit: int = 0,
                 image_size: int = 0, channels: int = 0, binarize: bool = False) -> Dataset:
    """The `latents:VAE_RUN` data set: points (N, L) = s mu_phi(x) for the VAE's `split`, with its labels.
    ConfigError for image options (they belong to the VAE's data), for no `read_vae` (runs are read
    above the data layer) or a run that is not a VAE (`read_vae` raises it)."""
    if image_size or channels or binarize:
        raise ConfigError(f"data {name!r}: data.image_size, data.channels and data.binarize do not apply to VAE "
                          f"latents (the VAE run's own [data] preparation is used)")
    run_path = name[len(PREFIX):]
    if not run_path:
        raise ConfigError("data 'latents:' names no VAE run: use latents:RUN_DIR, RUN_DIR written by "
                          "`genmodels train vae`")
    if read_vae is None:
        raise ConfigError(f"data {name!r}: the latents of a VAE run are read with its run: load them with "
                          f"genmodels.run.load_data (or pass read_vae=genmodels.run.read_vae)")
    trained = read_vae(run_path)
    train = trained.images("train")
    mu_train = encoder_means(trained.vae, train.x)
    s = latent_scale(mu_train)
    images = train if split == "train" else trained.images(split)
    mu = mu_train if split == "train" else encoder_means(trained.vae, images.x)
    x, y = s * mu, images.y
    if limit:
        x, y = x[:limit], None if y is None else y[:limit]
    return Dataset(x=x.contiguous(), y=y, name=name, kind="points", num_classes=images.num_classes,
                   meta={"source": f"encoder means of {run_path} (step {trained.step}) on {images.name}, x {s:g}"},
                   latent=LatentSource(vae_run=run_path, vae_step=trained.step, scale=s, vae_sha256=trained.sha256))
