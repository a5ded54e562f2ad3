"""SIGTERM / SIGINT during training (real subprocesses): the step in progress finishes, a checkpoint
is written, the stop is recorded in metrics.jsonl, the exit code is 128 + the signal number with a
one-line message, and resuming gives the bit-identical result of an uninterrupted run. A second
signal exits at once. Under torchrun every rank stops after the same step."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_trainer_resume import _assert_same_tensors
from toy_models import install

from genmodels.cli import main
from genmodels.report.runs import summarize
from genmodels.run.checkpoint import load_checkpoint
from genmodels.training.logging import read_metrics

HERE = Path(__file__).parent
STEPS = 60
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _args(out: Path, *extra: str, delay: float = 0.0) -> list[str]:
    # checkpoint_every beyond the run: the only mid-run checkpoint is the one the signal makes
    return ["train", "toy", "--data", "toy2d", "--out", str(out), "--steps", str(STEPS), "--batch-size", "8",
            "--seed", "5", "--device", "cpu", "--no-progress", "--delay", str(delay),
            "--set", "trainer.checkpoint_every=1000", "--set", "trainer.log_every=5", "--set", "trainer.sample_every=0",
            "--set", "trainer.ema_decay=0.9", "--set", "trainer.report=false", "--set", "trainer.tensorboard=false",
            *extra]


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "toy_models.py"), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def _wait_for_step(run: Path, step: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["step"] >= step for r in read_metrics(run / "metrics.jsonl")):
            return
        time.sleep(0.02)
    raise AssertionError(f"the run ended or stalled before step {step}: {proc.stderr.read() if proc.poll() else ''}")


def _values(run: Path) -> list[dict]:
    """The logged values (no timings, no events)."""
    return [{k: v for k, v in r.items() if not k.endswith("time")} for r in read_metrics(run / "metrics.jsonl")
            if "event" not in r]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_and_resume_is_bit_identical(tmp_path, monkeypatch, signum):
    stopped = tmp_path / "stopped"
    proc = _start(_args(stopped, delay=0.05))
    try:
        _wait_for_step(stopped, 10, proc)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(rf"genmodels train: stopped by {name} after step (\d+) of {STEPS}; .*latest\.pt holds "
                         rf"that step: continue with --resume", last)
    assert match, err
    assert "Traceback" not in err
    at = int(match.group(1))
    assert 10 <= at < STEPS
    assert load_checkpoint(stopped / "checkpoints" / "latest.pt")["step"] == at
    events = [r for r in read_metrics(stopped / "metrics.jsonl") if "event" in r]
    assert events == [{"step": at, "event": "stopped", "signal": name}]
    assert summarize(stopped).losses  # `genmodels runs` shows the last logged values, not the event

    install(monkeypatch)
    assert main(_args(stopped, "--resume", delay=0.05)) == 0  # the model config is part of the identity
    straight = tmp_path / "straight"
    assert main(_args(straight)) == 0
    a = load_checkpoint(stopped / "checkpoints" / "latest.pt")
    b = load_checkpoint(straight / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == STEPS
    for key in ("modules", "optimizers", "ema", "data", "rng"):
        _assert_same_tensors(a[key], b[key], key)
    assert _values(stopped) == _values(straight)
    assert [r["step"] for r in read_metrics(stopped / "metrics.jsonl") if "event" in r] == [at]  # kept on resume


def test_a_second_signal_exits_at_once(tmp_path):
    run = tmp_path / "run"
    proc = _start(_args(run, delay=30.0))  # the first step sleeps far longer than the test waits
    try:
        deadline = time.monotonic() + 60
        while not (run / "config.toml").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # config.toml is written after the handlers are installed
        time.sleep(0.5)       # now inside the first step
        os.kill(proc.pid, signal.SIGTERM)
        for line in proc.stderr:
            if "stopping after this step" in line:
                break
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        waited = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM again: exiting now, without a final checkpoint" in err
    assert waited < 10  # the step in progress (30 s) was not finished
    assert not (run / "checkpoints" / "latest.pt").exists()
    assert read_metrics(run / "metrics.jsonl") == []


def _workers(agent: int) -> dict[int, int]:
    """{rank: pid} of the worker processes torchrun `agent` started (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == agent:
            env = dict(item.decode(errors="replace").partition("=")[::2] for item in environ if b"=" in item)
            if "RANK" in env:
                found[int(env["RANK"])] = int(entry.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finding torchrun's workers needs /proc")
def test_under_torchrun_every_rank_stops_after_the_same_step(tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in ENV.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "toy_models.py"), *_args(run, delay=0.05)]
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        _wait_for_step(run, 10, agent)
        workers = _workers(agent.pid)
        assert sorted(workers) == [0, 1], workers
        os.kill(workers[1], signal.SIGTERM)  # only the rank that does not write hears it
        _, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    steps = {int(s) for s in re.findall(r"stopped by SIGTERM after step (\d+) of", err)}
    assert len(steps) == 1, err[-3000:]
    at = steps.pop()
    assert err.count(f"stopped by SIGTERM after step {at} of {STEPS}") == 2, err[-3000:]   # both ranks
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == at
    assert [r for r in read_metrics(run / "metrics.jsonl") if "event" in r] == [
        {"step": at, "event": "stopped", "signal": "SIGTERM"}]
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == at
