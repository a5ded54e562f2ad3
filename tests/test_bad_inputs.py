"""Bad input anywhere on the command line, or in any file genmodels reads, is a one-line refusal:
no traceback, exit code 2, a message naming the option or the file, nothing written.

The cases are generated: from every subcommand's parser (`genmodels --help` lists them; its
options typed int/float or with choices get a value that is not one), from the config dataclasses
behind the flags of `train`, `sample`, `evaluate` and `compare` (a value of the wrong type for each
field: text for a number, a non-choice for a mode, a non-boolean for a switch), and from the file
schemas (a zoo card with each field of the wrong type, config.toml and recipe values out of range,
[sample] defaults, metrics files with NaN, empty or foreign arrays). Then one test per class of
defect of issue 33: the model pre-parse, the compatibility of net and data, bounds, threads,
emulated precision and records."""

from __future__ import annotations

import dataclasses
import json
import shutil
import types
import typing
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from genmodels.cli import build_parser, config_flag, main
from genmodels.cli import train as train_cli
from genmodels.config import DataConfig, RunConfig, TrainerConfig
from genmodels.config_fields import field_choices, field_types
from genmodels.errors import ConfigError
from genmodels.metrics.evaluate import EvalConfig
from genmodels.models.registry import MODELS, get_model
from genmodels.report.compare import CompareConfig
from genmodels.zoo import CARD, export_run
from genmodels.zoo.card import CardFields

QUIET = ["--device", "cpu", "--no-progress", "--threads", "1", "--precision", "fp32", "--set", "trainer.sample_every=0",
         "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]
TINY = ["--data", "moons", "--steps", "2", "--batch-size", "16", "--T", "50", "--mlp-width", "8", "--mlp-depth", "1"]
FAMILIES = sorted(MODELS)


def _subcommands() -> dict:
    parser = build_parser(["datasets"])
    action = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    return dict(action.choices)


SUBCOMMANDS = _subcommands()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny DDPM run on moons, a zoo holding it, and the inputs the cases corrupt."""
    import torch

    before = torch.get_num_threads()
    root = tmp_path_factory.mktemp("bad")
    assert main(["train", "ddpm", *TINY, "--out", str(root / "run"), *QUIET]) == 0
    export_run(root / "run", "good", dtype="fp32", dest=root / "zoo")
    torch.set_num_threads(before)
    return root


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def refused(capsys, argv: list[str], *named: str, folder: Path | None = None) -> str:
    """Run the CLI in-process; assert exit code 2, one message naming each of `named`, no traceback
    (an exception other than argparse's exit fails the test) and nothing new in `folder`."""
    before = _listing(folder) if folder is not None else None
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:        # argparse's own refusals (a value of the wrong type, a non-choice)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    assert "Traceback" not in err and err.strip(), (argv, err)
    for name in named:
        assert name in err, (argv, name, err)
    if folder is not None:
        assert _listing(folder) == before, (argv, _listing(folder) - before)
    return err


# -- values of the wrong type, generated from the dataclasses --------------------------------------


def _bad_value(tp) -> str | None:
    """A command-line value no field annotated `tp` accepts (None: every text is a valid str)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if any(a is str for a in args):
            return None
        members = [a for a in args if a is not type(None)]
        values = {_bad_value(a) for a in members}
        return "x1" if None not in values else None
    if origin is typing.Literal:
        return "nosuch-choice"
    if tp is bool:
        return "maybe"
    if tp in (int, float):
        return "x1"
    if origin in (list, tuple):
        inner = [a for a in args if a is not Ellipsis]
        return "[x1]" if inner and _bad_value(inner[0]) is not None else None
    return None


def _field_cases(cls) -> list[tuple[str, str]]:
    """(field, bad text) for every field of `cls` that has a bad value (modes included)."""
    choices = field_choices(cls)
    out = []
    for name, tp in field_types(cls).items():
        bad = "nosuch-choice" if name in choices else _bad_value(tp)
        if bad is not None and tp not in (bool, bool | None):
            out.append((name, bad))
    return out


TRAIN_CASES = ([("trainer", n, b) for n, b in _field_cases(TrainerConfig)]
               + [("data", n, b) for n, b in _field_cases(DataConfig) if n != "name"]
               + [(f, n, b) for f in FAMILIES for n, b in _field_cases(get_model(f).config_cls)])


@pytest.mark.parametrize("section, name, bad", TRAIN_CASES, ids=[f"{s}.{n}" for s, n, _ in TRAIN_CASES])
def test_train_refuses_a_value_of_the_wrong_type_for_every_field(world, tmp_path, capsys, section, name, bad):
    family = section if section in FAMILIES else "ddpm"
    key = f"{'model' if section in FAMILIES else section}.{name}"
    refused(capsys, ["train", family, "--data", "moons", "--out", str(tmp_path / "out"), "--set", f"{key}={bad}"],
            key, folder=tmp_path)


def test_train_typed_flags_are_refused_too(world, tmp_path, capsys):
    """The same through the typed flags (`--ema-decay x1`), one per trainer and model field."""
    for section, name, bad in TRAIN_CASES:
        family = section if section in FAMILIES else "ddpm"
        if section == "data":
            continue
        taken = train_cli.command_options() if section in FAMILIES else ()
        flag = config_flag(name, taken, "model")
        err = refused(capsys, ["train", family, "--data", "moons", "--out", str(tmp_path / "out"), f"{flag}={bad}"],
                      folder=tmp_path)
        assert name in err or flag in err, (flag, err)


def _options_cases(kind: str) -> list[tuple[str, str, str]]:
    out = []
    for family in FAMILIES:
        cls = get_model(family).options_cls if kind == "sample" else get_model(family).model_cls.evaluate_options
        if cls is None:
            continue
        out += [(family, n, b) for n, b in _field_cases(cls)]
    return out


def _fake_run(tmp_path: Path, family: str) -> Path:
    from genmodels.data.dataset import DataSpec
    from genmodels.run import RunDir

    run = RunDir(tmp_path / f"fake-{family}")
    config = RunConfig.default(family)
    config.data.name = "moons"
    run.write_config(config, DataSpec("points", (2,), 0))
    return run.path


SAMPLE_CASES = _options_cases("sample")


@pytest.mark.parametrize("family, name, bad", SAMPLE_CASES, ids=[f"{f}-{n}" for f, n, _ in SAMPLE_CASES])
def test_sample_refuses_a_sample_option_of_the_wrong_type(tmp_path, capsys, family, name, bad):
    run = _fake_run(tmp_path, family)
    refused(capsys, ["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy"), "--sample-option",
                     f"{name}={bad}"], name, folder=tmp_path)


def test_evaluate_and_compare_refuse_every_setting_of_the_wrong_type(world, tmp_path, capsys):
    run = str(world / "run")
    for cls, argv in ((EvalConfig, ["evaluate", run, "--n", "8"]), (CompareConfig, ["compare", run, "--n", "8"])):
        cases = _field_cases(cls)
        assert cases
        for name, bad in cases:
            flag = "--" + name.replace("_", "-")
            err = refused(capsys, [*argv, f"{flag}={bad}"], folder=tmp_path)
            assert name in err or flag in err, (flag, err)
    for family, name, bad in _options_cases("evaluate"):
        if family == "ddpm":
            flag = f"--{name.replace('_', '-')}"
            err = refused(capsys, ["evaluate", run, "--n", "8", "--metrics", "nll", f"{flag}={bad}"], folder=tmp_path)
            assert name in err or flag in err, (flag, err)


def test_every_subcommand_refuses_a_typed_option_s_bad_value(tmp_path, capsys):
    """Each subcommand's options typed int or float, or with choices, given a value that is none."""
    covered = set()
    for command, parser in SUBCOMMANDS.items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            if action.type in (int, float) or action.choices:
                flag = action.option_strings[0]
                refused(capsys, [command, f"{flag}=nosuch-1"], flag, folder=tmp_path)
                covered.add(command)
    assert covered >= {"datasets", "train", "sample", "evaluate", "compare", "theory", "report", "zoo"}


# -- every subcommand, and every kind of file read -------------------------------------------------


def _card_cases() -> list[tuple[str, object]]:
    """(field, a value of the wrong type) for every field of a zoo card, from `CardFields`."""
    out = []
    for name, tp in field_types(CardFields).items():
        wrong = {str: 12, int: "12", bool: "yes", float: "fast"}
        origin = typing.get_origin(tp)
        if tp in wrong:
            out.append((name, wrong[tp]))
        elif origin in (typing.Union, types.UnionType):
            out.append((name, 12 if typing.get_origin(typing.get_args(tp)[0]) is list else ["a list"]))
        elif origin is dict:
            out.append((name, "not an object"))
    out += [("sha256", "abc"), ("step", -1), ("dtype", "int3"), ("metrics", {"fd": {"value": [1.5]}}),
            ("metrics", {"fd": True}), ("sample_options", {"sampler": "nosuch"}), ("sample_options", {"steps": -4})]
    return out


CARD_CASES = _card_cases()


def _bad_entry(world: Path, tmp_path: Path, field: str, value) -> Path:
    root = tmp_path / "zoo"
    shutil.copytree(world / "zoo" / "good", root / "bad")
    shutil.copytree(world / "zoo" / "good", root / "good")
    card = json.loads((root / "bad" / CARD).read_text())
    card[field] = value
    (root / "bad" / CARD).write_text(json.dumps(card))
    return root


@pytest.mark.parametrize("field, value", CARD_CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CARD_CASES)])
def test_a_zoo_card_of_the_wrong_types_is_refused_naming_the_file_and_field(world, tmp_path, capsys, field, value):
    root = _bad_entry(world, tmp_path, field, value)
    card = str(root / "bad" / CARD)
    for argv in (["zoo", "bad"], ["sample", "zoo:bad", "--n", "2", "--out", str(tmp_path / "s.npy")],
                 ["evaluate", "zoo:bad", "--n", "8", "--metrics", "fd"], ["compare", "zoo:bad", "--n", "8"],
                 ["train", "--init", "zoo:bad", "--out", str(tmp_path / "run")]):
        refused(capsys, [*argv, "--zoo-root", str(root)], card, field, folder=tmp_path)
    # the listing shows the bad entry as unreadable and goes on with the others
    capsys.readouterr()
    assert main(["zoo", "--zoo-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and field in out and "good" in out.split("unreadable")[-1] + out


def test_a_resumed_run_s_config_toml_value_is_blamed_on_the_file(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    text = (run / "config.toml").read_text()
    for table, key, bad in (("trainer", "ema_decay", "1.5"), ("trainer", "batch_size", "-3"),
                            ("sample", "steps", "-2"), ("trainer", "ema_decay", '"high"')):
        doc = text.replace(f"[{table}]\n", f"[{table}]\n{key} = {bad}\n", 1) if f"[{table}]" in text else (
            text + f"\n[{table}]\n{key} = {bad}\n")
        lines = [line for line in doc.splitlines() if not line.startswith(f"{key} =") or line == f"{key} = {bad}"]
        (run / "config.toml").write_text("\n".join(lines) + "\n")
        err = refused(capsys, ["train", "--resume", "--out", str(run), "--no-progress"], str(run / "config.toml"), key)
        assert "command line" not in err
    assert (run / "config.toml").read_text() != text    # refused before anything was rewritten


def test_a_config_file_and_a_recipe_with_a_bad_value_are_named(tmp_path, capsys):
    from genmodels.recipes import load_recipe, parse_recipe

    doc = load_recipe("gan-ring8").config.to_dict()
    doc.pop("out", None)
    for table, key, bad in (("trainer", "ema_decay", 2.0), ("trainer", "steps", -5), ("model", "k", 0)):
        bad_doc = {**doc, table: {**doc[table], key: bad}}
        path = tmp_path / "c.toml"
        path.write_text(tomli_w.dumps(bad_doc))
        refused(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "run")], str(path), key)
        with pytest.raises(ConfigError, match=rf"recipe 'mine': .*{key}"):
            parse_recipe("mine", tomli_w.dumps(bad_doc))
        path.unlink()


def test_bad_arrays_are_refused_naming_the_file(world, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    np.save(inputs / "empty.npy", np.zeros((0, 2), np.float32))
    np.savez(inputs / "archive.npz", x=np.zeros((4, 2), np.float32))
    np.save(inputs / "words.npy", np.array(["a", "b"]))
    (inputs / "garbage.npy").write_bytes(b"not numpy")
    for name in ("empty.npy", "archive.npz", "words.npy", "garbage.npy"):
        path = str(inputs / name)
        refused(capsys, ["evaluate", "--samples", path, "--data", "moons", "--n", "8"], path, folder=tmp_path)
        refused(capsys, ["datasets", path], path, folder=tmp_path)
        refused(capsys, ["train", "ddpm", *TINY[2:], "--data", path, "--out", str(tmp_path / "r")], path,
                folder=tmp_path)


def test_empty_image_batches_for_inpainting_and_sdedit_are_refused(tmp_path, capsys):
    from genmodels.data.image_inputs import read_images
    from genmodels.errors import DataError

    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 28, 28), np.float32))
    with pytest.raises(DataError, match="empty.npy: an empty array"):
        read_images(tmp_path / "empty.npy", (1, 28, 28))
    run = tmp_path / "img"
    assert main(["train", "ddpm", "--data", "mnist5k", "--set", "data.limit=64", "--channels", "4", "--T", "50",
                 "--steps", "1", "--batch-size", "8", "--out", str(run), *QUIET]) == 0
    for flags in (["--inpaint", str(tmp_path / "empty.npy"), "--mask", "fill-top"],
                  ["--init", str(tmp_path / "empty.npy")]):
        refused(capsys, ["sample", str(run), *flags, "--out", str(tmp_path / "o.png"), "--sampler", "ddim",
                         "--steps", "5"], "empty.npy", folder=tmp_path)


def test_the_other_subcommands_refuse_what_they_read(world, tmp_path, capsys):
    refused(capsys, ["recipes", "nosuch"], "nosuch")
    refused(capsys, ["theory", "--only", "nosuch"], "nosuch")
    refused(capsys, ["report", str(tmp_path / "nope")], "nope", folder=tmp_path)
    refused(capsys, ["runs", str(tmp_path / "nope")], "nope", folder=tmp_path)
    refused(capsys, ["ema", str(tmp_path / "nope"), "--sigma-rel", "0.1"], "nope", folder=tmp_path)
    refused(capsys, ["zoo", "--zoo-root", str(tmp_path / "nope")], "nope: no such folder", folder=tmp_path)


def test_a_damaged_metrics_jsonl_is_read_around(world, tmp_path, capsys):
    """Lines that are not records (torn, of the wrong types) are skipped, never a traceback."""
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": "x", "loss": 1}\n{"step": 3, "cpu_time": "slow"}\n[1, 2]\n{"step": -1}\n{not json\n')
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    assert main(["compare", str(run), "--n", "8", "--metrics", "fd", "--no-progress"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_generated_cases_cover_every_subcommand_and_file_kind():
    tested = {"datasets", "recipes", "train", "sample", "evaluate", "compare", "ema", "theory", "report", "runs", "zoo"}
    assert set(SUBCOMMANDS) <= tested, f"add cases for {set(SUBCOMMANDS) - tested}"
    assert {f for f, _ in CARD_CASES} >= {f.name for f in dataclasses.fields(CardFields)}
    assert {s for s, _, _ in TRAIN_CASES} >= {"trainer", "data", *FAMILIES}


# -- the model pre-parse ---------------------------------------------------------------------------

FAMILY_VALUE_FLAGS = sorted({f for values, _ in train_cli.family_flags().values() for f in values})


def test_the_pre_parse_never_takes_a_flag_s_value_for_the_model():
    assert FAMILY_VALUE_FLAGS
    for flag in FAMILY_VALUE_FLAGS:
        for spelled in ([flag, "16"], [f"{flag}=16"]):
            assert train_cli.model_from_argv(["--init", "RUN", *spelled, "--out", "NEW"]) is None, spelled
            assert train_cli.model_from_argv(["--out", "NEW", *spelled, "ddpm"]) == "ddpm", spelled
            assert train_cli.model_from_argv(["--recipe", "x", *spelled]) is None, spelled


def test_flags_of_another_model_or_an_unknown_recipe_are_named(world, tmp_path, capsys):
    out = str(tmp_path / "new")
    refused(capsys, ["train", "--recipe", "gan-ring8", "--T", "10", "--out", out], "--T", "gan", folder=tmp_path)
    refused(capsys, ["train", "--recipe", "nosuch", "--mlp-width", "32", "--out", out], "nosuch", folder=tmp_path)
    refused(capsys, ["train", "--mlp-width=32", "--out", out], "--mlp-width", folder=tmp_path)
    # the source's own width: a valid fine-tune, its 8 read as the flag's value
    assert main(["train", "--init", str(world / "run"), "--mlp-width", "8", "--out", out, "--steps", "1",
                 *QUIET]) == 0


# -- compatibility of net and data, before the run directory ---------------------------------------


def test_a_net_for_other_data_is_refused_before_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    for argv in (["--recipe", "ddpm-grid25", "--data", "mnist5k"], ["ddpm", "--net", "mlp", "--data", "mnist5k"],
                 ["ddpm", "--net", "unet", "--data", "moons"]):
        refused(capsys, ["train", *argv, "--out", str(out), "--steps", "1"], "model.net", folder=tmp_path)


# -- bounds, threads, precision --------------------------------------------------------------------


def test_counts_beyond_memory_are_refused_in_every_command(world, tmp_path, capsys):
    run = str(world / "run")
    for argv in (["sample", run, "--out", str(tmp_path / "s.npy")], ["evaluate", run], ["compare", run]):
        refused(capsys, [*argv, "--n", "1000000000000"], "--n 1000000000000", folder=tmp_path)
    refused(capsys, ["evaluate", run, "--metrics", "nll", "--k", "1000000000000"], "--k 1000000000000",
            folder=tmp_path)


def test_threads_beyond_the_cores_warn_and_are_capped(tmp_path, capsys):
    import torch

    from genmodels.training.hardware import resolve_threads, usable_cores

    assert resolve_threads(10000) == usable_cores()
    before = torch.get_num_threads()
    assert main(["train", "ddpm", *TINY, "--out", str(tmp_path / "run"), *QUIET, "--threads", "10000"]) == 0
    err = capsys.readouterr().err
    assert f"trainer.threads 10000 is more than the {usable_cores()} usable core(s)" in err
    assert f"{usable_cores()} thread(s)" in err and torch.get_num_threads() == before


def test_an_emulated_bf16_is_named_with_its_cost(world, tmp_path, capsys, monkeypatch):
    from genmodels.training import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: {"avx2"})
    assert main(["sample", str(world / "run"), "--n", "4", "--out", str(tmp_path / "s.npy"), "--device", "cpu",
                 "--precision", "bf16"]) == 0
    err = capsys.readouterr().err
    assert err.count("bf16 on this CPU is emulated") == 1 and "7.7x slower than fp32" in err
    quiet = [a for a in QUIET if a != "fp32"]
    quiet[quiet.index("--precision")] = "--precision=bf16"
    assert main(["train", "ddpm", *TINY, "--out", str(tmp_path / "run"), *quiet]) == 0
    assert "bf16 on this CPU is emulated" in capsys.readouterr().err
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: {"avx512_bf16"})
    assert hardware.emulated_precision("bf16", "cpu") is None


# -- records ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"fd": NaN}', '{"fd": Infinity}', '{"metrics": {"kid": {"value": -Infinity}}}',
                                  '{"fd": {"value": 1.0, "std": NaN}}', '{"fd": {"value": true}}'])
def test_zoo_record_refuses_non_finite_numbers_naming_the_field(world, tmp_path, capsys, text):
    root = tmp_path / "zoo"
    shutil.copytree(world / "zoo" / "good", root / "good")
    card = (root / "good" / CARD).read_text()
    metrics = tmp_path / "m.json"
    metrics.write_text(text)
    name = "kid" if "kid" in text else "fd"
    refused(capsys, ["zoo", "record", "good", "--metrics", str(metrics), "--zoo-root", str(root)], str(metrics), name)
    assert (root / "good" / CARD).read_text() == card
    from genmodels.zoo import record_metrics

    with pytest.raises(Exception, match=rf"{CARD}: metrics\.fd"):
        record_metrics("good", {"fd": {"value": float("nan")}}, root=root)
    assert (root / "good" / CARD).read_text() == card


def test_json_is_written_strictly_everywhere():
    """Every json.dumps that writes a file or prints passes allow_nan=False (or writes only what
    was checked finite): no module writes NaN or Infinity, which strict JSON readers reject."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "genmodels"
    offenders = []
    for path in src.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"json\.dumps?\(", line) and "allow_nan=False" not in line and "default=str" not in line \
                    and "json.loads(json.dumps" not in line and "sigma_rels" not in line:
                offenders.append(f"{path.relative_to(src)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
