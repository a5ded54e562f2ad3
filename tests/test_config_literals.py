"""Every mode is a `Literal`, every `genmodels train` flag comes from a config field, and a refused
run touches no run directory. The cases are generated from the config dataclasses (their fields
and type hints), so a field added later is covered too:
- each mode field's choices (checks and flags) are the values of its `Literal` annotation, never a
  second spelling of them;
- every field of the trainer and of each family's config has a flag, whose help ends with the
  field's default and whose choices are the Literal's;
- a bad value's error names the field; a device, precision, batch split or mode the run cannot
  use is refused before the run directory is created (or, resuming, changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest
import torch
from toy_models import install

from genmodels.cli import build_parser, main
from genmodels.config import DataConfig, RunConfig, TrainerConfig, load_toml
from genmodels.config_fields import choices_of, field_choices, field_types
from genmodels.errors import ConfigError
from genmodels.metrics.evaluate import EvalConfig
from genmodels.models.registry import MODELS, get_model
from genmodels.report.compare import CompareConfig
from genmodels.training import distributed
from genmodels.training.hardware import check_machine, check_precision

FAMILIES = sorted(MODELS)
CLASSES = ([DataConfig, TrainerConfig, RunConfig, EvalConfig, CompareConfig]
           + [cls for f in FAMILIES for cls in get_model(f)[1:]]
           + [get_model(f).model_cls.evaluate_options for f in FAMILIES])
MODE_FIELDS = [(cls, name) for cls in CLASSES for name in field_choices(cls)]
FAST = ["--steps", "2", "--batch-size", "8", "--no-progress", "--threads", "1", "--sample-every", "0",
        "--no-report", "--no-tensorboard"]


def _id(case) -> str:
    cls, name = case
    return f"{cls.__name__}.{name}"


def test_the_library_has_mode_fields_to_check():
    names = {_id(case) for case in MODE_FIELDS}
    assert {"EvalConfig.precision", "CompareConfig.precision", "DDPMEvaluateOptions.ode_trace",
            "TrainerConfig.precision", "TrainerConfig.lr_schedule", "DDPMConfig.prediction", "DDPMConfig.loss",
            "DDPMConfig.variance", "DDPMConfig.schedule", "GANConfig.loss", "VAEConfig.decoder"} <= names


@pytest.mark.parametrize("case", MODE_FIELDS, ids=_id)
def test_every_mode_is_a_literal_whose_values_are_its_choices(case):
    cls, name = case
    annotation = field_types(cls)[name]
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    assert choices_of(annotation) is not None, f"{_id(case)} is a mode without a Literal annotation"
    assert "choices" not in field.metadata, f"{_id(case)} spells its choices a second time in param(...)"
    assert field_choices(cls)[name] == typing.get_args(annotation)
    default = getattr(cls, name, None)
    assert default in typing.get_args(annotation), f"{_id(case)}: the default {default!r} is not a choice"


def test_tables_named_by_a_literal_hold_exactly_its_names():
    from genmodels.diffusion.schedule import SCHEDULES, Schedule
    from genmodels.models.gan.config import BETAS, AdamBetas
    from genmodels.nets.mlp import ACTIVATIONS, Activation
    from genmodels.training.lr_schedule import LR_SCHEDULES

    assert set(SCHEDULES) == set(typing.get_args(Schedule))
    assert set(BETAS) == set(typing.get_args(AdamBetas))
    assert set(ACTIVATIONS) == set(typing.get_args(Activation))
    assert LR_SCHEDULES == field_choices(TrainerConfig)["lr_schedule"]


def _train_parser(family: str) -> argparse.ArgumentParser:
    parser = build_parser(["train", family])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _actions(family: str) -> dict[str, argparse.Action]:
    return {a.dest: a for a in _train_parser(family)._actions}


def _shown(value) -> str:
    """How a default reads in the help: true/false, comma-separated lists, automatic for unset."""
    if value is None:
        return "automatic"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value) if value != "" else '""'


def _default(field: dataclasses.Field):
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


@pytest.mark.parametrize("family", FAMILIES)
def test_every_trainer_and_model_field_has_a_flag_with_its_default_and_choices(family):
    actions = _actions(family)
    for section, cls in (("trainer", TrainerConfig), ("model", get_model(family).config_cls)):
        types_, choices = field_types(cls), field_choices(cls)
        for field in dataclasses.fields(cls):
            action = actions.get(f"{section}__{field.name}")
            assert action is not None, f"no flag for {section}.{field.name}"
            assert f"(default: {_shown(_default(field))})" in action.help.replace("%%", "%"), action.help
            if field.name in choices:
                assert tuple(action.choices) == tuple(map(str, typing.get_args(types_[field.name])))
            if types_[field.name] is bool:
                assert isinstance(action, argparse.BooleanOptionalAction), action.option_strings


def test_existing_trainer_flags_keep_their_names():
    flags = {s for a in _train_parser("ddpm")._actions for s in a.option_strings}
    assert {"--data", "--out", "--steps", "--epochs", "--batch-size", "--seed", "--config", "--set", "--device",
            "--precision", "--threads", "--recipe", "--init", "--zoo-root", "--resume", "--override-identity",
            "--progress", "--no-progress", "--compile", "--no-compile", "--channels-last",
            "--no-channels-last"} <= flags
    assert {"--ema-decay", "--lr-schedule", "--warmup-steps", "--grad-clip", "--no-report"} <= flags   # generated


def test_a_trainer_flag_before_the_model_still_finds_the_model(tmp_path):
    argv = ["train", "--ema-decay", "0.5", "--lr-schedule", "constant", "ddpm", "--prediction", "eps"]
    args = build_parser(argv).parse_args(argv)
    assert args.model == "ddpm" and args.model__prediction == "eps" and args.trainer__ema_decay == "0.5"


@pytest.mark.parametrize("assignment, field", [
    ("model.prediction=foo", "model.prediction"),
    ("model.loss=l2", "model.loss"),
    ("trainer.lr_schedule=step", "trainer.lr_schedule"),
    ("trainer.precision=fp8", "trainer.precision"),
])
def test_a_bad_mode_names_the_field_and_lists_the_choices(assignment, field):
    config = RunConfig.default("ddpm").with_overrides(["data.name=moons", assignment])
    with pytest.raises(ConfigError) as e:
        config.validate()
    name = field.partition(".")[2]
    section = config.model if field.startswith("model.") else config.trainer
    assert field in str(e.value) and all(c in str(e.value) for c in field_choices(section)[name])


def test_a_bad_mode_flag_is_refused_by_the_parser_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "ddpm", "--data", "moons", "--out", "x", "--prediction", "foo"])
    assert e.value.code == 2 and "--prediction" in capsys.readouterr().err


@pytest.fixture
def toy(monkeypatch):
    install(monkeypatch)


def _refused(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("genmodels train: error:"), err
    return err


@pytest.mark.parametrize("flags, words", [
    (["--device", "cpu", "--precision", "fp16"], ["trainer.precision", "fp16", "CUDA"]),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:9999"], ["trainer.device"]),
    (["--device", "mps"], ["trainer.device", "mps"]),
    (["--set", "trainer.lr_schedule=step"], ["trainer.lr_schedule", "cosine"]),
    (["--set", "model.nan_target=grads"], ["model.nan_target", "loss, weights"]),
    (["--batch-size", "9", "--accumulate", "2"], ["trainer.batch_size", "trainer.accumulate"]),
])
def test_a_refused_run_creates_no_run_directory(toy, tmp_path, capsys, flags, words):
    if flags[:2] == ["--device", "mps"] and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    out = tmp_path / "new"
    err = _refused(["train", "toy", "--data", "toy2d", "--out", str(out), *FAST, *flags], capsys)
    assert all(w in err for w in words), err
    assert not out.exists()


def test_a_model_the_data_cannot_take_is_refused_before_the_run_directory(tmp_path, capsys):
    out = tmp_path / "new"
    err = _refused(["train", "ddpm", "--data", "moons", "--out", str(out), *FAST, "--net", "unet"], capsys)
    assert "model.net" in err and not out.exists()


@pytest.mark.parametrize("world_size, batch, accumulate", [(3, 16, 1), (2, 12, 4)])
def test_a_batch_the_processes_cannot_share_is_refused_before_the_run_directory(toy, tmp_path, capsys, monkeypatch,
                                                                              world_size, batch, accumulate):
    monkeypatch.setattr(distributed, "setup", lambda device: (distributed.DistInfo(0, world_size, 0),
                                                              torch.device("cpu")))
    out = tmp_path / "new"
    err = _refused(["train", "toy", "--data", "toy2d", "--out", str(out), *FAST, "--batch-size", str(batch),
                    "--accumulate", str(accumulate)], capsys)
    assert "trainer.batch_size" in err and not out.exists()


def test_a_refused_resume_leaves_the_run_as_it_was(toy, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "toy", "--data", "toy2d", "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    before = {p.relative_to(out): (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    err = _refused(["train", "toy", "--out", str(out), "--resume", "--steps", "4", "--no-progress",
                    "--device", "cpu", "--precision", "fp16"], capsys)
    assert "fp16" in err
    after = {p.relative_to(out): (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_precision_checks_name_the_device(monkeypatch):
    cpu = torch.device("cpu")
    check_precision("bf16", cpu)                                  # emulated on CPUs without bf16 instructions
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        check_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="needs a cpu or cuda device"):
        check_precision("bf16", torch.device("mps"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Old GPU")
    with pytest.raises(ConfigError, match="bf16 is not supported by Old GPU"):
        check_precision("bf16", torch.device("cuda"))
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        check_machine(TrainerConfig(precision="fp16"), cpu, distributed.DistInfo())


def test_a_cuda_index_beyond_the_machine_is_refused(monkeypatch):
    from genmodels.run.load import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match="trainer.device is 'cuda:2' but this machine has 2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_config_toml_with_every_mode_as_a_string_loads(family, tmp_path):
    """config.toml stores modes as plain strings, as runs written before the Literal annotations did."""
    config = RunConfig.default(family)
    config.data.name, config.out = "moons", str(tmp_path / "run")
    path = tmp_path / "config.toml"
    config.save_toml(path)
    loaded, _ = load_toml(path)
    loaded.validate()
    assert loaded.to_dict() == config.to_dict()
