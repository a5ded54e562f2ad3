"""`genmodels sample RUN_DIR --n N --out PATH`: .png grids/scatter plots, .npy arrays, EMA, options."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image
from toy_models import install

from genmodels.cli import build_parser, main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One trained toy run on images and one on 2-D points."""
    mp = pytest.MonkeyPatch()
    install(mp)
    root = tmp_path_factory.mktemp("runs")
    for data in ("toyimg", "toy2d"):
        assert main(["train", "toy", "--data", data, "--out", str(root / data), "--steps", "20", "--batch-size", "8",
                     "--device", "cpu", "--no-progress", "--set", "trainer.sample_every=0",
                     "--set", "trainer.ema_decay=0.9"]) == 0
    yield root
    mp.undo()


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    install(monkeypatch)


def test_images_npy_are_nchw_in_unit_range(runs, tmp_path):
    out = tmp_path / "s.npy"
    assert main(["sample", str(runs / "toyimg"), "--n", "10", "--out", str(out), "--device", "cpu",
                 "--batch-size", "4"]) == 0
    x = np.load(out)
    assert x.shape == (10, 1, 6, 6) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0


def test_points_npy_are_in_data_coordinates_and_seeded(runs, tmp_path):
    paths = [tmp_path / f"{name}.npy" for name in ("a", "b", "c", "raw", "cold")]
    common = ["--n", "400", "--device", "cpu"]
    assert main(["sample", str(runs / "toy2d"), *common, "--out", str(paths[0]), "--seed", "1"]) == 0
    assert main(["sample", str(runs / "toy2d"), *common, "--out", str(paths[1]), "--seed", "1"]) == 0
    assert main(["sample", str(runs / "toy2d"), *common, "--out", str(paths[2]), "--seed", "2"]) == 0
    assert main(["sample", str(runs / "toy2d"), *common, "--out", str(paths[3]), "--seed", "1", "--no-ema"]) == 0
    assert main(["sample", str(runs / "toy2d"), *common, "--out", str(paths[4]), "--seed", "1",
                 "--temperature", "0.1"]) == 0
    a, b, c, raw, cold = (np.load(p) for p in paths)
    assert a.shape == (400, 2) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, raw)
    assert cold.std(0).max() < 0.5 * a.std(0).max()       # the family's sample option reached sample()
    assert a.mean(0)[1] < 0                               # data coordinates, not [0, 1]


def test_png_outputs(runs, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", str(runs / "toyimg"), "--n", "9", "--out", str(grid), "--device", "cpu"]) == 0
    with Image.open(grid) as img:
        assert img.width > 3 * 6 and img.height > 3 * 6
    scatter = tmp_path / "scatter.png"
    assert main(["sample", str(runs / "toy2d"), "--n", "50", "--out", str(scatter), "--device", "cpu"]) == 0
    assert scatter.stat().st_size > 0


@pytest.mark.parametrize("argv, words", [
    (["--n", "5", "--out", "x.jpg"], [".png", ".npy"]),
    (["--n", "0", "--out", "x.npy"], ["--n"]),
    (["--out", "x.npy"], ["--n is required"]),
])
def test_bad_requests(runs, capsys, argv, words):
    assert main(["sample", str(runs / "toy2d"), "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err


def test_not_a_run_directory(tmp_path, capsys):
    assert main(["sample", str(tmp_path), "--n", "4", "--out", str(tmp_path / "x.npy")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_help_documents_every_option_and_the_model_options(runs):
    parser = build_parser(["sample", str(runs / "toy2d")])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["sample"]
    flags = set()
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        flags.update(action.option_strings)
        assert "default" in action.help or "required" in action.help, action.option_strings
    assert {"--n", "--out", "--seed", "--ema", "--no-ema", "--temperature", "--clip", "--no-clip"} <= flags
