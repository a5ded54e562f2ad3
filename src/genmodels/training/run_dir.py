"""Moved to `genmodels.run` (run directories sit below both the trainer and the report); these
names stay importable from here for code written before the move."""

from genmodels.run.layout import RunDir
from genmodels.run.load import LoadedRun, build_model, load_run, resolve_device

__all__ = ["LoadedRun", "RunDir", "build_model", "load_run", "resolve_device"]
