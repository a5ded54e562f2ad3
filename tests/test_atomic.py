"""The one atomic-write helper: whole files or nothing, a clean one-line error naming the path and
the cause, earlier files intact, no temporary left behind, and an append-only log without torn lines."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from disk_faults import fail_writes

from genmodels.atomic import LineAppender, atomic_file, check_output_path, remove_stale_temporaries, write_text
from genmodels.errors import GenmodelsError, OutputError
from genmodels.run.checkpoint import load_checkpoint, save_atomic
from genmodels.viz import save_curves, save_grid


def _only_file(folder):
    return sorted(os.listdir(folder))


def test_whole_file_or_nothing_on_a_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    write_text(path, "old contents\n")
    fail_writes(monkeypatch, lambda p: p == path, room=3)
    with pytest.raises(OutputError) as e:
        write_text(path, "new contents that do not fit\n")
    assert str(e.value) == f"cannot write {path}: no space left on the device"
    assert isinstance(e.value, GenmodelsError) and isinstance(e.value, OSError)
    assert path.read_text() == "old contents\n"
    assert _only_file(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("write", ["checkpoint", "npy", "png", "plot"])
def test_every_kind_of_file_fails_cleanly_and_keeps_the_old_one(tmp_path, monkeypatch, write):
    """torch.save wraps the file's OSError in a RuntimeError; numpy, Pillow and matplotlib raise it
    as is: each becomes the same OutputError."""
    suffix = {"checkpoint": ".pt", "npy": ".npy", "png": ".png", "plot": ".png"}[write]
    path = tmp_path / f"file{suffix}"

    def do(value: float):
        if write == "checkpoint":
            save_atomic({"format": "genmodels-checkpoint", "version": 1, "model_name": "toy", "model_config": {},
                         "step": int(value), "modules": {}, "optimizers": {}, "w": torch.full((2000,), value)}, path)
        elif write == "npy":
            with atomic_file(path) as f:
                np.save(f, np.full((2000,), value, dtype=np.float32))
        elif write == "png":
            save_grid(torch.full((4, 1, 16, 16), value / 10 - 1), path)
        else:
            save_curves({"loss": [(i, value * i) for i in range(50)]}, path)

    do(1.0)
    before = path.read_bytes()
    fail_writes(monkeypatch, lambda p: p == path, room=20)
    with pytest.raises(OutputError, match=f"cannot write {path}: no space left on the device"):
        do(2.0)
    assert path.read_bytes() == before
    assert _only_file(tmp_path) == [path.name]
    if write == "checkpoint":
        assert load_checkpoint(path)["step"] == 1


@pytest.mark.parametrize("code, cause", [(errno.EROFS, "read-only file system"),
                                         (errno.EACCES, "permission denied")])
def test_read_only_and_refused_folders_name_the_cause(tmp_path, monkeypatch, code, cause):
    path = tmp_path / "x.npy"
    fail_writes(monkeypatch, lambda p: True, errno_=code)
    with pytest.raises(OutputError) as e:
        write_text(path, "x")
    assert str(e.value) == f"cannot write {path}: {cause}"
    assert _only_file(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the mocked EACCES case covers it")
def test_a_real_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            write_text(folder / "x.txt", "x")
    finally:
        folder.chmod(0o755)


def test_a_folder_or_a_path_under_a_file_is_refused_before_writing(tmp_path):
    (tmp_path / "dir.npy").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"dir\.npy: it is a folder, not a file"):
        write_text(tmp_path / "dir.npy", "x")
    with pytest.raises(OutputError, match=r"file is a file, not a folder"):
        write_text(tmp_path / "file" / "sub" / "x.txt", "x")
    with pytest.raises(OutputError, match="it is a file, not a folder"):
        check_output_path(tmp_path / "file", folder=True)
    assert check_output_path(tmp_path / "new" / "x.txt") == tmp_path / "new" / "x.txt"


def test_a_failed_append_leaves_the_earlier_lines_and_no_torn_line(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    log = LineAppender(path)
    log.append(json.dumps({"step": 1}))
    log.close()
    fail_writes(monkeypatch, lambda p: p == path, room=25)  # room for one more line and part of the next
    log = LineAppender(path)
    log.append(json.dumps({"step": 2}))
    with pytest.raises(OutputError, match="metrics.jsonl: no space left on the device"):
        log.append(json.dumps({"step": 3, "loss": 0.123456789}))
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    log.close()
    monkeypatch.undo()  # space freed: appending works again and the file stays valid JSON lines
    log = LineAppender(path)
    log.append(json.dumps({"step": 4}))
    log.close()
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 4]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)
    stale = tmp_path / f".latest.pt.tmp-{dead}"
    live = tmp_path / f".x.npy.tmp-{os.getppid()}"
    for p in (stale, live, tmp_path / "keep.pt"):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert _only_file(tmp_path) == sorted([live.name, "keep.pt"])
