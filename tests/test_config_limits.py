"""Every option is checked before anything starts, with cases generated from the config dataclasses
(dataclasses.fields and their type hints), so a field added later is tested too:
- inf, -inf and NaN in every float option of the trainer, the data and every family's config and
  sample options are refused with one line naming the option (command line, --set and TOML);
- integers beyond 64 bits are refused; a negative sampling batch size is refused;
- a network size that would not fit in memory is a one-line refusal, not an allocation traceback.
"""

from __future__ import annotations

import time
import types
import typing

import pytest
import torch

from genmodels.cli import main
from genmodels.cli.sample import OPTIONS as SAMPLE_OPTIONS
from genmodels.config import RunConfig
from genmodels.config_fields import field_types
from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError, GenmodelsError
from genmodels.models.registry import MODELS, get_model
from genmodels.run import RunDir, build_model

FAMILIES = sorted(MODELS)
NON_FINITE = ("inf", "-inf", "nan")


def _holds(tp, kind: type) -> bool:
    """Whether annotation `tp` is `kind`, or a list/tuple/optional of it."""
    if tp is kind:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType, list, tuple):
        return any(_holds(a, kind) for a in args if a is not Ellipsis and a is not type(None))
    return False


def _fields(cls_or_obj, kind: type) -> list[tuple[str, bool]]:
    """(name, is a list) of the fields of a dataclass annotated with `kind` (bool is not an int)."""
    out = []
    for name, tp in field_types(cls_or_obj).items():
        if _holds(tp, kind) and not (kind is int and tp is bool):
            out.append((name, typing.get_origin(tp) in (list, tuple)))
    return out


def _run_cases(kind: type) -> list[tuple[str, str, str, bool]]:
    """(family, section, field, is a list) for every `kind` option of a run: top level, data, trainer, model."""
    cases = []
    for family in FAMILIES:
        config = RunConfig.default(family)
        sections = {"": config, "data": config.data, "trainer": config.trainer, "model": config.model}
        for section, obj in sections.items():
            for name, is_list in _fields(obj, kind):
                if section == "" and name in ("data", "trainer", "model"):
                    continue
                cases.append((family, section, name, is_list))
    return cases


def _key(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("genmodels ") and len(err.strip().splitlines()) == 1, err
    return err


FLOAT_CASES = _run_cases(float)
INT_CASES = _run_cases(int)


def test_the_cases_cover_every_family_and_section():
    assert {c[0] for c in FLOAT_CASES} == set(FAMILIES)
    assert {c[1] for c in FLOAT_CASES} >= {"trainer", "model"}
    assert {c[1] for c in INT_CASES} >= {"", "data", "trainer", "model"}
    assert ("ddpm", "model", "hybrid_lambda", False) in FLOAT_CASES and ("gan", "model", "lr_d", False) in FLOAT_CASES


@pytest.mark.parametrize("family, section, name, is_list", FLOAT_CASES,
                         ids=[f"{c[0]}-{_key(c[1], c[2])}" for c in FLOAT_CASES])
def test_non_finite_floats_are_refused_at_start(tmp_path, capsys, family, section, name, is_list):
    out = tmp_path / "run"
    for value in NON_FINITE:
        text = f"[{value}]" if is_list else value
        code = main(["train", family, "--data", "moons", "--out", str(out), "--no-progress",
                     "--set", f"{_key(section, name)}={text}"])
        err = _one_line_error(capsys, code)
        assert _key(section, name) in err and "finite" in err, err
    # the same from a TOML file (which has inf and nan literals), and from the library
    table = f"{name} = {'[nan]' if is_list else 'nan'}"
    body = {"": "", "data": 'name = "moons"', "trainer": "", "model": ""}
    body[section] = (body[section] + "\n" + table).strip()
    toml = "\n".join([body[""]] + [f"[{s}]\n{body[s]}" for s in ("data", "trainer")] +
                     [f'[model]\nname = "{family}"\n{body["model"]}'])
    (tmp_path / "c.toml").write_text(toml)
    err = _one_line_error(capsys, main(["train", family, "--config", str(tmp_path / "c.toml"), "--out", str(out)]))
    assert _key(section, name) in err and "finite" in err, err
    config = RunConfig.default(family)
    config.data.name = "moons"
    target = getattr(config, section) if section else config
    setattr(target, name, [float("nan")] if is_list else float("nan"))
    with pytest.raises(ConfigError, match=rf"{_key(section, name)}.* must be a finite number"):
        config.validate()
    assert not out.exists()


@pytest.mark.parametrize("family, section, name, is_list", INT_CASES,
                         ids=[f"{c[0]}-{_key(c[1], c[2])}" for c in INT_CASES])
def test_integers_beyond_64_bits_are_refused_at_start(tmp_path, capsys, family, section, name, is_list):
    out = tmp_path / "run"
    value = "[1e30]" if is_list else "1e30"
    err = _one_line_error(capsys, main(["train", family, "--data", "moons", "--out", str(out), "--no-progress",
                                        "--set", f"{_key(section, name)}={value}"]))
    assert _key(section, name) in err, err
    assert not out.exists()


def _fake_run(tmp_path, family: str):
    """A run directory holding only config.toml: enough for `sample` to check its options, which it
    does before looking for a checkpoint."""
    run = RunDir(tmp_path / family)
    config = RunConfig.default(family)
    config.data.name = "moons"
    run.write_config(config, DataSpec("points", (2,), 0))
    return run.path


SAMPLE_FLOAT_CASES = [(f, name) for f in FAMILIES for name, _ in _fields(get_model(f).options_cls, float)]


@pytest.mark.parametrize("family, name", SAMPLE_FLOAT_CASES, ids=[f"{f}-{n}" for f, n in SAMPLE_FLOAT_CASES])
def test_non_finite_sample_options_are_refused(tmp_path, capsys, family, name):
    run = _fake_run(tmp_path, family)
    flag = "--" + name.replace("_", "-")
    if flag in SAMPLE_OPTIONS:
        flag = f"--sample-{name.replace('_', '-')}"
    out = tmp_path / "s.npy"
    for value in NON_FINITE:
        err = _one_line_error(capsys, main(["sample", str(run), "--n", "4", "--out", str(out), f"{flag}={value}"]))
        assert name in err and "finite" in err, err
    options = get_model(family).options_cls()
    setattr(options, name, float("nan"))
    from genmodels.config_fields import validate_options

    with pytest.raises(ConfigError, match=rf"sample\.{name} must be a finite number"):
        validate_options(options, "sample")
    assert not out.exists()


def test_the_sample_cases_are_not_empty():
    assert {f for f, _ in SAMPLE_FLOAT_CASES} >= {"ddpm", "vae", "infogan"}


def test_a_negative_sampling_batch_size_is_refused(tmp_path, capsys):
    run = _fake_run(tmp_path, "gan")
    err = _one_line_error(capsys, main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy"),
                                        "--batch-size", "-5"]))
    assert "--batch-size must be >= 0" in err


MODEL_INT_CASES = [(f, name, is_list) for f in FAMILIES for name, is_list in _fields(get_model(f).config_cls, int)]


@pytest.mark.parametrize("family", FAMILIES)
def test_gigantic_network_sizes_are_refused_before_allocating(family, one_thread):
    """Every integer option of the family at 10^12, on image and points data: the model is either
    built (the option is no size) or refused with a GenmodelsError, quickly, never with an
    allocation error; the width options are among the refused."""
    refused = set()
    for spec in (DataSpec("image", (1, 28, 28), 10), DataSpec("points", (2,), 0)):
        for _, name, is_list in [c for c in MODEL_INT_CASES if c[0] == family]:
            config = RunConfig.default(family)
            if family == "vae" and spec.kind == "points":
                config.model.decoder = "gaussian"
            setattr(config.model, name, [10 ** 12] if is_list else 10 ** 12)
            started = time.perf_counter()
            try:
                config.validate()
                build_model(config, spec, torch.device("cpu"))
            except GenmodelsError as e:
                assert len(str(e).splitlines()) == 1
                refused.add(name)
            assert time.perf_counter() - started < 20, (name, spec)
    wide = {"ddpm": {"channels", "mlp_width"}, "gan": {"z_dim", "mlp_width", "dcgan_width"},
            "infogan": {"z_dim", "hidden", "mlp_width"}, "vae": {"latent_dim", "hidden"}}
    assert wide.get(family, set()) <= refused, refused


def test_the_size_check_names_the_option_and_the_memory():
    config = RunConfig.default("gan").with_overrides(["model.mlp_width=100000000"])
    with pytest.raises(ConfigError, match=r"the gan networks would hold .* more than .* of cpu memory; reduce the "
                                          r"network sizes \(model.mlp_width=100000000\)"):
        build_model(config, DataSpec("points", (2,), 0), torch.device("cpu"))


def test_more_samples_than_memory_are_refused_before_drawing():
    from genmodels.sampling import check_sample_memory

    check_sample_memory(1000, (3, 32, 32))
    with pytest.raises(ConfigError, match=r"--n 1000000000000: .* need .* more than this machine's"):
        check_sample_memory(10 ** 12, (3, 32, 32))
