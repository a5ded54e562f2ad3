"""Latent diffusion runs (Rombach et al. 2022): a model trained on `latents:VAE_RUN`, seen as an image model.

`decode_latents(loaded)` turns the LoadedRun of a model trained on VAE latents (its [spec] table
holds a `latent` entry, `genmodels.data.latents`) into one whose samples are images: each latent
sample x (N, L) is unscaled, z = x / s, and decoded through the VAE run's decoder, the mean of
p_theta(x | z). Its spec is the VAE's (images) and its config's [data] table the VAE's, so that
`genmodels sample` writes images and `genmodels evaluate` scores them against the VAE's data set.
Any other run is returned unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from genmodels.errors import ConfigError
from genmodels.models.base import GenerativeModel
from genmodels.run import LoadedRun, load_run
from genmodels.run.digest import weights_digest


class LatentDecoded(GenerativeModel):
    """A model over VAE latents composed with the VAE's decoder: sample(n) -> images (n, C, H, W).
    It samples only: it has no model-specific metrics (likelihoods of latents are not likelihoods
    of images), no views, and is trained as its two parts (the VAE, then the prior on its latents)."""

    def __init__(self, prior: GenerativeModel, vae: GenerativeModel, scale: float):
        self.prior, self.vae, self.scale = prior, vae, scale
        self.config = prior.config
        self.spec = vae.spec
        self.sample_options = prior.sample_options     # the prior's sampler options apply
        self.device = prior.device

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx) -> dict[str, float]:
        """Refused: train the VAE, then the prior on `latents:VAE_RUN`."""
        raise ConfigError("a latent-decoded model is not trained as one: train the VAE, then the prior on "
                          "latents:VAE_RUN")

    def sample(self, n: int, options=None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images: x ~ the prior's sampler (`options`: an instance of the prior's sample options),
        z = x / s, then E[x | z] of the VAE's decoder."""
        return self._decode(self.prior.sample(n, options, generator=generator))

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(x / self.scale, mean=True)                 # z = x / s (LDM scale factor)

    def modules(self) -> dict[str, torch.nn.Module]:
        """The prior's networks and the VAE's (prefixed vae_)."""
        return {**self.prior.modules(), **{f"vae_{k}": m for k, m in self.vae.modules().items()}}

    def optimizers(self) -> dict:
        """None: the composite is not trained."""
        return {}


def decode_latents(loaded: LoadedRun, device: str | torch.device = "cpu") -> LoadedRun:
    """The run's samples decoded through its VAE when it was trained on `latents:VAE_RUN`, else `loaded`.
    ConfigError when the VAE run is gone, was trained further than the latents the model learnt, or
    holds other weights than the VAE whose latents it learnt (retrained at the same path: the digest
    of its weights, recorded in the run's [spec] table, differs; both are named)."""
    latent = loaded.spec.latent
    if latent is None:
        return loaded
    if not Path(latent.vae_run).is_dir():
        raise ConfigError(f"this run was trained on the latents of the VAE run {latent.vae_run}, which is not there "
                          f"(relative paths are read from the current folder)")
    vae_run = load_run(latent.vae_run, device=device, ema=True)
    if vae_run.step != latent.vae_step:
        raise ConfigError(f"{latent.vae_run} is now at step {vae_run.step}, but this run learnt its latents at step "
                          f"{latent.vae_step}; decode with that checkpoint (or retrain the latent model)")
    digest = weights_digest(vae_run.model)
    if latent.vae_sha256 and digest != latent.vae_sha256:
        raise ConfigError(f"{latent.vae_run} holds other weights than the VAE whose latents this run learnt "
                          f"(sha256 {digest[:16]}... now, {latent.vae_sha256[:16]}... when it was trained): the VAE "
                          f"was retrained at the same path; retrain the latent model on latents:{latent.vae_run}")
    config = dataclasses.replace(loaded.config, data=vae_run.config.data)
    return dataclasses.replace(loaded, model=LatentDecoded(loaded.model, vae_run.model, latent.scale), config=config,
                               spec=vae_run.spec)
