"""Named model families. Each entry imports its family lazily, so that `genmodels datasets`
does not pay for importing every network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from genmodels.errors import choice_error


@dataclass(frozen=True)
class ModelEntry:
    """A registered family: `load()` returns (ModelClass, ConfigClass, SampleOptionsClass)."""

    name: str
    description: str
    load: Callable[[], tuple[type, type, type]]


def _ddpm():
    from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions

    return DDPM, DDPMConfig, DDPMSampleOptions


def _gan():
    from genmodels.models.gan import GAN, GANConfig, GANSampleOptions

    return GAN, GANConfig, GANSampleOptions


def _infogan():
    from genmodels.models.infogan import InfoGAN, InfoGANConfig, InfoGANSampleOptions

    return InfoGAN, InfoGANConfig, InfoGANSampleOptions


def _vae():
    from genmodels.models.vae import VAE, VAEConfig, VAESampleOptions

    return VAE, VAEConfig, VAESampleOptions


MODELS: dict[str, ModelEntry] = {
    "ddpm": ModelEntry("ddpm", "denoising diffusion probabilistic model (Ho et al. 2020; seed section 4)", _ddpm),
    "gan": ModelEntry("gan", "generative adversarial network, Algorithm 2.1 (Goodfellow et al. 2014; seed section 2)", _gan),
    "infogan": ModelEntry("infogan", "InfoGAN with categorical/continuous codes (Chen et al. 2016; seed section 3)", _infogan),
    "vae": ModelEntry("vae", "variational auto-encoder (Kingma & Welling 2013; seed section 1)", _vae),
}


def get_model(name: str) -> tuple[type, type, type]:
    """(ModelClass, ConfigClass, SampleOptionsClass) of a registered family; ConfigError if unknown."""
    if name not in MODELS:
        raise choice_error("model", name, MODELS)
    return MODELS[name].load()
