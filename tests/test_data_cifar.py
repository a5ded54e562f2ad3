"""CIFAR-10 python batches: loading small batches the tests write, and refusing malicious pickles."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from genmodels.data import load
from genmodels.data.cifar import safe_unpickle
from genmodels.errors import DataError


def batch(n: int, seed: int = 0, bytes_keys: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    d = {"batch_label": "test batch", "labels": [int(v) for v in rng.integers(0, 10, n)],
         "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"img{i}.png" for i in range(n)]}
    if bytes_keys:  # as in the original Python 2 files read with encoding="bytes"
        d = {k.encode(): v for k, v in d.items()}
        d[b"batch_label"] = b"test batch"
    return d


def write(path, obj, protocol=pickle.DEFAULT_PROTOCOL) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_single_batch_any_protocol(tmp_path, protocol):
    b = batch(20, bytes_keys=protocol == 2)
    write(tmp_path / "data_batch_1", b, protocol)
    d = load(tmp_path / "data_batch_1")
    assert d.x.shape == (18, 3, 32, 32) and d.num_classes == 10
    data, labels = b.get("data", b.get(b"data")), b.get("labels", b.get(b"labels"))
    # rows hold the R, G and B planes in turn
    want = torch.from_numpy(data[0].reshape(3, 32, 32).astype(np.float32) / 127.5 - 1)
    assert torch.allclose(d.x[0], want, atol=1e-6) and d.y[0] == labels[0]


def test_batches_folder_split(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    write(folder / "data_batch_1", batch(6, 1))
    write(folder / "data_batch_2", batch(5, 2))
    write(folder / "test_batch", batch(4, 3))
    write(folder / "batches.meta", {"label_names": ["airplane"] * 10})
    train, test = load(folder), load(folder, split="test")
    assert (len(train), len(test)) == (11, 4)
    assert train.y.tolist() == batch(6, 1)["labels"] + batch(5, 2)["labels"]
    assert load(folder, image_size=16, channels=1).x.shape == (11, 1, 16, 16)


class RunsCode:
    """Unpickling this calls os.system (the classic pickle exploit)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class Evaluates:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = batch(3) | {"data": RunsCode(f"touch {marker}")}
    write(tmp_path / "data_batch_1", payload, protocol)
    with pytest.raises(DataError,
                       match=r"data_batch_1: unsafe or corrupt pickle: refusing to load (posix|os|nt)\.system"):
        load(tmp_path / "data_batch_1")
    assert not marker.exists()
    write(tmp_path / "evil", {"labels": Evaluates()}, protocol)
    with pytest.raises(DataError, match=r"refusing to load (__builtin__|builtins)\.eval"):
        load(tmp_path / "evil")


def test_object_arrays_and_other_objects_are_refused(tmp_path):
    write(tmp_path / "obj", {"data": np.array([None, {"a": 1}], dtype=object), "labels": [0, 1]})
    with pytest.raises(DataError, match="object-dtype"):
        safe_unpickle(tmp_path / "obj")
    write(tmp_path / "set", {"data": {1, 2}, "labels": [0]}, protocol=4)
    with pytest.raises(DataError, match="refusing a set"):
        safe_unpickle(tmp_path / "set")


def test_corrupt_and_malformed_batches(tmp_path):
    write(tmp_path / "full", batch(10))
    raw = (tmp_path / "full").read_bytes()
    (tmp_path / "cut").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut: (unsafe or )?corrupt pickle"):
        load(tmp_path / "cut")
    write(tmp_path / "shape", batch(4) | {"data": np.zeros((4, 100), np.uint8)})
    with pytest.raises(DataError, match=r"shape: CIFAR 'data' must be uint8 of shape \(N, 3072\)"):
        load(tmp_path / "shape")
    write(tmp_path / "nolabels", {"data": np.zeros((4, 3072), np.uint8)})
    with pytest.raises(DataError, match="needs 'data' and 'labels'"):
        load(tmp_path / "nolabels")
    write(tmp_path / "count", batch(4) | {"labels": [1, 2]})
    with pytest.raises(DataError, match="expected 4 integer labels"):
        load(tmp_path / "count")
    write(tmp_path / "list", [1, 2, 3])
    with pytest.raises(DataError, match="must be a dict"):
        load(tmp_path / "list")
