"""Data: built-in data sets and file loaders, all returning a `Dataset` (see dataset.py)."""

from genmodels.data.dataset import DataSpec, Dataset

__all__ = ["DataSpec", "Dataset"]
