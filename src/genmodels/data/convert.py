"""Turning raw arrays into the tensors every model sees, and the fixed train/test hold-outs.

Images end up float32 (N, C, H, W) in [-1, 1]; 2-D toys and other (N, D) arrays stay in data
coordinates. Every check names the source (a file or a built-in) in its `DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from genmodels.data.dataset import DataKind, Dataset
from genmodels.errors import DataError

HOLDOUT_EVERY = 10  # file data sets without their own split: every 10th example (i % 10 == 9) is test


def check_finite(arr: np.ndarray, source: str) -> None:
    """Raise DataError naming the first NaN/inf entry of a float array."""
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{source}: contains NaN or inf (first at index {where})")


def channels_first(arr: np.ndarray, source: str) -> np.ndarray:
    """Bring an image array to (N, C, H, W): accepts (N, H, W), (N, C, H, W) and (N, H, W, C)
    with C in {1, 3}; (N, 3, H, 3)-style ambiguities are read as channels-first."""
    if arr.ndim == 3:
        return arr[:, None]
    if arr.ndim != 4:
        raise DataError(f"{source}: images must have rank 3 (N, H, W) or 4 (N, C, H, W) / (N, H, W, C), "
                        f"got shape {arr.shape}")
    if arr.shape[1] in (1, 3):
        return arr
    if arr.shape[3] in (1, 3):
        return arr.transpose(0, 3, 1, 2)
    raise DataError(f"{source}: cannot find a channel axis of size 1 or 3 in image shape {arr.shape}")


PIXEL_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))  # the float ranges images may come in, tried in order


def pixel_range(arr: np.ndarray, source: str) -> tuple[float, float]:
    """The first of PIXEL_RANGES that holds every value of a float image array (a DataError if none).

    File readers call this on the whole file, so that every split and every `limit` is scaled alike
    (a float image in [-1, 1] with no negative value at all is read as [0, 1])."""
    lo, hi = float(arr.min()), float(arr.max())
    for r in PIXEL_RANGES:
        if r[0] <= lo and hi <= r[1]:
            return r
    raise DataError(f"{source}: float pixel values {lo:g}..{hi:g} are in none of [0, 1], [-1, 1], [0, 255]")


def to_unit_range(arr: np.ndarray, source: str, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Scale image values to float32 in [-1, 1].

    Integer arrays must lie in 0..255 and map by x / 127.5 - 1. Float arrays map their
    `value_range` (default: pixel_range(arr)) linearly onto [-1, 1].
    """
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype != np.uint8:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise DataError(f"{source}: integer pixel values must lie in 0..255, found {lo}..{hi}")
            arr = arr.astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32).div_(127.5).sub_(1.0)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{source}: unsupported array dtype {arr.dtype} for images")
    lo, hi = value_range or pixel_range(arr, source)
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return x.sub_(lo).mul_(2.0 / (hi - lo)).sub_(1.0)


def images_from_array(arr: np.ndarray, source: str, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Any accepted image array -> float32 (N, C, H, W) in [-1, 1]."""
    return to_unit_range(channels_first(arr, source), source, value_range)


def points_from_array(arr: np.ndarray, source: str) -> torch.Tensor:
    """(N, D) numbers -> float32 tensor (N, D), data coordinates unchanged."""
    if arr.ndim != 2:
        raise DataError(f"{source}: points must have rank 2 (N, D), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{source}: unsupported array dtype {arr.dtype} for points")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def labels_from_array(y: np.ndarray, n: int, source: str) -> torch.Tensor:
    """(N,) integer labels >= 0 -> int64 tensor; the count must match the n examples."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{source}: expected {n} labels of shape ({n},), got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        check_finite(y, source)
        if not np.all(y == np.round(y)):
            raise DataError(f"{source}: labels must be whole numbers")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{source}: unsupported label dtype {y.dtype}")
    if n and y.min() < 0:
        raise DataError(f"{source}: labels must be >= 0, found {y.min()}")
    return torch.from_numpy(y.astype(np.int64))


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size): scale the shorter side to `size` (bilinear, antialiased)
    then crop the centre."""
    n, c, h, w = x.shape
    if h == size and w == size:
        return x
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return x[:, :, top:top + size, left:left + size].clamp_(-1.0, 1.0).contiguous()


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): grey -> RGB repeats; RGB -> grey uses ITU-R 601-2 luma
    (the weights of Pillow's "L" mode)."""
    c = x.shape[1]
    if channels in (0, c):
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    raise DataError(f"cannot convert {c}-channel images to {channels} channels")


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Static binarisation: threshold intensity (x + 1) / 2 at 0.5 -> values in {-1, 1}."""
    return torch.where(x > 0, 1.0, -1.0).to(x.dtype)


def dynamic_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation for Bernoulli decoders: each pixel is a fresh sample in {-1, 1}
    with P(+1) = (x + 1) / 2. x: (B, ...) in [-1, 1]; returns the same shape and dtype."""
    p = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    return torch.bernoulli(p, generator=generator).mul_(2.0).sub_(1.0)


def holdout_index(n: int, split: str) -> np.ndarray:
    """The deterministic 90/10 hold-out used for file data sets without a split of their own:
    example i is test when i % 10 == 9."""
    is_test = np.arange(n) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    return np.flatnonzero(is_test if split == "test" else ~is_test)


def per_class_holdout_index(y: np.ndarray, per_class: int, split: str) -> np.ndarray:
    """A class-balanced fixed split: the first `per_class` examples of each class (in file order)
    are test, the rest train."""
    is_test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        is_test[np.flatnonzero(y == c)[:per_class]] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


@dataclass
class RawData:
    """One split as read from its source, before the load() options are applied.

    x: images as any array images_from_array accepts, or points (N, D); y: (N,) labels or None.
    value_range: for float images, the pixel_range of the whole source (None: taken from x).
    """

    x: np.ndarray
    y: np.ndarray | None
    kind: DataKind
    source: str
    num_classes: int = 0
    classes: list[str] = field(default_factory=list)
    modes: torch.Tensor | None = None
    mode_std: float | None = None
    value_range: tuple[float, float] | None = None


def to_dataset(raw: RawData, name: str, split: str, *, image_size: int = 0, channels: int = 0,
               binarize_images: bool = False, limit: int = 0) -> Dataset:
    """Apply the load() options in order (limit, scale to [-1, 1], resize, channels, binarize)."""
    y = None if raw.y is None else labels_from_array(raw.y, len(raw.x), raw.source)
    num_classes = raw.num_classes or len(raw.classes) or (int(y.max()) + 1 if y is not None and len(y) else 0)
    x = raw.x
    if limit:
        x, y = x[:limit], (None if y is None else y[:limit])
    if len(x) == 0:
        raise DataError(f"{raw.source}: the {split} split is empty")
    if raw.kind == "points":
        if image_size or channels or binarize_images:
            raise DataError(f"{name}: image_size, channels and binarize apply to images, not to points")
        xt = points_from_array(x, raw.source)
    else:
        xt = images_from_array(x, raw.source, raw.value_range)
        if image_size:
            xt = resize_images(xt, image_size)
        xt = convert_channels(xt, channels)
        if binarize_images:
            xt = binarize(xt)
    meta = {"source": raw.source, "split": split}
    if raw.classes:
        meta["classes"] = list(raw.classes)
    return Dataset(x=xt, y=y, name=name, kind=raw.kind, num_classes=num_classes,
                   modes=raw.modes, mode_std=raw.mode_std, meta=meta)
