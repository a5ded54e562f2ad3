"""Training: the model-agnostic trainer, checkpoints, EMA, logging and run directories."""

from genmodels.train.checkpoint import load_checkpoint, save_atomic
from genmodels.train.ema import EMA
from genmodels.train.run_dir import LoadedRun, RunDir, build_model, load_run, resolve_device
from genmodels.train.trainer import FitResult, Trainer

__all__ = ["EMA", "FitResult", "LoadedRun", "RunDir", "Trainer", "build_model", "load_checkpoint", "load_run",
           "resolve_device", "save_atomic"]
