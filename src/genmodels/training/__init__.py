"""Training: the model-agnostic trainer, its step context, EMA, logging and checkpoints (run
directories themselves are `genmodels.run`). The one-call API is `genmodels.train(...)`
(`genmodels.api.train`)."""

from genmodels.run import LoadedRun, RunDir, build_model, load_run, resolve_device
from genmodels.run.checkpoint import load_checkpoint, save_atomic
from genmodels.training.ema import EMA
from genmodels.training.trainer import FitResult, Trainer

__all__ = ["EMA", "FitResult", "LoadedRun", "RunDir", "Trainer", "build_model", "load_checkpoint", "load_run",
           "resolve_device", "save_atomic"]
