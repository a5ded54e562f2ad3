"""`genmodels train`: flags from the family config, precedence, errors, --help documenting defaults."""

from __future__ import annotations

import argparse

import pytest
from toy_models import install

from genmodels.cli import build_parser, main
from genmodels.config import load_toml

FAST = ["--steps", "12", "--batch-size", "8", "--device", "cpu", "--no-progress",
        "--set", "trainer.sample_every=0", "--set", "trainer.log_every=4"]


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    install(monkeypatch)


def _subparser(argv: list[str]) -> argparse.ArgumentParser:
    parser = build_parser(argv)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[argv[0]]


def test_train_writes_the_run_with_flags_applied(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "toy", "--data", "toy2d", "--out", str(out), "--seed", "4", "--hidden", "5",
                 "--nan-target", "weights", *FAST]) == 0
    assert "step 12" in capsys.readouterr().out
    config, extra = load_toml(out / "config.toml")
    assert (config.seed, config.trainer.steps, config.trainer.batch_size) == (4, 12, 8)
    assert (config.model.hidden, config.model.nan_target) == (5, "weights")
    assert config.trainer.progress is False and config.trainer.log_every == 4
    assert extra["spec"] == {"kind": "points", "shape": [2], "num_classes": 0}


def test_precedence_config_file_then_flags_then_set(tmp_path):
    cfg = tmp_path / "base.toml"
    cfg.write_text('seed = 9\n[data]\nname = "toy2d"\n[trainer]\nbatch_size = 16\nema_decay = 0.5\n'
                   '[model]\nname = "toy"\nhidden = 3\nlr = 0.01\n')
    out = tmp_path / "run"
    assert main(["train", "toy", "--config", str(cfg), "--out", str(out), "--hidden", "6",
                 "--set", "model.hidden=7", "--set", "trainer.ema_decay=0.25", *FAST]) == 0
    config, _ = load_toml(out / "config.toml")
    assert config.seed == 9 and config.data.name == "toy2d" and config.model.lr == 0.01
    assert config.trainer.batch_size == 8          # flag beats the file
    assert config.model.hidden == 7                # --set beats the flag
    assert config.trainer.ema_decay == 0.25


def test_steps_flag_overrides_epochs_of_a_config_file(tmp_path):
    cfg = tmp_path / "base.toml"
    cfg.write_text('[data]\nname = "toy2d"\n[trainer]\nepochs = 50\n[model]\nname = "toy"\n')
    assert main(["train", "toy", "--config", str(cfg), "--out", str(tmp_path / "a"), *FAST]) == 0
    config, _ = load_toml(tmp_path / "a" / "config.toml")
    assert config.trainer.epochs == 0 and config.trainer.steps == 12   # --steps alone: steps, not 50 epochs
    assert main(["train", "toy", "--config", str(cfg), "--out", str(tmp_path / "b"), "--epochs", "1", *FAST]) == 0
    assert load_toml(tmp_path / "b" / "config.toml")[0].trainer.epochs == 1   # both given: --epochs wins


@pytest.mark.parametrize("argv, words", [
    (["--steps", "-3"], ["trainer.steps", "positive"]),
    (["--set", "trainer.nope=1"], ["nope", "valid keys"]),
    (["--set", "model.lr=fast"], ["model.lr", "number"]),
    (["--resume", "--config", "x.toml"], ["--config", "--resume"]),
])
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, words):
    code = main(["train", "toy", "--data", "toy2d", "--out", str(tmp_path / "r"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("genmodels train: error:") and len(err.strip().splitlines()) == 1
    for w in words:
        assert w in err


def test_missing_data_and_out_are_reported(tmp_path, capsys):
    assert main(["train", "toy", "--out", str(tmp_path / "r")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["train", "toy", "--data", "toy2d"]) == 2
    assert "--out" in capsys.readouterr().err


def test_unknown_model_lists_the_choices(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "nosuchmodel", "--data", "toy2d", "--out", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    for name in ("ddpm", "gan", "infogan", "toy", "vae"):
        assert name in err


def test_resume_with_a_different_model_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "toy", "--data", "toy2d", "--out", str(out), *FAST]) == 0
    assert main(["train", "toy", "--out", str(out), "--resume", "--hidden", "99", *FAST]) == 2
    assert "hidden: 8 in checkpoint vs 99" in capsys.readouterr().err
    assert main(["train", "toy", "--out", str(out), "--resume", "--steps", "16", "--no-progress"]) == 0


def test_help_documents_every_option_with_its_default():
    for argv in (["train", "toy"], ["train"]):
        parser = _subparser(argv)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            assert "default" in (action.help or "") or "required" in (action.help or ""), action.option_strings
    flags = {s for a in _subparser(["train", "toy"])._actions for s in a.option_strings}
    assert {"--hidden", "--lr", "--dropout", "--nan-at-step", "--nan-target", "--steps", "--batch-size", "--seed",
            "--data", "--out", "--config", "--resume", "--set"} <= flags


def test_help_of_a_model_lists_its_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "toy", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--nan-target {loss,weights}" in out and "(default: 0.05)" in out
