"""One writer per run directory: a second trainer (or a resume) on a run being trained is refused
with one line naming the holder's pid, the first one finishes, and the run it leaves is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy_models import install

from genmodels.cli import main
from genmodels.config import load_toml
from genmodels.errors import RunLocked
from genmodels.run.checkpoint import load_checkpoint
from genmodels.training.run_lock import LOCK_NAME, RunLock

HERE = Path(__file__).parent
STEPS = 60


def _args(out: Path, seed: int, *extra: str, delay: float = 0.0) -> list[str]:
    return ["train", "toy", "--data", "toy2d", "--out", str(out), "--steps", str(STEPS), "--batch-size", "8",
            "--seed", str(seed), "--device", "cpu", "--no-progress", "--delay", str(delay),
            "--set", "trainer.checkpoint_every=10", "--set", "trainer.log_every=5", "--set", "trainer.sample_every=0",
            "--set", "trainer.report=false", "--set", "trainer.tensorboard=false", *extra]


def _toy(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(HERE / "toy_models.py"), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_step(run: Path, step: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
        if any(json.loads(line)["step"] >= step for line in lines if line.strip()):
            return
        time.sleep(0.02)
    raise AssertionError(f"the first trainer did not reach step {step}")


def test_lock_names_the_holder_and_is_released(tmp_path):
    run = tmp_path / "run"
    with RunLock(run):
        assert (run / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(RunLocked, match=rf"another genmodels process \(pid {os.getpid()}\) is writing"):
            RunLock(run).acquire()
    with RunLock(run):  # released on exit; the lock file staying behind means nothing
        pass
    assert os.listdir(run) == [LOCK_NAME]


def test_two_trainers_on_one_run_the_second_is_refused(tmp_path, monkeypatch):
    run = tmp_path / "run"
    # slow steps (sleeping, not computing) keep the first trainer busy while the others start
    first = _toy(*_args(run, 3, delay=0.25))
    procs = [first]
    try:
        _wait_for_step(run, 5, first)
        procs += [_toy(*_args(run, 4)),                    # a new run with another seed
                  _toy(*_args(run, 3, "--resume"))]        # a resume while the first one trains
        refused = [(p, p.communicate(timeout=120)[1]) for p in procs[1:]]
        assert first.poll() is None, "the first trainer finished too early for the test to mean anything"
        out, err = first.communicate(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for proc, stderr in refused:
        lines = stderr.strip().splitlines()
        assert proc.returncode == 2, stderr
        assert lines[-1].startswith("genmodels train: error:"), stderr
        assert f"another genmodels process (pid {first.pid}) is writing this run" in lines[-1]
        assert not any("Traceback" in line for line in lines)
    assert first.returncode == 0, err
    assert f"to step {STEPS}" in out

    # the run is the first trainer's alone: its seed, its steps, a checkpoint that loads and samples
    install(monkeypatch)
    config, _ = load_toml(run / "config.toml")
    assert config.seed == 3
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["seed"] == 3
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(5, STEPS + 1, 5))
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npy"), "--device", "cpu"]) == 0
