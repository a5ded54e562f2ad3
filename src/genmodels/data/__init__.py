"""Data: built-in data sets and file loaders, all returning a `Dataset` (see dataset.py).

    genmodels.data.load("mnist5k")                      # built-in, train split
    genmodels.data.load("path/to/images", split="test", image_size=32, channels=3)
"""

from genmodels.data.builtins import BUILTINS, Builtin
from genmodels.data.convert import dynamic_binarize
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.data.load import SPLITS, load, load_config

__all__ = ["BUILTINS", "Builtin", "DataSpec", "Dataset", "SPLITS", "dynamic_binarize", "load", "load_config"]
