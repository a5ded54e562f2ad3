"""MNIST-style IDX files (LeCun's format; raw or gzipped), read with numpy.frombuffer.

An IDX file is: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes and the values in C order. The magic number, the sizes and the exact file
length are all checked, so a truncated or padded file is a `DataError`, never a short array.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from genmodels.errors import DataError

IDX_DTYPES = {  # type code -> big-endian numpy dtype
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}

# The four files of an MNIST-layout folder: split -> (images stem, labels stem); ".gz" optional.
IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


def is_idx(head: bytes) -> bool:
    """Whether these leading bytes look like an IDX header."""
    return len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] in IDX_DTYPES and 1 <= head[3] <= 4


def parse_idx(buf: bytes, source: str) -> np.ndarray:
    """Decode IDX bytes into an array of the stored dtype and shape."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise DataError(f"{source}: not an IDX file (bad magic number {buf[:4].hex() or 'empty'})")
    if buf[2] not in IDX_DTYPES:
        raise DataError(f"{source}: unknown IDX type code 0x{buf[2]:02x}")
    ndim = buf[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{source}: IDX rank {ndim} is not supported (1 to 4)")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{source}: truncated IDX header ({len(buf)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[buf[2]]
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(buf) - header
    if have < want:
        raise DataError(f"{source}: truncated IDX data: shape {dims} needs {want} bytes, found {have}")
    if have > want:
        raise DataError(f"{source}: IDX file has {have - want} bytes beyond its declared shape {dims}")
    return np.frombuffer(buf, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (raw or .gz)."""
    return parse_idx(read_bytes(path), str(path))


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`stem` or `stem.gz` inside folder (also the `stem.idx3-ubyte`-style dotted variant)."""
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_split(folder: Path) -> bool:
    """Whether the folder holds at least the train images file of the MNIST layout."""
    return find_idx_file(folder, IDX_SPLITS["train"][0]) is not None


def read_idx_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) and labels (N,) of one split of an MNIST-layout folder."""
    stems = IDX_SPLITS[split]
    paths = [find_idx_file(folder, stem) for stem in stems]
    missing = [stem for stem, p in zip(stems, paths, strict=True) if p is None]
    if missing:
        raise DataError(f"{folder}: missing IDX file(s) {', '.join(s + '[.gz]' for s in missing)} "
                        f"for the {split} split")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3:
        raise DataError(f"{paths[0]}: expected images of rank 3 (N, H, W), got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{paths[1]}: {labels.shape} labels do not match {len(images)} images in {paths[0].name}")
    return images, labels


def sibling_labels(images_path: Path) -> Path | None:
    """For `...-images-idx3-ubyte[.gz]`, the matching `...-labels-idx1-ubyte[.gz]` when it exists."""
    name = images_path.name
    if "images-idx3" not in name:
        return None
    candidate = images_path.with_name(name.replace("images-idx3", "labels-idx1"))
    return candidate if candidate.is_file() else None
