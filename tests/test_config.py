"""Run configs: defaults, TOML round trip, typed --set overrides, validation errors."""

from __future__ import annotations

from typing import Literal, Optional

import pytest
from toy_models import ToyConfig, install

from genmodels.config import RunConfig, TrainerConfig, coerce, load_toml
from genmodels.errors import ConfigError


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    install(monkeypatch)


def test_defaults_hold_the_family_config_and_validate():
    config = RunConfig.default("toy")
    assert isinstance(config.model, ToyConfig)
    config.data.name = "toy2d"
    config.validate()


def test_toml_round_trip(tmp_path):
    config = RunConfig.default("toy").with_overrides(
        ["seed=7", "data.name=toy2d", "trainer.steps=123", "trainer.ema_decay=0.5", "model.hidden=3"])
    config.save_toml(tmp_path / "c.toml", extra={"spec": {"kind": "points", "shape": [2], "num_classes": 0}})
    loaded, extra = load_toml(tmp_path / "c.toml")
    assert loaded == config
    assert extra["spec"]["shape"] == [2]
    text = (tmp_path / "c.toml").read_text()
    assert 'name = "toy"' in text and "[model]" in text


def test_set_parses_by_field_type():
    config = RunConfig.default("toy").with_overrides(
        ["trainer.steps=1e3", "trainer.grad_clip=1", "trainer.progress=false", "model.lr=2e-4", "seed=3",
         "model.nan_target=weights"])
    assert config.trainer.steps == 1000 and isinstance(config.trainer.steps, int)
    assert config.trainer.grad_clip == 1.0 and isinstance(config.trainer.grad_clip, float)
    assert config.trainer.progress is False
    assert config.model.lr == 2e-4
    assert config.seed == 3
    assert config.model.nan_target == "weights"


@pytest.mark.parametrize("assignment, words", [
    ("trainer.stepz=3", ["stepz", "valid keys", "steps", "batch_size"]),
    ("model.width=3", ["width", "valid keys", "hidden", "lr"]),
    ("optim.lr=3", ["optim.lr", "data", "trainer", "model"]),
    ("trainer.steps=ten", ["trainer.steps", "integer", "ten"]),
    ("trainer.progress=maybe", ["trainer.progress", "true or false"]),
    ("trainer.steps", ["section.key=value"]),
    ("model.name=gan", ["model.name"]),
])
def test_bad_overrides_name_the_problem(assignment, words):
    with pytest.raises(ConfigError) as e:
        RunConfig.default("toy").with_overrides([assignment])
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("assignment, words", [
    ("trainer.steps=-5", ["trainer.steps", "positive", "-5"]),
    ("trainer.batch_size=0", ["trainer.batch_size"]),
    ("trainer.ema_decay=1.5", ["trainer.ema_decay"]),
    ("trainer.precision=fp8", ["trainer.precision", "bf16, fp16, fp32"]),
    ("trainer.device=gpu", ["trainer.device", "cuda"]),
    ("model.nan_target=grads", ["model.nan_target", "loss, weights"]),
    ("model.hidden=0", ["model.hidden"]),
    ("data.channels=2", ["data.channels"]),
])
def test_validation_errors(assignment, words):
    config = RunConfig.default("toy").with_overrides(["data.name=toy2d", assignment])
    with pytest.raises(ConfigError) as e:
        config.validate()
    for w in words:
        assert w in str(e.value)


def test_missing_data_name_says_what_to_pass():
    with pytest.raises(ConfigError, match="--data"):
        RunConfig.default("toy").validate()


def test_unknown_model_lists_the_families():
    with pytest.raises(ConfigError) as e:
        RunConfig.default("diffusion-gan")
    for name in ("ddpm", "gan", "infogan", "vae", "toy"):
        assert name in str(e.value)


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [unclosed\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_toml(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('seed = 1\n[optimizer]\nlr = 1\n[model]\nname = "toy"\n')
    with pytest.raises(ConfigError, match="optimizer"):
        load_toml(unknown)
    nameless = tmp_path / "nameless.toml"
    nameless.write_text("[model]\nhidden = 3\n")
    with pytest.raises(ConfigError, match="name"):
        load_toml(nameless)
    with pytest.raises(ConfigError, match="no such config file"):
        load_toml(tmp_path / "missing.toml")


def test_coerce_containers_optionals_and_literals():
    assert coerce("1,2,2", tuple[int, ...], "f") == (1, 2, 2)
    assert coerce("[1, 2]", list[int], "f") == [1, 2]
    assert coerce([0.5, 1], tuple[float, float], "f") == (0.5, 1.0)
    assert coerce("none", Optional[int], "f") is None  # noqa: UP045 (the old spelling is what this checks)
    assert coerce("4", int | None, "f") == 4
    assert coerce("ddim", Literal["ancestral", "ddim"], "f") == "ddim"
    with pytest.raises(ConfigError, match="ancestral, ddim"):
        coerce("euler", Literal["ancestral", "ddim"], "f")
    with pytest.raises(ConfigError, match="expected 2 values"):
        coerce("1,2,3", tuple[int, int], "f")
    with pytest.raises(ConfigError, match="integer"):
        coerce(True, int, "f")


def test_trainer_config_fields_all_documented():
    import dataclasses

    for f in dataclasses.fields(TrainerConfig):
        assert f.metadata.get("help"), f.name
