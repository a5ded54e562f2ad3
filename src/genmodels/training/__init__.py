"""Training: the model-agnostic trainer, its step context, EMA, logging and distributed helpers (run
directories, checkpoints and `load_run` are `genmodels.run`). The one-call API is `genmodels.train(...)`
(`genmodels.api.train`)."""

from genmodels.training.ema import EMA
from genmodels.training.trainer import FitResult, Trainer

__all__ = ["EMA", "FitResult", "Trainer"]
