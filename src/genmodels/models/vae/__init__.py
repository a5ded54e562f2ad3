"""The VAE family (Kingma & Welling 2013; SPEC section 1)."""

from genmodels.models.vae.config import VAEConfig, VAESampleOptions
from genmodels.models.vae.model import VAE

__all__ = ["VAE", "VAEConfig", "VAESampleOptions"]
