"""File loaders on small files written here: image folders, .npy/.npz, IDX; and every bad input."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.data import load
from genmodels.errors import DataError


def write_idx(path, arr: np.ndarray, gz: bool = False, type_code: int = 0x08) -> None:
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(">u1" if type_code == 0x08 else arr.dtype).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_png(path, value: int, size=(6, 6), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, colour).save(path)


# ---------------------------------------------------------------- image folders

def test_image_folder_classes_from_subfolders_and_holdout(tmp_path):
    for i in range(10):
        write_png(tmp_path / "zebra" / f"{i:02d}.png", 255)
        write_png(tmp_path / "ant" / f"{i:02d}.PNG", 0)
    train, test = load(tmp_path), load(tmp_path, split="test")
    assert (len(train), len(test)) == (18, 2)  # every 10th image (sorted order) is test
    assert train.x.shape == (18, 1, 6, 6) and train.num_classes == 2
    assert train.meta["classes"] == ["ant", "zebra"]
    # ant images are black (-1), zebra images white (+1)
    assert torch.all(train.x[train.y == 0] == -1) and torch.all(train.x[train.y == 1] == 1)


def test_image_folder_unlabelled_rgb_resize_and_channels(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", 204, size=(12, 8), mode="RGB")  # colour (204, 0, 51)
    Image.new("RGB", (12, 8), (255, 0, 0)).save(tmp_path / "red.jpg", quality=95)
    d = load(tmp_path, image_size=4)
    assert d.y is None and d.num_classes == 0 and d.x.shape == (4, 3, 4, 4)
    assert torch.allclose(d.x[0], torch.tensor([204, 0, 51]).view(3, 1, 1) / 127.5 - 1)  # 0.png, sorted first
    assert torch.allclose(d.x[3], torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1), atol=0.05)  # red.jpg
    grey = load(tmp_path, image_size=4, channels=1)
    luma = (0.299 * 204 + 0.114 * 51) / 127.5 - 1  # Pillow's "L" conversion
    assert grey.x.shape == (4, 1, 4, 4) and torch.allclose(grey.x[0], torch.tensor(luma), atol=0.01)


def test_image_folder_16_bit_png_is_scaled_not_clipped(tmp_path):
    for i, v in enumerate([0, 32896, 65535]):
        Image.fromarray(np.full((4, 4), v, np.uint16)).save(tmp_path / f"{i}.png")
    d = load(tmp_path)
    assert d.x.shape == (3, 1, 4, 4)
    assert torch.allclose(d.x[:, 0, 0, 0], torch.tensor([0, 128, 255]) / 127.5 - 1)


def test_image_folder_mixed_sizes_need_image_size(tmp_path):
    write_png(tmp_path / "a" / "small.png", 10, size=(5, 5))
    write_png(tmp_path / "b" / "large.png", 10, size=(7, 9))
    with pytest.raises(DataError) as e:
        load(tmp_path)
    msg = str(e.value)
    assert "small.png" in msg and "5x5" in msg and "large.png" in msg and "7x9" in msg and "image_size" in msg
    assert load(tmp_path, image_size=5).x.shape == (2, 1, 5, 5)


def test_image_folder_truncated_png_names_the_file(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", 100, size=(32, 32))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(tmp_path / "3.png")
    raw = (tmp_path / "3.png").read_bytes()
    (tmp_path / "3.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"3\.png: cannot decode image"):
        load(tmp_path)


def test_image_folder_garbage_file_names_the_file(tmp_path):
    write_png(tmp_path / "ok.png", 1)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"bad\.jpg"):
        load(tmp_path)


def test_empty_folder_and_mixed_layout(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images found"):
        load(tmp_path / "empty")
    write_png(tmp_path / "mixed" / "top.png", 1)
    write_png(tmp_path / "mixed" / "cls" / "in.png", 1)
    with pytest.raises(DataError, match="top level"):
        load(tmp_path / "mixed")


def test_too_few_images_for_a_test_split(tmp_path):
    write_png(tmp_path / "one.png", 1)
    assert len(load(tmp_path)) == 1
    with pytest.raises(DataError, match="too few"):
        load(tmp_path, split="test")


# ---------------------------------------------------------------- .npy / .npz

@pytest.mark.parametrize("shape,want", [
    ((20, 5, 6), (1, 5, 6)), ((20, 5, 6, 3), (3, 5, 6)), ((20, 3, 5, 6), (3, 5, 6)), ((20, 1, 5, 6), (1, 5, 6)),
])
def test_npy_image_layouts(tmp_path, shape, want):
    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.save(tmp_path / "x.npy", arr)
    d = load(tmp_path / "x.npy")
    assert d.kind == "image" and d.x.shape == (18, *want) and d.y is None
    first = torch.from_numpy(arr[0].astype(np.float32) / 127.5 - 1)
    first = first[None] if first.dim() == 2 else (first.permute(2, 0, 1) if shape[-1] == 3 else first)
    assert torch.allclose(d.x[0], first)


def test_npy_float_ranges_and_points(tmp_path):
    np.save(tmp_path / "unit.npy", np.full((10, 4, 4), 0.25, dtype=np.float32))
    assert torch.allclose(load(tmp_path / "unit.npy").x, torch.tensor(-0.5))
    np.save(tmp_path / "signed.npy", np.full((10, 4, 4), -0.25, dtype=np.float64))
    assert torch.allclose(load(tmp_path / "signed.npy").x, torch.tensor(-0.25))
    mixed = np.full((10, 4, 4), 0.5)
    mixed[0] = -0.5  # the file is in [-1, 1]: its test split (all 0.5) must not be read as [0, 1]
    np.save(tmp_path / "mixed.npy", mixed)
    assert torch.allclose(load(tmp_path / "mixed.npy", split="test").x, torch.tensor(0.5))
    np.save(tmp_path / "wide.npy", np.full((10, 4, 4), 300.0))
    with pytest.raises(DataError, match="wide.npy.*300"):
        load(tmp_path / "wide.npy")
    pts = np.random.default_rng(1).normal(size=(50, 2)) * 10
    np.save(tmp_path / "pts.npy", pts)
    d = load(tmp_path / "pts.npy", split="test")
    assert d.kind == "points" and d.x.shape == (5, 2)
    assert torch.allclose(d.x, torch.from_numpy(pts[9::10]).float())


def test_npy_resize(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 10, 14), dtype=np.uint8))
    assert load(tmp_path / "x.npy", image_size=4).x.shape == (9, 1, 4, 4)


def test_npy_nan_names_file_and_index(tmp_path):
    arr = np.zeros((10, 4, 4), dtype=np.float32)
    arr[3, 1, 2] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    with pytest.raises(DataError, match=r"nan\.npy: contains NaN or inf \(first at index \(3, 1, 2\)\)"):
        load(tmp_path / "nan.npy")


@pytest.mark.parametrize("shape", [(30,), (2, 3, 4, 5, 6)])
def test_npy_wrong_rank(tmp_path, shape):
    np.save(tmp_path / "bad.npy", np.zeros(shape, dtype=np.uint8))
    with pytest.raises(DataError, match=rf"bad\.npy: .*rank {len(shape)}"):
        load(tmp_path / "bad.npy")


def test_npy_object_array_and_truncation(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: .*pickle"):
        load(tmp_path / "obj.npy")
    np.save(tmp_path / "cut.npy", np.zeros((10, 8, 8), dtype=np.uint8))
    raw = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:-100])
    with pytest.raises(DataError, match=r"cut\.npy: cannot read"):
        load(tmp_path / "cut.npy")
    np.save(tmp_path / "badchan.npy", np.zeros((10, 4, 5, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="channel axis"):
        load(tmp_path / "badchan.npy")


@pytest.mark.parametrize("xkey,ykey", [("x", "y"), ("images", "labels"), ("arr_0", None)])
def test_npz_keys(tmp_path, xkey, ykey):
    x = np.random.default_rng(0).integers(0, 256, (20, 3, 4, 4), dtype=np.uint8)
    arrays = {xkey: x} | ({ykey: np.arange(20) % 4} if ykey else {})
    np.savez(tmp_path / "d.npz", **arrays)
    d = load(tmp_path / "d.npz")
    assert d.x.shape == (18, 3, 4, 4)
    if ykey:
        assert d.num_classes == 4 and d.y.tolist()[:9] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    else:
        assert d.y is None


def test_npz_own_split_and_errors(tmp_path):
    np.savez_compressed(tmp_path / "k.npz", x_train=np.zeros((7, 4, 4), np.uint8), y_train=np.arange(7),
                        x_test=np.ones((3, 4, 4), np.uint8), y_test=np.arange(3))
    assert len(load(tmp_path / "k.npz")) == 7 and len(load(tmp_path / "k.npz", split="test")) == 3
    np.savez(tmp_path / "nokey.npz", pixels=np.zeros((5, 4, 4)))
    with pytest.raises(DataError, match=r"nokey\.npz: no data array.*pixels"):
        load(tmp_path / "nokey.npz")
    np.savez(tmp_path / "ylen.npz", x=np.zeros((5, 4, 4), np.uint8), y=np.arange(4))
    with pytest.raises(DataError, match=r"ylen\.npz: 5 examples but 4 labels"):
        load(tmp_path / "ylen.npz")
    np.savez(tmp_path / "cut.npz", x=np.zeros((50, 8, 8), np.uint8))
    raw = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.npz: cannot read"):
        load(tmp_path / "cut.npz")
    np.savez(tmp_path / "nan.npz", x=np.full((5, 2), np.inf))
    with pytest.raises(DataError, match=r"nan\.npz: contains NaN or inf"):
        load(tmp_path / "nan.npz")


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_official_split(tmp_path, gz):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (12, 28, 28)), gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(12) % 10, gz)
    test_x = rng.integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", test_x, gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", np.arange(5), gz)
    train, test = load(tmp_path), load(tmp_path, split="test")
    assert (len(train), len(test)) == (12, 5) and test.y.tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(test.x[:, 0], torch.from_numpy(test_x / 127.5 - 1).float(), atol=1e-6)


def test_idx_single_file_with_sibling_labels(tmp_path):
    write_idx(tmp_path / "my-images-idx3-ubyte.gz", np.zeros((20, 4, 4)), gz=True)
    write_idx(tmp_path / "my-labels-idx1-ubyte.gz", np.arange(20) % 3, gz=True)
    d = load(tmp_path / "my-images-idx3-ubyte.gz")
    assert d.x.shape == (18, 1, 4, 4) and d.num_classes == 3
    write_idx(tmp_path / "solo.idx", np.zeros((10, 4, 4)))
    assert load(tmp_path / "solo.idx").y is None


def test_idx_corruptions(tmp_path):
    write_idx(tmp_path / "ok", np.zeros((10, 4, 4)))
    good = (tmp_path / "ok").read_bytes()
    (tmp_path / "short").write_bytes(good[:-7])
    with pytest.raises(DataError, match=r"short: truncated IDX data: shape \(10, 4, 4\) needs 160 bytes, found 153"):
        load(tmp_path / "short")
    (tmp_path / "long").write_bytes(good + b"xx")
    with pytest.raises(DataError, match="long: IDX file has 2 bytes beyond"):
        load(tmp_path / "long")
    (tmp_path / "short.gz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(DataError, match=r"short\.gz: cannot read"):
        load(tmp_path / "short.gz")
    (tmp_path / "labels1d").write_bytes(good[:2] + bytes([0x08, 1]) + struct.pack(">I", 4) + bytes(4))
    with pytest.raises(DataError, match="rank 1"):
        load(tmp_path / "labels1d")


def test_idx_folder_bad_magic_and_missing_labels(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 4, 4)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x08\x03\x00\x00" + bytes(20))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: not an IDX file \(bad magic number"):
        load(tmp_path)
    with pytest.raises(DataError, match=r"missing IDX file\(s\) t10k-images-idx3-ubyte"):
        load(tmp_path, split="test")
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(9))
    with pytest.raises(DataError, match="do not match 10 images"):
        load(tmp_path)


# ---------------------------------------------------------------- paths

def test_missing_and_unrecognised_paths(tmp_path):
    with pytest.raises(DataError, match="no file or folder"):
        load(tmp_path / "nope.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt: unrecognised file format"):
        load(tmp_path / "notes.txt")
    write_png(tmp_path / "one.png", 1)
    with pytest.raises(DataError, match="single image"):
        load(tmp_path / "one.png")
