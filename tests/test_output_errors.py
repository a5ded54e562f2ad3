"""Writing fails cleanly through the CLI: a full disk during training or sampling (mocked ENOSPC at
the write), a read-only file system or a refused permission (mocked EROFS/EACCES; a real read-only
folder when not root), and paths of the wrong type each give one line naming the path and the
cause, exit 2, and leave every earlier file intact and no partial file behind."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from disk_faults import fail_writes
from toy_models import install

from genmodels.cli import main
from genmodels.run.checkpoint import load_checkpoint

FAST = ["--batch-size", "8", "--device", "cpu", "--no-progress", "--set", "trainer.sample_every=0",
        "--set", "trainer.log_every=2", "--set", "trainer.report=false", "--set", "trainer.tensorboard=false",
        "--set", "trainer.checkpoint_every=4"]


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    install(monkeypatch)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    install(mp)
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "toy", "--data", "toy2d", "--out", str(run), "--steps", "4", *FAST]) == 0
    yield run
    mp.undo()


def _train(out, *extra) -> int:
    return main(["train", "toy", "--data", "toy2d", "--out", str(out), "--steps", "12", *FAST, *extra])


def _one_line(capsys, code: int, command: str = "train") -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("genmodels: precision")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"genmodels {command}: error:"), err
    return lines[0]


def _temporaries(folder) -> list[str]:
    return [name for _, _, files in os.walk(folder) for name in files if ".tmp-" in name]


def test_a_full_disk_during_training_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    fail_writes(monkeypatch, lambda p: p.name == "latest.pt", room=100, after=1)  # the step-4 save fits
    line = _one_line(capsys, _train(run))
    assert line.endswith(f"cannot write {run / 'checkpoints' / 'latest.pt'}: no space left on the device")
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 4
    assert _temporaries(run) == []
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6, 8]


def test_a_full_disk_on_the_metrics_log_leaves_whole_lines(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    fail_writes(monkeypatch, lambda p: p.name == "metrics.jsonl", room=250, after=1)  # the log's start is a rewrite
    line = _one_line(capsys, _train(run))
    assert line.endswith(f"cannot write {run / 'metrics.jsonl'}: no space left on the device")
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n") and 0 < len(text) <= 250
    assert all(json.loads(line)["step"] for line in text.splitlines())
    assert _temporaries(run) == []


def test_a_full_disk_during_sampling_leaves_the_earlier_output(trained, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.npy"
    assert main(["sample", str(trained), "--n", "50", "--out", str(out), "--device", "cpu"]) == 0
    before = out.read_bytes()
    fail_writes(monkeypatch, lambda p: p.suffix == ".npy", room=100)
    for path in (out, tmp_path / "new.npy"):
        code = main(["sample", str(trained), "--n", "50", "--out", str(path), "--device", "cpu", "--seed", "3"])
        assert _one_line(capsys, code, "sample").endswith(f"cannot write {path}: no space left on the device")
    assert out.read_bytes() == before and np.load(out).shape == (50, 2)
    assert sorted(os.listdir(tmp_path)) == ["s.npy"]


@pytest.mark.parametrize("code, cause", [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")])
def test_read_only_and_forbidden_outputs_are_one_line(trained, tmp_path, monkeypatch, capsys, code, cause):
    fail_writes(monkeypatch, lambda p: True, errno_=code)
    run = tmp_path / "run"
    assert _one_line(capsys, _train(run)).endswith(f"cannot write {run / 'config.toml'}: {cause}")
    out = tmp_path / "s.png"
    line = _one_line(capsys, main(["sample", str(trained), "--n", "8", "--out", str(out), "--device", "cpu"]),
                     "sample")
    assert line.endswith(f"cannot write {out}: {cause}")
    assert not out.exists() and _temporaries(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the mocked EROFS/EACCES cases "
                                               "cover the error path")
def test_a_real_read_only_folder(trained, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code = main(["sample", str(trained), "--n", "8", "--out", str(folder / "s.npy"), "--device", "cpu"])
        assert "permission denied" in _one_line(capsys, code, "sample")
        assert "permission denied" in _one_line(capsys, _train(folder / "run"))
    finally:
        folder.chmod(0o755)


def test_paths_of_the_wrong_type_are_one_line(trained, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    assert _one_line(capsys, _train(a_file)).endswith(f"cannot write {a_file}: it is a file, not a folder")
    assert _one_line(capsys, _train(a_file / "run")).endswith(f"{a_file} is a file, not a folder")
    line = _one_line(capsys, main(["train", "toy", "--config", str(tmp_path), "--out", str(tmp_path / "r")]))
    assert line.endswith(f"{tmp_path}: is a folder, not a TOML config file")
    sample = ["sample", str(trained), "--n", "4", "--device", "cpu", "--out"]
    assert _one_line(capsys, main([*sample, str(folder)]), "sample").endswith(f"{folder}: it is a folder, not a file")
    line = _one_line(capsys, main([*sample, str(a_file / "s.npy")]), "sample")
    assert line.endswith(f"{a_file} is a file, not a folder")
    line = _one_line(capsys, main(["report", str(trained), "--no-views", "--out", str(folder)]), "report")
    assert line.endswith(f"{folder}: it is a folder, not a file")
    assert a_file.read_text() == "not a folder" and os.listdir(folder) == []
