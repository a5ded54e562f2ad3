"""Simulated disk faults for the tests: every file genmodels writes is opened by
`genmodels.atomic._open`, so replacing it makes the writes of chosen files fail as a full disk
(ENOSPC, after part of the data went out), a read-only file system (EROFS) or a refused
permission (EACCES) would make them fail."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from genmodels import atomic


class FullDiskFile:
    """A real file whose writes stop with ENOSPC once `room` bytes have gone through (the write that
    crosses the limit writes its first part, as a real full disk does)."""

    def __init__(self, f, room: int):
        self._f, self._room = f, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self._room:
            if self._room > 0:
                self._f.write(data[:self._room])
                self._f.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fail_writes(monkeypatch, matches: Callable[[Path], bool], *, errno_: int = errno.ENOSPC, room: int = 0,
                after: int = 0) -> list[Path]:
    """Make the writes of files for which `matches(final path)` holds fail: ENOSPC after `room` bytes
    of each file, or EROFS/EACCES when opened. The first `after` matching files are written normally.
    Returns the list of final paths whose write was made to fail."""
    real_open = atomic._open
    failed: list[Path] = []
    seen = [0]

    def final(path: Path) -> Path:
        name = path.name
        if name.startswith(".") and ".tmp-" in name:
            return path.with_name(name[1:name.rindex(".tmp-")])
        return path

    def fake_open(path: Path, mode: str):
        target = final(Path(path))
        if not matches(target):
            return real_open(path, mode)
        seen[0] += 1
        if seen[0] <= after:
            return real_open(path, mode)
        failed.append(target)
        if errno_ != errno.ENOSPC:
            raise OSError(errno_, os.strerror(errno_), str(path))
        return FullDiskFile(real_open(path, mode), room)

    monkeypatch.setattr(atomic, "_open", fake_open)
    return failed
