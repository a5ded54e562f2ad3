"""One writer per run directory: an exclusive lock on RUN_DIR/.lock, held while a trainer runs.

The lock is `fcntl.flock` on an open file, so the operating system releases it when the process
ends in any way: a killed run never leaves a stale lock (the file stays behind, and without a
lock on it means nothing). The holder writes its pid into the file, which is how a refused
process names it.
Readers (`sample`, `evaluate`, `report`) take no lock: every file is replaced atomically, so they
see a complete old or new version. Under torchrun only rank 0 writes, so only rank 0 locks; the
other ranks learn whether it succeeded before anything else happens.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from genmodels.atomic import make_folder, output_error
from genmodels.errors import RunLocked
from genmodels.run.layout import LOCK
from genmodels.training import distributed

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

LOCK_NAME = LOCK   # RUN_DIR/.lock (the name lives in genmodels.run.layout)


class RunLock:
    """`with RunLock(run_dir): ...` holds the run's lock; RunLocked (naming the holder's pid) when
    another process holds it. Creates the run directory, and nothing else in it but the lock file."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        make_folder(self.run_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise output_error(self.path, e) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"pid {holder}" if holder else "pid unknown"
                raise RunLocked(f"{self.run_dir}: another genmodels process ({who}) is writing this run; wait "
                                f"for it to finish, stop it, or choose another --out") from None
            except OSError as e:  # a file system without locks
                os.close(fd)
                raise output_error(self.path, e) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds without the pid; a refused process then says "pid unknown"
        self._fd = fd
        return self

    def release(self) -> None:
        """Closing the file releases the lock (the file stays: deleting it would let two processes
        lock two different files of the same name)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def run_writer(run_dir: str | Path, device: torch.device) -> Iterator[None]:
    """Hold the run's lock on rank 0 for the block; every rank raises when rank 0 could not take it."""
    par = distributed.current()
    lock, error = None, None
    if par.is_main:
        try:
            lock = RunLock(run_dir).acquire()
        except Exception as e:  # raised below, after the other ranks know
            error = e
    if par.enabled and distributed.any_rank(error is not None, device) and error is None:
        error = RunLocked(f"{run_dir}: rank 0 could not take the run directory's lock")
    if error is not None:
        raise error
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
