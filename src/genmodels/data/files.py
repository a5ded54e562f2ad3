"""Recognising a path and reading one split of it.

Folders:
- holding `train-images-idx3-ubyte[.gz]` (+ labels, t10k-*): MNIST layout, official split;
- holding `data_batch_*` / `test_batch`: CIFAR-10 python batches, data_batch_* train, test_batch test;
- anything else: a folder of PNG/JPEG images (recursive), 90/10 hold-out.
Files, recognised by their first bytes (not their name): numpy `.npy`, `.npz` (zip), IDX (raw or
gzipped), a pickle (one CIFAR batch). Without a split of their own, every 10th example
(i % 10 == 9) is test and the rest train.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from genmodels.data.arrays import read_npy, read_npz
from genmodels.data.cifar import is_cifar_folder, read_cifar_batch, read_cifar_folder
from genmodels.data.convert import RawData, check_finite, holdout_index, pixel_range
from genmodels.data.idx import has_idx_split, is_idx, read_idx, read_idx_folder, sibling_labels
from genmodels.data.image_folder import IMAGE_SUFFIXES, folder_labels, image_files, read_image_folder
from genmodels.errors import DataError

PATH_HELP = ("a path is read when it exists: a folder of PNG/JPEG images (class = sub-folder), a folder of "
             "MNIST IDX files (train-images-idx3-ubyte[.gz], ...), a CIFAR-10 cifar-10-batches-py folder, "
             "or a .npy, .npz, IDX (raw or .gz) or CIFAR batch file")


def _head(path: Path, n: int = 8) -> bytes:
    """The first n bytes of the file's contents (gunzipped when gzipped)."""
    try:
        with open(path, "rb") as f:
            head = f.read(n)
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                with gzip.open(f) as g:
                    head = g.read(n)
        return head
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


def _array_kind(x: np.ndarray) -> str:
    return "points" if x.ndim == 2 else "image"


def _inspect(x: np.ndarray, source: str) -> tuple[float, float] | None:
    """Check a whole array read from a file: rank 2 (points) or 3/4 (images), no NaN/inf (reported
    at its index in the file). Returns the pixel range of float images, fixed for every split."""
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{source}: expected points (N, D) or images (N, H, W), (N, C, H, W), (N, H, W, C); "
                        f"got an array of rank {x.ndim} with shape {x.shape}")
    check_finite(x, source)
    return pixel_range(x, source) if x.ndim > 2 and np.issubdtype(x.dtype, np.floating) else None


def _held_out(x: np.ndarray, y: np.ndarray | None, split: str, source: str, **extra) -> RawData:
    """The 90/10 hold-out split of a whole array read from one file."""
    value_range = _inspect(x, source)
    if y is not None and len(y) != len(x):
        raise DataError(f"{source}: {len(x)} examples but {len(y)} labels")
    index = holdout_index(len(x), split)
    return RawData(x=x[index], y=None if y is None else y[index], kind=_array_kind(x), source=source,
                   value_range=value_range, **extra)


def read_folder(folder: Path, split: str, *, image_size: int = 0, channels: int = 0, limit: int = 0) -> RawData:
    if has_idx_split(folder):
        x, y = read_idx_folder(folder, split)
        return RawData(x=x, y=y, kind="image", source=str(folder), value_range=_inspect(x, str(folder)))
    if is_cifar_folder(folder):
        x, y = read_cifar_folder(folder, split)
        return RawData(x=x, y=y, kind="image", source=str(folder), num_classes=10)
    files = image_files(folder)
    if not files:
        raise DataError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files recursively, "
                        f"MNIST IDX files and CIFAR batches)")
    labels, classes = folder_labels(folder, files)
    index = holdout_index(len(files), split)
    if limit:
        index = index[:limit]
    if len(index) == 0:
        raise DataError(f"{folder}: only {len(files)} images, too few for a {split} split (every 10th image is test)")
    x = read_image_folder(folder, [files[i] for i in index], image_size=image_size, channels=channels)
    return RawData(x=x, y=None if labels is None else labels[index], kind="image", source=str(folder),
                   classes=classes)


def read_file(path: Path, split: str) -> RawData:
    head = _head(path)
    source = str(path)
    if head.startswith(b"\x93NUMPY"):
        x = read_npy(path)
        return _held_out(x, None, split, source)
    if head.startswith(b"PK"):
        x, y, own_split = read_npz(path, split)
        if own_split:
            return RawData(x=x, y=y, kind=_array_kind(x), source=source, value_range=_inspect(x, source))
        return _held_out(x, y, split, source)
    if is_idx(head):
        x = read_idx(path)
        labels_path = sibling_labels(path)
        y = None if labels_path is None else read_idx(labels_path)
        if y is not None and (y.ndim != 1 or len(y) != len(x)):
            raise DataError(f"{labels_path}: {y.shape} labels do not match {len(x)} images in {path.name}")
        return _held_out(x, y, split, source)
    if head[:1] == b"\x80":  # pickle protocol >= 2: a CIFAR batch
        x, y = read_cifar_batch(path)
        return _held_out(x, y, split, source, num_classes=10)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise DataError(f"{path}: a single image is not a data set; pass the folder that holds the images")
    raise DataError(f"{path}: unrecognised file format (first bytes {head[:4].hex() or 'empty'}); {PATH_HELP}")


def read_path(path: Path, split: str, *, image_size: int = 0, channels: int = 0, limit: int = 0) -> RawData:
    """One split of the data at `path` (see the module docstring for what is recognised)."""
    if path.is_dir():
        return read_folder(path, split, image_size=image_size, channels=channels, limit=limit)
    if path.is_file():
        return read_file(path, split)
    raise DataError(f"{path}: not a file or folder")
