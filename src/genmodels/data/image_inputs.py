"""Images and masks a user hands to a trained model (`genmodels sample --inpaint / --mask / --init`).

    read_images(path, (C, H, W))  -> (N, C, H, W) float32 in [-1, 1]
    read_mask(path_or_name, (C, H, W)) -> (N, 1 or C, H, W) float32 of 0 (fill) and 1 (keep)

Images: a PNG/JPEG file (one image) or a .npy array of one image (H, W) or a batch (N, H, W) /
(N, C, H, W) / (N, H, W, C), uint8 in 0..255 or float in [0, 1] (as `genmodels sample --out
FILE.npy` writes), [-1, 1] or [0, 255]. Their size must be the run's; grey / RGB are not converted.
Masks: the same kinds of file, 1 (white) = keep, known; 0 (black) = fill; a PNG is thresholded at
half intensity, a .npy must hold only 0 and 1 (or booleans); or a named mask of `MASKS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genmodels.data.arrays import read_npy
from genmodels.data.convert import channels_first, check_finite, to_unit_range
from genmodels.data.image_folder import IMAGE_SUFFIXES, read_image_folder
from genmodels.errors import DataError

MASKS = ("fill-top", "fill-bottom", "fill-left", "fill-right", "fill-centre")


def named_mask(name: str, height: int, width: int) -> torch.Tensor:
    """A (1, 1, H, W) mask of 1 (keep) with 0 over the named region: the top, bottom, left or right
    half, or the centre square of half the side."""
    m = torch.ones(1, 1, height, width)
    if name == "fill-top":
        m[..., : height // 2, :] = 0
    elif name == "fill-bottom":
        m[..., height // 2:, :] = 0
    elif name == "fill-left":
        m[..., :, : width // 2] = 0
    elif name == "fill-right":
        m[..., :, width // 2:] = 0
    elif name == "fill-centre":
        m[..., height // 4: height - height // 4, width // 4: width - width // 4] = 0
    else:
        raise DataError(f"unknown mask {name!r}: give a PNG or .npy file, or one of {', '.join(MASKS)}")
    return m


def _read_array(path: Path, channels: int) -> np.ndarray:
    """The image(s) at path as an (N, C, H, W) array (PNG/JPEG read as `channels`-channel uint8)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image_folder(path.parent, [path], channels=channels)
    if path.suffix.lower() != ".npy":
        raise DataError(f"{path}: expected a PNG/JPEG image or a .npy array, got {path.suffix or 'no suffix'}")
    arr = read_npy(path)
    check_finite(arr, str(path))
    if arr.ndim == 2:
        arr = arr[None]
    if arr.size == 0:
        raise DataError(f"{path}: an empty array (shape {tuple(arr.shape)}); give at least one image")
    return channels_first(arr, str(path))


def _check_size(arr: np.ndarray, path: Path, shape: tuple[int, ...], what: str) -> None:
    C, H, W = shape
    if tuple(arr.shape[2:]) != (H, W):
        raise DataError(f"{path}: {what} of {arr.shape[2]}x{arr.shape[3]} pixels, the run's images are {H}x{W}")
    if arr.shape[1] not in ((1, C) if what == "mask" else (C,)):
        raise DataError(f"{path}: {what} with {arr.shape[1]} channel(s), the run's images have {C}")


def read_images(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """The image(s) at `path` for a run whose images have `shape` (C, H, W): float32 (N, C, H, W)
    in [-1, 1]. DataError naming the file when it is missing, unreadable or of another size."""
    path = Path(path)
    arr = _read_array(path, shape[0])
    _check_size(arr, path, shape, "images")
    return to_unit_range(arr, str(path))


def read_mask(source: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """A mask for images of `shape` (C, H, W): a named mask (`MASKS`) or a file; float32
    (N, 1 or C, H, W) of 0 (fill) and 1 (keep)."""
    C, H, W = shape
    if str(source) in MASKS:
        return named_mask(str(source), H, W)
    path = Path(source)
    if not path.exists() and "/" not in str(source) and "." not in str(source):
        named_mask(str(source), H, W)                    # raises the DataError listing the names
    arr = _read_array(path, 1)
    _check_size(arr, path, shape, "mask")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return torch.from_numpy((arr >= 128).astype(np.float32))
    values = np.unique(arr)
    if arr.dtype != np.bool_ and not set(values.tolist()) <= {0, 1}:
        raise DataError(f"{path}: a mask must hold only 0 (fill) and 1 (keep), found values {values[:5].tolist()}")
    return torch.from_numpy(arr.astype(np.float32))
