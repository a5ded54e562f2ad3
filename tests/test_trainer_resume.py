"""Kill a training process with SIGKILL mid-run, resume it, and get the bit-identical result of an
uninterrupted run (CPU): model, optimisers, EMA, data order and every random stream are restored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from toy_models import install

from genmodels.cli import main
from genmodels.run.checkpoint import load_checkpoint

HERE = Path(__file__).parent
STEPS = 80


def _args(out: Path, *extra: str, delay: float = 0.03) -> list[str]:
    return ["train", "toy", "--data", "toy2d", "--out", str(out), "--steps", str(STEPS), "--batch-size", "8",
            "--seed", "11", "--device", "cpu", "--no-progress", "--delay", str(delay),
            "--set", "trainer.checkpoint_every=10", "--set", "trainer.log_every=5",
            "--set", "trainer.sample_every=0", "--set", "trainer.ema_decay=0.9", *extra]


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _assert_same_tensors(a, b, where="checkpoint"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_sigkill_then_resume_is_bit_identical(tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(HERE / "toy_models.py"), *_args(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(r["step"] >= 25 for r in _records(killed)):
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    interrupted_at = load_checkpoint(killed / "checkpoints" / "latest.pt")["step"]
    assert 20 <= interrupted_at < STEPS
    assert max(r["step"] for r in _records(killed)) < STEPS

    install(monkeypatch)
    assert main(_args(killed, "--resume")) == 0
    straight = tmp_path / "straight"
    assert main(_args(straight, delay=0.0)) == 0  # the delay only slows the killed run

    a = load_checkpoint(killed / "checkpoints" / "latest.pt")
    b = load_checkpoint(straight / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == STEPS
    for key in ("modules", "optimizers", "ema", "data", "rng"):
        _assert_same_tensors(a[key], b[key], key)
    strip = [{k: v for k, v in r.items() if not k.endswith("time")} for r in _records(killed)]
    assert strip == [{k: v for k, v in r.items() if not k.endswith("time")} for r in _records(straight)]
    assert [r["step"] for r in strip] == list(range(5, STEPS + 1, 5))
