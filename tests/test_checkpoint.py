"""Checkpoints: atomic writes, refusal of code-carrying pickles, truncated and foreign files."""

from __future__ import annotations

import os

import pytest
import torch
from toy_models import install, toy_data

from genmodels.config import RunConfig
from genmodels.errors import CheckpointError, ConfigError
from genmodels.run import build_model, load_run
from genmodels.run.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    check_model,
    load_checkpoint,
    load_modules,
    save_atomic,
)
from genmodels.training import Trainer


class RunsCode:
    """Unpickling this calls exec(): what an unsafe checkpoint loader would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _header(**extra) -> dict:
    return {"format": FORMAT, "version": FORMAT_VERSION, "model_name": "toy", "model_config": {}, "step": 0,
            "modules": {}, "optimizers": {}, **extra}


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(_header(payload=RunsCode(marker)), path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()
    # The payload is live: an unrestricted load does run it (so the check above can fail).
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"


def test_truncated_and_garbage_files(tmp_path):
    path = tmp_path / "ok.pt"
    save_atomic(_header(weights=torch.randn(1000)), path)
    assert load_checkpoint(path)["weights"].shape == (1000,)
    data = path.read_bytes()
    (tmp_path / "short.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "short.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pt"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_foreign_and_wrong_version_files(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a genmodels checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    torch.save({**_header(), "version": FORMAT_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(tmp_path / "future.pt")
    ckpt = _header(model_config={"hidden": 8})
    with pytest.raises(CheckpointError, match="written by model 'toy', not 'gan'"):
        check_model(ckpt, "gan", {"hidden": 8})
    with pytest.raises(CheckpointError, match="hidden: 8 in checkpoint vs 16"):
        check_model(ckpt, "toy", {"hidden": 16})
    net = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="'net' does not match"):
        load_modules({"net": net}, {"net": torch.nn.Linear(4, 2).state_dict()})
    with pytest.raises(CheckpointError, match="holds networks"):
        load_modules({"net": net}, {"other": net.state_dict()})


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_atomic(_header(step=1, w=torch.ones(10)), path)
    real_save = torch.save

    def crash_midway(obj, f):
        real_save(obj, f)
        f.truncate(10)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_atomic(_header(step=2, w=torch.zeros(10)), path)
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["latest.pt"]


def _train(tmp_path, monkeypatch, out="run", **trainer):
    install(monkeypatch)
    data = toy_data("toy2d")
    sets = [f"trainer.{k}={v}" for k, v in {"steps": 30, "batch_size": 8, "progress": False, "sample_every": 0,
                                             "log_every": 10, "device": "cpu", **trainer}.items()]
    config = RunConfig.default("toy").with_overrides(["data.name=toy2d", f"out={tmp_path / out}", *sets])
    model = build_model(config, data.spec, torch.device("cpu"))
    Trainer(config).fit(model, data)
    return config, model


def test_load_run_swaps_in_ema(tmp_path, monkeypatch):
    config, model = _train(tmp_path, monkeypatch, ema_decay=0.9)
    run = tmp_path / "run"
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    with_ema = load_run(run, ema=True)
    raw = load_run(run, ema=False)
    assert with_ema.step == raw.step == 30 and with_ema.ema and not raw.ema
    assert with_ema.config == config
    shadow = ckpt["ema"]["shadow"]["density"]
    for k, v in with_ema.model.density.state_dict().items():
        assert torch.equal(v, shadow[k])
    for k, v in raw.model.density.state_dict().items():
        assert torch.equal(v, model.density.state_dict()[k])
    assert not torch.equal(with_ema.model.density.mu, raw.model.density.mu)
    assert not with_ema.model.aux.training  # eval mode


def test_load_run_refuses_foreign_checkpoints(tmp_path, monkeypatch):
    _train(tmp_path, monkeypatch, out="a")
    run = tmp_path / "a"
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    ckpt["model_config"]["hidden"] = 99
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="hidden: 99"):
        load_run(run, checkpoint=tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path)
    (run / "checkpoints" / "latest.pt").unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_run(run)


def test_a_config_field_added_later_is_accepted_at_its_default():
    """A checkpoint written before a config field existed loads when the field is at its default
    (the old model behaved that way) and is refused when it is not."""
    old = _header(model_config={"hidden": 8})
    check_model(old, "toy", {"hidden": 8, "g_batchnorm": False}, defaults={"hidden": 4, "g_batchnorm": False})
    with pytest.raises(CheckpointError, match="g_batchnorm: None in checkpoint vs True"):
        check_model(old, "toy", {"hidden": 8, "g_batchnorm": True}, defaults={"hidden": 4, "g_batchnorm": False})
    with pytest.raises(CheckpointError, match="g_batchnorm"):                  # no defaults given: strict
        check_model(old, "toy", {"hidden": 8, "g_batchnorm": False})
