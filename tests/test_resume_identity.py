"""`--resume` keeps the run what it was: a conflicting seed, data, model config or precision is
refused naming both values (or allowed with --override-identity, which is recorded); a missing
run, or one whose config.toml is gone, is reported as exactly that and never started afresh."""

from __future__ import annotations

import pytest
from toy_models import install

from genmodels.cli import main
from genmodels.config import load_toml
from genmodels.run.checkpoint import load_checkpoint
from genmodels.training.logging import read_metrics

FAST = ["--batch-size", "8", "--device", "cpu", "--no-progress", "--precision", "fp32",
        "--set", "trainer.sample_every=0", "--set", "trainer.log_every=4", "--set", "trainer.report=false",
        "--set", "trainer.tensorboard=false"]


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    install(monkeypatch)


@pytest.fixture
def run(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "toy", "--data", "toy2d", "--out", str(out), "--seed", "11", "--steps", "8", *FAST]) == 0
    return out


def _error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("genmodels train: error:"), err
    return err


@pytest.mark.parametrize("flags, change", [
    (["--seed", "12"], "seed: 11 in the run vs 12 now"),
    (["--data", "toyimg"], "data.name: 'toy2d' in the run vs 'toyimg' now"),
    (["--set", "data.limit=50"], "data.limit: 0 in the run vs 50 now"),
    (["--precision", "bf16"], "trainer.precision: 'fp32' in the run vs 'bf16' now"),
])
def test_a_conflicting_identity_is_refused_naming_both_values(run, capsys, flags, change):
    before = (run / "config.toml").read_text()
    err = _error(capsys, main(["train", "toy", "--out", str(run), "--resume", "--steps", "12", *FAST, *flags]))
    assert change in err and "--override-identity" in err
    assert (run / "config.toml").read_text() == before
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 8


def test_a_model_change_without_a_checkpoint_is_refused_too(run, capsys):
    (run / "checkpoints" / "latest.pt").unlink()
    err = _error(capsys, main(["train", "toy", "--out", str(run), "--resume", "--steps", "12", "--lr", "0.01", *FAST]))
    assert "model.lr: 0.05 in the run vs 0.01 now" in err


def test_override_identity_is_allowed_and_recorded(run):
    assert main(["train", "toy", "--out", str(run), "--resume", "--steps", "12", "--seed", "12", "--lr", "0.01",
                 "--override-identity", *FAST]) == 0
    config, _ = load_toml(run / "config.toml")
    assert config.seed == 12 and config.model.lr == 0.01
    events = [r for r in read_metrics(run / "metrics.jsonl") if "event" in r]
    assert events == [{"step": 8, "event": "resumed with changes",
                       "changes": "seed: 11 in the run vs 12 now; model.lr: 0.05 in the run vs 0.01 now"}]
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 12


def test_an_unchanged_identity_resumes(run):
    assert main(["train", "toy", "--out", str(run), "--resume", "--steps", "12", "--seed", "11", *FAST]) == 0
    assert [r for r in read_metrics(run / "metrics.jsonl") if "event" in r] == []


@pytest.mark.parametrize("with_data", [False, True])
def test_resume_of_a_missing_run_says_so_and_starts_nothing(tmp_path, capsys, with_data):
    missing = tmp_path / "nope"
    data = ["--data", "toy2d"] if with_data else []
    err = _error(capsys, main(["train", "toy", "--out", str(missing), "--resume", *data, "--steps", "4", *FAST]))
    assert f"--resume: {missing} does not exist, so there is no run to resume" in err
    assert not missing.exists()


@pytest.mark.parametrize("with_data", [False, True])
def test_resume_of_a_run_without_config_says_so(run, capsys, with_data):
    (run / "config.toml").unlink()
    data = ["--data", "toy2d"] if with_data else []
    err = _error(capsys, main(["train", "toy", "--out", str(run), "--resume", *data, "--steps", "12", *FAST]))
    assert f"--resume: {run} has no config.toml" in err
    assert not (run / "config.toml").exists()


def test_override_identity_needs_resume(tmp_path, capsys):
    err = _error(capsys, main(["train", "toy", "--data", "toy2d", "--out", str(tmp_path / "r"), "--steps", "4",
                               "--override-identity", *FAST]))
    assert "--override-identity goes with --resume" in err
