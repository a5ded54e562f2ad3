"""`.npy` and `.npz` files, opened with allow_pickle=False (an object array is refused, not run).

.npy: one array, images (N, H, W) / (N, C, H, W) / (N, H, W, C) or points (N, D); no labels.
.npz: the data under "x", "images" or "arr_0" and optional labels under "y" or "labels";
      or Keras-style "x_train"/"x_test" (+ "y_train"/"y_test"), which then give the split.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from genmodels.errors import DataError

X_KEYS = ("x", "images", "arr_0")
Y_KEYS = ("y", "labels")


def _read(path: Path, what):
    try:
        return what()
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        reason = "it holds Python objects (pickle), which are not loaded" if "allow_pickle" in str(e) else e
        raise DataError(f"{path}: cannot read ({reason})") from None


def read_npy(path: Path) -> np.ndarray:
    return _read(path, lambda: np.load(path, allow_pickle=False))


def read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(x, y or None, has_own_split). With x_train/x_test keys the requested split is returned."""

    def get():
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
