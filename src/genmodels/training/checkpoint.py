"""Moved to `genmodels.run.checkpoint` (reading a run must not need the trainer); these names stay
importable from here for code written before the move."""

from genmodels.run.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    check_model,
    load_checkpoint,
    load_modules,
    load_optimizers,
    save_atomic,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "check_model", "load_checkpoint", "load_modules", "load_optimizers",
           "save_atomic"]
