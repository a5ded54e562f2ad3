"""`.npy` and `.npz` files, opened with allow_pickle=False (an object array is refused, not run).

.npy: one array, images (N, H, W) / (N, C, H, W) / (N, H, W, C) or points (N, D); no labels.
.npz: the data under "x", "images" or "arr_0" and optional labels under "y" or "labels";
      or Keras-style "x_train"/"x_test" (+ "y_train"/"y_test"), which then give the split.

Before an array is read, the shape its header claims is checked against the bytes the file (or
the zip member) holds, so a header claiming a gigantic shape is a DataError, not an allocation.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from genmodels.errors import DataError

X_KEYS = ("x", "images", "arr_0")
HEADER_BYTES = 65536 + 16  # numpy's largest accepted .npy header, plus its magic and length
Y_KEYS = ("y", "labels")


def _read(path: Path, what):
    try:
        return what()
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        reason = "it holds Python objects (pickle), which are not loaded" if "allow_pickle" in str(e) else e
        raise DataError(f"{path}: cannot read ({reason})") from None
    except MemoryError as e:
        raise DataError(f"{path}: cannot read: the array does not fit in memory ({e})") from None


def check_npy_header(f: BinaryIO, available: int, source: str) -> None:
    """DataError unless the .npy header at the start of `f` claims no more data bytes than the
    `available` bytes of the file (or zip member); `f` is left where it was."""
    start = f.tell()
    try:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)  # version 3.0 differs from 2.0 only in the header's text encoding
        data = available - (f.tell() - start)
    except ValueError:
        return  # not a valid header: np.load's own error names the problem
    finally:
        f.seek(start)
    if dtype.hasobject:
        return  # a pickled object array, which np.load refuses
    need = math.prod(shape) * dtype.itemsize
    if need > data:
        raise DataError(f"{source}: cannot read: the header claims an array of shape {shape} ({dtype}, {need} "
                        f"bytes) but the file holds {max(data, 0)} bytes of data (truncated, or a false header)")


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        check_npy_header(f, path.stat().st_size, str(path))
        return np.load(f, allow_pickle=False)


def _check_npz(path: Path) -> None:
    """The header check of every .npy member of an .npz, against the member's uncompressed size."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename.endswith(".npy"):
                with z.open(info) as member:
                    head = io.BytesIO(member.read(HEADER_BYTES))
                check_npy_header(head, info.file_size, f"{path} ({info.filename})")


def read_npy(path: Path) -> np.ndarray:
    return _read(path, lambda: _load_npy(path))


def read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(x, y or None, has_own_split). With x_train/x_test keys the requested split is returned."""

    def get():
        _check_npz(path)
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if "x_train" in keys and "x_test" in keys:
                suffix = "_train" if split == "train" else "_test"
                y = z["y" + suffix] if "y" + suffix in keys else None
                return z["x" + suffix], y, True
            x_key = next((k for k in X_KEYS if k in keys), None)
            if x_key is None:
                raise DataError(f"{path}: no data array; expected one of the keys {', '.join(X_KEYS)} "
                                f"(or x_train/x_test), found {', '.join(sorted(keys)) or 'none'}")
            y_key = next((k for k in Y_KEYS if k in keys), None)
            return z[x_key], (z[y_key] if y_key else None), False

    return _read(path, get)
