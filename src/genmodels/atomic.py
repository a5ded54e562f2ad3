"""Writing files so that no reader ever sees half of one, and a failed write reads as one line.

Every file genmodels writes goes through this module:

- `atomic_file(path)` yields a binary file that is a temporary `.NAME.tmp-PID` in the same folder;
  when the block ends it is flushed, fsync'd and renamed over `path` (`os.replace` is atomic on
  POSIX) and the folder is fsync'd. A reader sees the old file or the new one, never part of
  either. On any error the temporary is deleted and `path` is left as it was; after a crash the
  temporary may remain, and `remove_stale_temporaries` deletes it later.
- `LineAppender` appends whole lines to an append-only log (metrics.jsonl): a failed append is
  truncated away, so the lines written before stay intact and no torn line is left.

An OSError (a full disk, a read-only file system, no permission, a path that is a folder or lies
under a file) becomes an `OutputError` naming the path and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

from genmodels.errors import GenmodelsError, OutputError

TEMP_GLOB = ".*.tmp-*"
_TEMP_PID = re.compile(r"^\..+\.tmp-(\d+)$")

CAUSES = {  # errno -> how the one-line message states the cause
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a parent is a file, not a folder",
    errno.EEXIST: "a parent is a file, not a folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def _open(path: Path, mode: Literal["wb", "ab"]) -> BinaryIO:
    """Open a file for writing: buffered for whole files ("wb"), unbuffered for appends ("ab"),
    so that an append that fails leaves nothing pending in a buffer. The one place files open."""
    return open(path, mode, buffering=0 if "a" in mode else -1)


def output_error(path: str | os.PathLike, error: BaseException) -> OutputError:
    """The one-line OutputError for a failed write of `path`."""
    cause = CAUSES.get(getattr(error, "errno", None) or -1)
    if cause is None:
        cause = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return OutputError(f"cannot write {path}: {cause}")


def _os_error(error: BaseException | None) -> OSError | None:
    """The OSError behind `error` (torch's zip writer wraps the file's OSError in a RuntimeError)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, GenmodelsError):
            return None
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def check_output_path(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """`path` as a Path, after checking that it can be created: OutputError if it is an existing
    folder (a file is wanted) or file (`folder=True`), or if one of its parents is a file."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"cannot write {path}: it is a file, not a folder")
    if not folder and path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder, not a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """Create folder `path` and its parents; OutputError naming the cause when that fails."""
    path = check_output_path(path, folder=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(path, e) from None
    return path


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """`with atomic_file(path) as f: ...` writes `path` all at once or not at all (see the module
    docstring); errors from the writes become an OutputError naming `path`."""
    path = check_output_path(path)
    make_folder(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        f = _open(tmp, "wb")
    except OSError as e:
        raise output_error(path, e) from None
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        cause = _os_error(e)
        if cause is not None:
            raise output_error(path, cause) from None
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def json_report(obj: Any, **kwargs: Any) -> str:
    """Strict JSON of a report a command prints (`--json`): a figure that was not measured (NaN,
    an infinite bound) is null, never the NaN or Infinity that strict JSON readers reject. Files
    that keep records (zoo cards, cache rows) refuse non-finite numbers instead."""
    return json.dumps(_finite_or_none(obj), allow_nan=False, **kwargs)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LineAppender:
    """Appends whole lines to one file. A write that fails (full disk) is cut off again, so the
    file holds exactly the lines appended before it; the error is an OutputError naming the file.
    Meant for a file with one writer (a run directory's metrics.jsonl, under the run's lock)."""

    def __init__(self, path: str | os.PathLike):
        self.path = check_output_path(path)
        make_folder(self.path.parent)
        try:
            self._file = _open(self.path, "ab")
        except OSError as e:
            raise output_error(self.path, e) from None

    def append(self, line: str) -> None:
        """Write `line` plus a newline, completely or not at all."""
        data = memoryview((line.rstrip("\n") + "\n").encode("utf-8"))
        end = None
        try:
            end = os.fstat(self._file.fileno()).st_size
            while data:
                written = self._file.write(data)
                data = data[written:]
            self._file.flush()
        except OSError as e:
            if end is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._file.fileno(), end)
            raise output_error(self.path, e) from None

    def close(self) -> None:
        self._file.close()


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the `.NAME.tmp-PID` files in `folder` whose writing process is gone (left by a crash
    or a kill during a write); returns what was removed. Files being written now are kept."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(TEMP_GLOB):
        match = _TEMP_PID.match(tmp.name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes nothing while it cleans up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
