"""The error hierarchy: every failure a user can cause is a `GenmodelsError`.

The CLI prints these as one line (no traceback) and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


class GenmodelsError(Exception):
    """Base class of every error genmodels raises on purpose."""


class ConfigError(GenmodelsError, ValueError):
    """A configuration value, option or name is invalid (the message lists valid choices)."""


class DataError(GenmodelsError, ValueError):
    """A data source is missing, corrupt, or has the wrong shape/values (names the file)."""


class CheckpointError(GenmodelsError):
    """A checkpoint is missing, truncated, from another model, or would need unpickling code."""


class TrainingDiverged(GenmodelsError, FloatingPointError):
    """A loss or a weight became NaN/inf; the message names the step. The last good
    checkpoint is kept on disk."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


class OutputError(GenmodelsError, OSError):
    """A file or folder could not be written: a full disk, a read-only file system, no permission,
    a path that is a folder or lies under a file (the message names the path and the cause; the
    file that was there before is unchanged)."""


class RunLocked(GenmodelsError):
    """Another process is writing the run directory (the message names its pid)."""


class TrainingStopped(GenmodelsError):
    """Training stopped on SIGTERM/SIGINT after a checkpoint was written; `exit_code` is the shell's
    convention for a process ended by that signal (128 + signal number)."""

    def __init__(self, message: str, signum: int, step: int):
        super().__init__(message)
        self.signum, self.step = signum, step
        self.exit_code = 128 + signum


class RankFailed(GenmodelsError):
    """One of the processes of a distributed command failed; every rank raises it (naming the rank
    and its error) at the next point where the ranks agree, so that all stop and none writes.
    `quiet` on every rank but rank 0, so that the command prints one line."""

    def __init__(self, message: str, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet


def choice_error(what: str, value: object, choices) -> ConfigError:
    """A `ConfigError` for an unknown name, listing the valid ones."""
    valid = ", ".join(sorted(str(c) for c in choices))
    return ConfigError(f"unknown {what} {value!r}; valid choices: {valid}")
