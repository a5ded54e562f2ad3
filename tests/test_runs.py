"""`genmodels runs [DIR]`: run directories found under a folder and summarised from the files the
trainer writes (config.toml, metrics.jsonl) and the evaluation (eval.json)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from genmodels.cli import main
from genmodels.config import RunConfig
from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError
from genmodels.report.runs import find_runs, format_runs, summarize
from genmodels.run import RunDir
from genmodels.training.logging import MetricsLogger


def make_run(path: Path, family: str, data: str, steps: int, records: list[dict], spec: DataSpec) -> Path:
    """A run directory as the trainer leaves it, written with the trainer's own writers."""
    cfg = RunConfig.default(family).merge({"out": str(path), "data": {"name": data}, "trainer": {"steps": steps}},
                                          "test")
    RunDir(path).write_config(cfg, spec)
    logger = MetricsLogger(path, tensorboard=False)
    for r in records:
        logger.log(r.pop("step"), r, epoch=0, time=1.5)
    logger.close()
    return path


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    points, digits = DataSpec(kind="points", shape=(2,), num_classes=8), DataSpec(kind="image", shape=(1, 8, 8))
    make_run(root / "gan-ring", "gan", "ring8", 100, [{"step": 50, "loss_D": 1.3, "loss_G": 0.7},
                                                     {"step": 100, "loss_D": 1.2, "loss_G": 0.9}], points)
    make_run(root / "sweep" / "ddpm-a", "ddpm", "digits", 1000, [{"step": 10, "loss": 0.5}], digits)
    make_run(root / "sweep" / "vae-b", "vae", "digits", 20, [], digits)
    (root / "sweep" / "ddpm-a" / "eval.json").write_text(json.dumps(
        {"title": "t", "metrics": {"FD-raw": {"value": 0.25, "std": None, "real_floor": 0.01, "real_floor_std": None},
                                   "precision": {"value": 0.8}}}))
    (root / "notes").mkdir()
    (root / ".hidden" / "x").mkdir(parents=True)
    (root / ".hidden" / "x" / "config.toml").write_text("")
    return root


def test_find_runs_recurses_but_not_into_runs_or_hidden_folders(runs):
    assert [p.relative_to(runs).as_posix() for p in find_runs(runs)] == ["gan-ring", "sweep/ddpm-a", "sweep/vae-b"]
    assert find_runs(runs / "gan-ring") == [runs / "gan-ring"]
    with pytest.raises(ConfigError, match="no such directory"):
        find_runs(runs / "missing")


def test_summary_has_model_data_steps_last_losses_and_metrics(runs):
    gan = summarize(runs / "gan-ring")
    assert (gan.model, gan.data, gan.step, gan.steps) == ("gan", "ring8", 100, 100)
    assert gan.losses == {"loss_D": 1.2, "loss_G": 0.9} and gan.metrics == {}
    ddpm = summarize(runs / "sweep" / "ddpm-a")
    assert ddpm.metrics == {"FD-raw": 0.25, "precision": 0.8}
    vae = summarize(runs / "sweep" / "vae-b")
    assert (vae.step, vae.losses) == (0, {})


def test_torn_last_line_is_skipped(runs):
    with open(runs / "gan-ring" / "metrics.jsonl", "a") as f:
        f.write('{"step": 150, "loss_D": 1.')                    # a crash mid-write
    assert summarize(runs / "gan-ring").step == 100


def test_unreadable_config_is_reported_not_fatal(runs):
    (runs / "sweep" / "vae-b" / "config.toml").write_text("[model\n")
    s = summarize(runs / "sweep" / "vae-b")
    assert s.model == "?" and "config.toml unreadable" in s.problem
    assert "config.toml unreadable" in format_runs([s])


def test_cli_table_and_json(runs):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs", str(runs)]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["run", "model", "data", "steps", "last", "losses", "last", "metrics"]
    assert lines[2].split()[:4] == ["gan-ring", "gan", "ring8", "100/100"] and "loss_D 1.2" in lines[2]
    assert "sweep/ddpm-a" in lines[3] and "FD-raw 0.25" in lines[3] and "10/1000" in lines[3]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs", str(runs), "--json"]) == 0
    data = json.loads(out.getvalue())
    assert [d["model"] for d in data] == ["gan", "ddpm", "vae"] and data[0]["losses"]["loss_G"] == 0.9


def test_cli_empty_folder(tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs", str(tmp_path)]) == 0
    assert "no runs under" in out.getvalue()
