"""A folder of PNG/JPEG images, searched recursively, decoded with Pillow.

Labels: when every image sits inside a sub-folder, the class of an image is the name of its
first-level sub-folder and classes are numbered in sorted order; when every image sits directly
in the folder, the data set is unlabelled. Images are read in sorted path order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genmodels.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def image_files(folder: Path) -> list[Path]:
    """Every PNG/JPEG under folder (recursive, case-insensitive suffix), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_labels(folder: Path, files: list[Path]) -> tuple[np.ndarray | None, list[str]]:
    """(labels, class names) from first-level sub-folder names, or (None, []) when all files are top-level."""
    parts = [f.relative_to(folder).parts for f in files]
    top = [f for f, p in zip(files, parts, strict=True) if len(p) == 1]
    if len(top) == len(files):
        return None, []
    if top:
        nested = next(f for f, p in zip(files, parts, strict=True) if len(p) > 1)
        raise DataError(f"{folder}: images both at the top level ({top[0].name}) and in class sub-folders "
                        f"({nested.relative_to(folder)}); put every image in a class folder, or none")
    classes = sorted({p[0] for p in parts})
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[p[0]] for p in parts], dtype=np.int64), classes


def _open(path: Path, decode: bool):
    """Open an image; with decode=False only its header (size, mode) is read."""
    from PIL import Image, UnidentifiedImageError  # lazy: PIL, for image files only

    try:
        img = Image.open(path)
        if decode:
            img.load()
        return img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None


def _to_8bit(img):
    """16-bit grey ("I;16*", or "I" from 16-bit PNGs) -> "L" by v / 257 (Pillow would clip at 255)."""
    from PIL import Image  # lazy: PIL, for image files only

    if not (img.mode == "I" or img.mode.startswith("I;16")):
        return img
    a = np.asarray(img, dtype=np.float64)
    return Image.fromarray(np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8), "L")


def _fit(img, size: int):
    """Scale the shorter side to `size` (Lanczos) and crop the centre to size x size."""
    from PIL import Image  # lazy: PIL, for image files only

    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((new_w, new_h), Image.LANCZOS)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


def read_image_folder(folder: Path, files: list[Path], image_size: int = 0, channels: int = 0) -> np.ndarray:
    """Decode `files` into uint8 (N, C, H, W).

    image_size: 0 keeps native sizes (all must agree, else a DataError names two files and their
    sizes); otherwise each image is resized (shorter side) and centre-cropped to image_size x image_size.
    channels: 0 = grey when every image is grey, else RGB; 1 or 3 forces Pillow's "L" or "RGB".
    """
    headers = []
    for f in files:  # first pass: headers only, so a size mismatch is reported before any decoding
        with _open(f, decode=False) as img:
            headers.append((img.size, img.mode))
    if image_size == 0:
        size0 = headers[0][0]
        for f, (size, _) in zip(files, headers, strict=True):
            if size != size0:
                raise DataError(f"{folder}: images of different sizes, {files[0].relative_to(folder)} is "
                                f"{size0[0]}x{size0[1]} but {f.relative_to(folder)} is {size[0]}x{size[1]}; "
                                f"pass image_size to resize them")
    if channels == 0:
        channels = 1 if all(mode in GREY_MODES for _, mode in headers) else 3
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for f in files:
        with _open(f, decode=True) as img:
            out = _to_8bit(img).convert(mode)
        if image_size:
            out = _fit(out, image_size)
        a = np.asarray(out, dtype=np.uint8)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return np.stack(arrays)
