"""genmodels: VAE, GAN, InfoGAN and DDPM, faithful to the papers, with their theory checked."""

from genmodels import data, errors
from genmodels.errors import CheckpointError, ConfigError, DataError, GenmodelsError, TrainingDiverged

__version__ = "0.1.0"

__all__ = [
    "data",
    "errors",
    "GenmodelsError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "TrainingDiverged",
]
