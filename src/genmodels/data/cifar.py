"""CIFAR-10 "python version" batches, unpickled safely.

A pickle can run any code while it loads (its GLOBAL/REDUCE opcodes import and call arbitrary
callables), so these files are never opened with plain `pickle.load`. `SafeUnpickler` resolves
only the few callables a plain numpy array needs and refuses everything else (os.system,
builtins.eval, ...) before it is imported. What comes out is checked again: only dicts, lists,
tuples, str, bytes, numbers and non-object numpy arrays are accepted.

A batch is a dict with `data`, (N, 3072) uint8 rows holding the R, G and B 32x32 planes, and
`labels` (CIFAR-100: `fine_labels`). Keys are bytes in the original Python 2 files.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from genmodels.errors import DataError

_probe = np.zeros(1, dtype=np.uint8)
_RECONSTRUCT = _probe.__reduce__()[0]        # numpy's _reconstruct (protocols 0-4)
_FROMBUFFER = _probe.__reduce_ex__(5)[0]     # numpy's _frombuffer (protocol 5)


def _latin1_encode(text, encoding="latin1"):
    """`_codecs.encode` as protocol-2 pickles written by Python 3 use it: str -> bytes, latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only as str.encode('latin1')")
    return text.encode("latin1")


# (module, name) -> the object it resolves to. numpy moved numpy.core to numpy._core in 2.0;
# files from either era name one or the other.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler whose `find_class` knows only ALLOWED_GLOBALS."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only plain numpy arrays, lists, "
                                         f"dicts, str and bytes are allowed)") from None


def check_plain(obj, source: str, depth: int = 0) -> None:
    """Raise DataError unless obj is built only from plain containers, scalars and numeric arrays."""
    if depth > 20:
        raise DataError(f"{source}: pickle nests deeper than 20 levels")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise DataError(f"{source}: refusing an object-dtype numpy array in the pickle")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_plain(k, source, depth + 1)
            check_plain(v, source, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            check_plain(v, source, depth + 1)
    elif not isinstance(obj, (str, bytes, int, float, bool, type(None))):
        raise DataError(f"{source}: refusing a {type(obj).__name__} object in the pickle")


def safe_unpickle(path: Path):
    """Unpickle a data file with SafeUnpickler; every failure is a DataError naming the file."""
    try:
        raw = path.read_bytes()
        obj = SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{path}: unsafe or corrupt pickle: {e}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise DataError(f"{path}: corrupt pickle ({type(e).__name__}: {e})") from None
    check_plain(obj, str(path))
    return obj


def _get(batch: dict, *keys: str):
    for key in keys:
        for k in (key, key.encode()):
            if k in batch:
                return batch[k]
    return None


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> images uint8 (N, 3, 32, 32) and labels (N,)."""
    batch = safe_unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: a CIFAR batch must be a dict, got {type(batch).__name__}")
    data, labels = _get(batch, "data"), _get(batch, "labels", "fine_labels")
    if data is None or labels is None:
        raise DataError(f"{path}: a CIFAR batch needs 'data' and 'labels' entries")
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: CIFAR 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: expected {len(data)} integer labels, got {labels.dtype} {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def cifar_batch_files(folder: Path, split: str) -> list[Path]:
    """`data_batch_*` (train) or `test_batch` (test) inside a cifar-10-batches-py folder."""
    pattern = "data_batch_*" if split == "train" else "test_batch*"
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def is_cifar_folder(folder: Path) -> bool:
    return bool(cifar_batch_files(folder, "train") or cifar_batch_files(folder, "test"))


def read_cifar_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the split's batch files: data_batch_1..5 for train, test_batch for test."""
    files = cifar_batch_files(folder, split)
    if not files:
        want = "data_batch_*" if split == "train" else "test_batch"
        raise DataError(f"{folder}: no {want} file for the {split} split of a CIFAR batches folder")
    parts = [read_cifar_batch(p) for p in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
