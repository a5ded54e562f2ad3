"""Generative adversarial networks (Goodfellow et al. 2014; seed section 2): Algorithm 2.1 with its
minimax and non-saturating objectives, and the usual options (DCGAN nets, label smoothing,
spectral norm, hinge, WGAN-GP, class conditioning)."""

from genmodels.models.gan.config import GANConfig, GANSampleOptions
from genmodels.models.gan.losses import discriminator_loss, generator_loss, gradient_penalty
from genmodels.models.gan.model import GAN

__all__ = ["GAN", "GANConfig", "GANSampleOptions", "discriminator_loss", "generator_loss", "gradient_penalty"]
