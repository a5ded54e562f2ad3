"""The VAE family (Kingma & Welling 2013; SPEC section 1)."""

from genmodels.models.vae.config import VAEConfig, VAEEvaluateOptions, VAESampleOptions
from genmodels.models.vae.model import VAE

__all__ = ["VAE", "VAEConfig", "VAEEvaluateOptions", "VAESampleOptions"]
