"""The VAE family (Kingma & Welling 2013; docs/vae.md)."""

from genmodels.models.vae.config import VAEConfig, VAEEvaluateOptions, VAESampleOptions
from genmodels.models.vae.model import VAE

__all__ = ["VAE", "VAEConfig", "VAEEvaluateOptions", "VAESampleOptions"]
