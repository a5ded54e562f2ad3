"""The model zoo: export a run, load it back (same samples), refuse tampered or foreign weights
without unpickling, `zoo:NAME` in `genmodels sample` / `genmodels.load`, and `train --init`."""

from __future__ import annotations

import fnmatch
import json
import pickle
import shutil
import struct
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import genmodels
from genmodels.cli import main
from genmodels.errors import CheckpointError, ConfigError
from genmodels.run import RunDir, load_run
from genmodels.zoo import CARD, WEIGHTS, export_run, load_zoo, zoo_card, zoo_config, zoo_names
from genmodels.zoo import weights as W

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--device", "cpu", "--no-progress", "--threads", "1", "--set", "trainer.sample_every=0",
         "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]
DDPM = ["ddpm", "--data", "grid25", "--batch-size", "32", "--mlp-width", "16", "--mlp-depth", "1", "--T", "50",
        "--set", "trainer.ema_decay=0.9", *QUIET]
VAE = ["vae", "--data", "mnist5k", "--batch-size", "16", "--hidden", "32", "--latent-dim", "4",
       "--set", "data.limit=256", "--set", "trainer.ema_decay=0.9", *QUIET]
BF16_SAMPLE_ATOL = 0.01   # VAE decoder means in [-1, 1] from bf16-rounded weights (measured: ~2e-3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny DDPM on grid25 and a tiny VAE on mnist5k, trained in a temporary folder."""
    folder = tmp_path_factory.mktemp("runs")
    before = torch.get_num_threads()
    for name, argv in (("ddpm", DDPM), ("vae", VAE)):
        assert main(["train", *argv, "--steps", "30", "--out", str(folder / name)]) == 0
    torch.set_num_threads(before)
    return folder


@pytest.fixture(scope="module")
def zoo(runs, tmp_path_factory):
    """A zoo root holding fp32 and bf16 exports of both runs."""
    root = tmp_path_factory.mktemp("zoo")
    for family in ("ddpm", "vae"):
        for dtype in ("fp32", "bf16"):
            export_run(runs / family, f"tiny-{family}-{dtype}", dtype=dtype, dest=root, note="test entry",
                       metrics={"fd": {"value": 1.5}})
    return root


def _samples(model, n=32, seed=0):
    with torch.no_grad():
        return model.sample(n, generator=torch.Generator().manual_seed(seed))


def _copy_entry(zoo, tmp_path, name):
    root = tmp_path / "zoo"
    shutil.copytree(zoo / name, root / name)
    return root, root / name


def _rehash(entry: Path) -> None:
    """Make the card's sha256 agree with whatever the weights file now holds (an attacker's move)."""
    card = json.loads((entry / CARD).read_text())
    card["sha256"] = W.sha256_hex((entry / WEIGHTS).read_bytes())
    (entry / CARD).write_text(json.dumps(card))


# -- export and load ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["ddpm", "vae"])
def test_fp32_entry_samples_exactly_like_the_run(runs, zoo, family):
    run = load_run(runs / family, ema=True)
    entry = load_zoo(f"tiny-{family}-fp32", root=zoo)
    assert entry.ema == run.ema == (family == "ddpm")           # the VAE keeps no EMA
    assert entry.step == run.step == 30
    assert all(not m.training for m in entry.model.modules().values())
    assert torch.equal(_samples(entry.model), _samples(run.model))
    if family == "ddpm":                                        # the EMA weights were shipped, not the raw ones
        raw = load_run(runs / family, ema=False)
        assert not torch.equal(_samples(entry.model), _samples(raw.model))


def test_bf16_entry_is_the_rounded_weights_and_samples_close(runs, zoo):
    for family in ("ddpm", "vae"):
        run = load_run(runs / family, ema=True)
        entry = load_zoo(f"tiny-{family}-bf16", root=zoo)
        for net, module in entry.model.modules().items():
            ours, theirs = module.state_dict(), run.model.modules()[net].state_dict()
            for key, value in ours.items():
                assert value.dtype == theirs[key].dtype          # cast back to the model's dtype
                want = theirs[key].to(torch.bfloat16).to(value.dtype) if value.is_floating_point() else theirs[key]
                assert torch.equal(value, want), f"{net}.{key}"
    run, entry = load_run(runs / "vae", ema=True), load_zoo("tiny-vae-bf16", root=zoo)
    a, b = _samples(entry.model), _samples(run.model)
    assert not torch.equal(a, b)
    assert (a - b).abs().max().item() < BF16_SAMPLE_ATOL
    sizes = {d: (zoo / f"tiny-vae-{d}" / WEIGHTS).stat().st_size for d in ("fp32", "bf16")}
    assert sizes["bf16"] < 0.6 * sizes["fp32"]


def test_card_records_the_run(runs, zoo):
    card = zoo_card("tiny-ddpm-fp32", root=zoo)
    weights = (zoo / "tiny-ddpm-fp32" / WEIGHTS).read_bytes()
    assert card["sha256"] == W.sha256_hex(weights) and card["size_bytes"] == len(weights)
    assert card["family"] == "ddpm" and card["data"] == "grid25" and card["step"] == 30
    assert card["dtype"] == "fp32" and card["ema"] is True and card["note"] == "test entry"
    assert zoo_card("tiny-vae-fp32", root=zoo)["ema"] is False
    run = load_run(runs / "ddpm")
    assert card["params"] == sum(p.numel() for m in run.model.modules().values() for p in m.parameters())
    assert card["metrics"] == {"fd": {"value": 1.5}}
    assert card["train_cpu_minutes"] is not None and card["train_cpu_minutes"] >= 0
    assert "out" not in card["config"]                        # no machine path in a shipped card
    stored = tomllib.loads((runs / "ddpm" / "config.toml").read_text())
    for table in ("data", "trainer", "model", "spec"):
        assert card["config"][table] == stored[table]
    config, spec = zoo_config("tiny-ddpm-fp32", root=zoo)
    assert config.model.mlp_width == 16 and config.model.T == 50 and spec.shape == (2,)
    assert "genmodels train ddpm" in card["commands"]["train"] and "model.mlp_width=16" in card["commands"]["train"]


def test_names_and_unknown_entries(zoo, tmp_path):
    names = zoo_names(zoo)
    assert names == sorted(f"tiny-{f}-{d}" for f in ("ddpm", "vae") for d in ("fp32", "bf16"))
    with pytest.raises(ConfigError) as e:
        load_zoo("nope", root=zoo)
    assert "nope" in str(e.value) and all(n in str(e.value) for n in names)
    (tmp_path / "empty-zoo").mkdir()
    with pytest.raises(ConfigError, match="empty"):
        zoo_card("nope", root=tmp_path / "empty-zoo")
    assert zoo_names(tmp_path / "empty-zoo") == []
    with pytest.raises(ConfigError, match="no-zoo: no such folder"):    # a mistyped root is not an empty zoo
        zoo_names(tmp_path / "no-zoo")


def test_export_refusals(runs, zoo, tmp_path):
    with pytest.raises(ConfigError, match="already exists"):
        export_run(runs / "ddpm", "tiny-ddpm-fp32", dest=zoo)
    for bad in ("export", "../up", "a/b", ""):
        with pytest.raises(ConfigError, match="name"):
            export_run(runs / "ddpm", bad, dest=tmp_path)
    with pytest.raises(ConfigError, match="fp32"):
        export_run(runs / "ddpm", "x", dtype="int8", dest=tmp_path)
    assert not any(tmp_path.iterdir())
    # --force replaces an entry
    export_run(runs / "ddpm", "again", dtype="fp32", dest=tmp_path)
    export_run(runs / "ddpm", "again", dtype="bf16", dest=tmp_path, overwrite=True)
    assert zoo_card("again", root=tmp_path)["dtype"] == "bf16"


# -- refusing damaged or foreign weights ----------------------------------------------------------


def test_one_flipped_byte_is_a_sha256_mismatch(zoo, tmp_path):
    root, entry = _copy_entry(zoo, tmp_path, "tiny-vae-fp32")
    data = bytearray((entry / WEIGHTS).read_bytes())
    data[len(data) - 100] ^= 0x01                             # inside the tensor data: still parses as safetensors
    (entry / WEIGHTS).write_bytes(bytes(data))
    W.decode(bytes(data), entry / WEIGHTS)                    # (it would load without the hash check)
    with pytest.raises(CheckpointError) as e:
        load_zoo("tiny-vae-fp32", root=root)
    assert "sha256" in str(e.value) and str(entry / WEIGHTS) in str(e.value)


class _Payload:
    """Unpickling this creates `marker` (as a malicious pickle would run any code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_in_place_of_the_weights_is_refused_unopened(zoo, tmp_path, writer):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control))).close()
    assert control.exists()                                   # the payload is live
    root, entry = _copy_entry(zoo, tmp_path, "tiny-ddpm-fp32")
    marker = tmp_path / "pwned"
    if writer == "pickle":
        (entry / WEIGHTS).write_bytes(pickle.dumps({"eps.w": _Payload(marker)}))
    else:
        torch.save({"eps.w": _Payload(marker)}, entry / WEIGHTS)
    _rehash(entry)
    with pytest.raises(CheckpointError) as e:
        load_zoo("tiny-ddpm-fp32", root=root)
    assert "not a safetensors file" in str(e.value) and str(entry / WEIGHTS) in str(e.value)
    assert not marker.exists()


def _rewrite_tensors(entry: Path, change) -> None:
    data = (entry / WEIGHTS).read_bytes()
    tensors, metadata = W.decode(data, entry / WEIGHTS)
    change(tensors)
    (entry / WEIGHTS).write_bytes(W.encode(tensors, {k: v for k, v in metadata.items() if k != "format"}))
    _rehash(entry)


def test_missing_unexpected_or_misshapen_tensors_name_the_net(zoo, tmp_path):
    root, entry = _copy_entry(zoo, tmp_path, "tiny-vae-fp32")
    original = (entry / WEIGHTS).read_bytes()
    card = (entry / CARD).read_text()
    first = next(k for k in W.decode(original, entry / WEIGHTS)[0] if k.startswith("decoder."))

    def drop(t):
        del t[first]

    def extra(t):
        t["decoder.surplus"] = torch.zeros(3)

    def reshape(t):
        t[first] = torch.zeros(*t[first].shape, 2)

    for change, words in ((drop, "missing"), (extra, "unexpected"), (reshape, "shape")):
        (entry / WEIGHTS).write_bytes(original)
        (entry / CARD).write_text(card)
        _rewrite_tensors(entry, change)
        with pytest.raises(CheckpointError) as e:
            load_zoo("tiny-vae-fp32", root=root)
        message = str(e.value)
        assert str(entry / WEIGHTS) in message and "'decoder'" in message and words in message
    (entry / WEIGHTS).write_bytes(original)
    (entry / CARD).write_text(card)
    _rewrite_tensors(entry, lambda t: t.update({"nonet.x": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="no network"):
        load_zoo("tiny-vae-fp32", root=root)


def test_safetensors_without_the_zoo_tag_is_refused(zoo, tmp_path):
    from safetensors.torch import save

    root, entry = _copy_entry(zoo, tmp_path, "tiny-vae-fp32")
    (entry / WEIGHTS).write_bytes(save({"decoder.x": torch.zeros(2)}))
    _rehash(entry)
    with pytest.raises(CheckpointError, match="not a genmodels zoo"):
        load_zoo("tiny-vae-fp32", root=root)
    (entry / WEIGHTS).write_bytes(struct.pack("<Q", 10**12) + b"{}")
    _rehash(entry)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_zoo("tiny-vae-fp32", root=root)


# -- zoo:NAME wherever a run is read ----------------------------------------------------------------


def test_sample_cli_reads_zoo_entries(runs, zoo, tmp_path):
    common = ["--n", "16", "--device", "cpu", "--seed", "3", "--sampler", "ddim", "--steps", "10"]
    a, b = tmp_path / "zoo.npy", tmp_path / "run.npy"
    assert main(["sample", "zoo:tiny-ddpm-fp32", "--zoo-root", str(zoo), *common, "--out", str(a)]) == 0
    assert main(["sample", str(runs / "ddpm"), *common, "--out", str(b)]) == 0
    assert np.array_equal(np.load(a), np.load(b))
    grid = tmp_path / "grid.png"
    assert main(["sample", f"--zoo-root={zoo}", "zoo:tiny-vae-bf16", "--n", "9", "--out", str(grid),
                 "--device", "cpu"]) == 0
    assert grid.stat().st_size > 0


def test_an_entry_s_sample_options_are_its_defaults_and_flags_override_them(runs, zoo, tmp_path, capsys):
    root = tmp_path / "zoo"
    export_run(runs / "ddpm", "fast", dtype="fp32", dest=root, sample_options={"sampler": "ddim", "steps": "5"})
    assert zoo_card("fast", root)["sample_options"] == {"sampler": "ddim", "steps": 5}     # typed when checked
    common = ["--n", "8", "--device", "cpu", "--seed", "1"]
    entry, run, flags = tmp_path / "entry.npy", tmp_path / "run.npy", tmp_path / "flags.npy"
    assert main(["sample", "zoo:fast", "--zoo-root", str(root), *common, "--out", str(entry)]) == 0
    assert main(["sample", str(runs / "ddpm"), *common, "--sampler", "ddim", "--steps", "5", "--out", str(run)]) == 0
    assert np.array_equal(np.load(entry), np.load(run))
    assert main(["sample", "zoo:fast", "--zoo-root", str(root), *common, "--steps", "7", "--out", str(flags)]) == 0
    seven = tmp_path / "seven.npy"
    assert main(["sample", str(runs / "ddpm"), *common, "--sampler", "ddim", "--steps", "7", "--out", str(seven)]) == 0
    assert np.array_equal(np.load(flags), np.load(seven))                  # the flag beats the card, the rest stays
    assert load_zoo("fast", root=root).sample_defaults == {"sampler": "ddim", "steps": 5}   # what evaluate applies
    with pytest.raises(ConfigError, match="nope"):
        export_run(runs / "ddpm", "bad", dtype="fp32", dest=root, sample_options={"nope": "1"})
    capsys.readouterr()
    assert main(["zoo", "fast", "--zoo-root", str(root)]) == 0
    assert "sampler = ddim" in capsys.readouterr().out


def test_sample_cli_errors_for_zoo(zoo, tmp_path, capsys):
    out = str(tmp_path / "x.npy")
    assert main(["sample", "zoo:missing", "--zoo-root", str(zoo), "--n", "4", "--out", out]) == 2
    assert "tiny-ddpm-fp32" in capsys.readouterr().err
    assert main(["sample", "zoo:tiny-ddpm-fp32", "--zoo-root", str(zoo), "--n", "4", "--out", out,
                 "--checkpoint", "x.pt"]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_genmodels_load(runs, zoo):
    model = genmodels.load("zoo:tiny-vae-fp32", zoo_root=zoo)
    assert all(not m.training for m in model.modules().values())
    assert torch.equal(_samples(model), _samples(genmodels.load(runs / "vae")))


def test_zoo_command(runs, zoo, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["zoo", "--zoo-root", str(tmp_path / "empty")]) == 0
    assert "empty" in capsys.readouterr().out
    assert main(["zoo", "--zoo-root", str(tmp_path / "missing")]) == 2
    assert "missing: no such folder" in capsys.readouterr().err
    assert main(["zoo", "--zoo-root", str(zoo)]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in zoo_names(zoo)) and "fd 1.5" in out and "grid25" in out
    assert main(["zoo", "tiny-ddpm-fp32", "--zoo-root", str(zoo)]) == 0
    out = capsys.readouterr().out
    assert "sha256" in out and "mlp_width = 16" in out and "test entry" in out
    assert main(["zoo", "tiny-ddpm-fp32", "--zoo-root", str(zoo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == zoo_card("tiny-ddpm-fp32", root=zoo)["sha256"]
    assert main(["zoo", "--zoo-root", str(zoo), "--json"]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)] == zoo_names(zoo)
    # export through the CLI, with metrics from an evaluate --json file
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps({"title": "t", "dataset": "grid25", "extractor": "raw", "n_samples": 100,
                                   "metrics": {"modes": {"value": 12.0, "std": None, "real_floor": 25.0}}}))
    dest = tmp_path / "mine"
    assert main(["zoo", "export", str(runs / "ddpm"), "--name", "mine", "--dtype", "fp16", "--metrics", str(metrics),
                 "--command", "evaluate=genmodels evaluate zoo:mine --metrics modes", "--dest", str(dest)]) == 0
    card = zoo_card("mine", root=dest)
    assert card["dtype"] == "fp16" and card["metrics"]["modes"]["value"] == 12.0
    assert card["metrics"]["modes"]["n_samples"] == 100
    assert card["commands"]["evaluate"].startswith("genmodels evaluate")
    capsys.readouterr()
    assert main(["zoo", "--dtype", "fp16"]) == 2
    assert "export" in capsys.readouterr().err


def test_package_data_ships_entries():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["genmodels"]
    for name in (WEIGHTS, CARD):
        assert any(fnmatch.fnmatch(f"zoo/models/some-entry/{name}", g) for g in globs), name
    from genmodels.zoo import default_root

    assert default_root().parts[-3:] == ("genmodels", "zoo", "models")    # where those globs point


# -- fine-tuning with --init ------------------------------------------------------------------------


def _fit_capturing(monkeypatch):
    """Replace Trainer.fit by one that records the networks' weights at step 0 and trains nothing."""
    from genmodels.training.trainer import FitResult, Trainer

    seen = {}

    def fit(self, model, dataset):
        seen["state"] = {f"{n}.{k}": v.detach().clone() for n, m in model.modules().items()
                         for k, v in m.state_dict().items()}
        seen["init"] = self.config.init
        return FitResult(step=0, values={}, run_dir=Path(self.config.out), checkpoint=None)

    monkeypatch.setattr(Trainer, "fit", fit)
    return seen


def _state(model):
    return {f"{n}.{k}": v for n, m in model.modules().items() for k, v in m.state_dict().items()}


def test_init_starts_from_the_source_weights(runs, zoo, tmp_path, monkeypatch):
    seen = _fit_capturing(monkeypatch)
    source = _state(load_zoo("tiny-ddpm-fp32", root=zoo).model)
    # without MODEL the run starts from the source's own config; with a recipe-less MODEL it must match
    assert main(["train", "--init", "zoo:tiny-ddpm-fp32", "--zoo-root", str(zoo), "--steps", "5",
                 "--out", str(tmp_path / "ft"), *QUIET]) == 0
    assert seen["init"] == "zoo:tiny-ddpm-fp32"
    assert seen["state"].keys() == source.keys() and all(torch.equal(seen["state"][k], source[k]) for k in source)
    # a fresh run of the same config starts elsewhere (the comparison can fail)
    assert main(["train", *DDPM, "--steps", "5", "--out", str(tmp_path / "fresh")]) == 0
    assert not all(torch.equal(seen["state"][k], source[k]) for k in source)
    # a run directory is a source too (its EMA weights)
    assert main(["train", *DDPM, "--steps", "5", "--init", str(runs / "ddpm"), "--out", str(tmp_path / "ft2")]) == 0
    run = _state(load_run(runs / "ddpm", ema=True).model)
    assert all(torch.equal(seen["state"][k], run[k]) for k in run)


def test_init_refuses_a_different_model(zoo, tmp_path, capsys):
    common = ["--zoo-root", str(zoo), "--steps", "2", *QUIET]
    assert main(["train", "ddpm", "--data", "grid25", "--init", "zoo:tiny-ddpm-fp32", "--out", str(tmp_path / "a"),
                 *common]) == 2
    err = capsys.readouterr().err
    assert "model.mlp_width: 16 in the source vs 256 here" in err and "model.T" in err
    assert main(["train", *DDPM, "--init", "zoo:tiny-vae-fp32", "--out", str(tmp_path / "b"), *common]) == 2
    assert "vae" in capsys.readouterr().err
    assert main(["train", *DDPM, "--data", "ring8", "--init", "zoo:tiny-ddpm-fp32", "--out", str(tmp_path / "c"),
                 *common]) == 2
    assert "num_classes" in capsys.readouterr().err
    assert not (tmp_path / "a" / "checkpoints").exists()


def test_init_is_recorded_and_resume_never_reinitialises(zoo, tmp_path, capsys):
    root = tmp_path / "zoo"
    shutil.copytree(zoo / "tiny-ddpm-fp32", root / "src")
    common = ["--init", "zoo:src", "--zoo-root", str(root), "--set", "trainer.lr_schedule=constant", *QUIET]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["train", *common, "--steps", "4", "--out", str(whole)]) == 0
    assert tomllib.loads((whole / "config.toml").read_text())["init"] == "zoo:src"
    assert main(["train", *common, "--steps", "2", "--out", str(split)]) == 0
    shutil.rmtree(root)                         # the source is gone: a resumed run must not need it
    assert main(["train", "--resume", "--out", str(split), "--steps", "4"]) == 0
    a = torch.load(RunDir(whole).latest, weights_only=True)
    b = torch.load(RunDir(split).latest, weights_only=True)
    assert a["step"] == b["step"] == 4
    for part in ("modules", "optimizers"):
        assert _equal(a[part], b[part]), part
    assert _equal(a["ema"]["shadow"], b["ema"]["shadow"])
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(split), "--init", "zoo:src"]) == 2
    assert "--init cannot be combined with --resume" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(split), "--set", "init=zoo:other"]) == 2
    assert "init" in capsys.readouterr().err


def test_resume_before_the_first_checkpoint_applies_init_again(zoo, tmp_path):
    root = tmp_path / "zoo"
    shutil.copytree(zoo / "tiny-ddpm-fp32", root / "src")
    common = ["--init", "zoo:src", "--zoo-root", str(root), "--set", "trainer.lr_schedule=constant", *QUIET]
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert main(["train", *common, "--steps", "3", "--out", str(whole)]) == 0
    assert main(["train", *common, "--steps", "3", "--out", str(crashed)]) == 0
    RunDir(crashed).latest.unlink()             # as if killed before its first checkpoint: config.toml only
    (crashed / "metrics.jsonl").unlink()
    assert main(["train", "--resume", "--zoo-root", str(root), "--out", str(crashed), *QUIET]) == 0
    a = torch.load(RunDir(whole).latest, weights_only=True)
    b = torch.load(RunDir(crashed).latest, weights_only=True)
    assert _equal(a["modules"], b["modules"])


def _equal(x, y) -> bool:
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def test_record_adds_measured_metrics_and_leaves_the_weights(zoo, tmp_path, capsys):
    root, entry = _copy_entry(zoo, tmp_path, "tiny-ddpm-fp32")
    weights = (entry / WEIGHTS).read_bytes()
    before = _samples(load_zoo("tiny-ddpm-fp32", root=root).model)
    table = tmp_path / "compare.json"
    capsys.readouterr()
    assert main(["compare", "zoo:tiny-ddpm-fp32", "--zoo-root", str(root), "--metrics", "fd,modes,nll",
                 "--n", "200", "--nll-n", "20", "--device", "cpu", "--no-progress", "--json"]) == 0
    table.write_text(capsys.readouterr().out)
    row = json.loads(table.read_text())["rows"][0]
    floor = json.loads(table.read_text())["floor"]["metrics"]

    assert main(["zoo", "record", "tiny-ddpm-fp32", "--zoo-root", str(root), "--metrics", str(table),
                 "--command", "compare=genmodels compare zoo:tiny-ddpm-fp32 --n 200"]) == 0
    assert "weights unchanged" in capsys.readouterr().out
    card = zoo_card("tiny-ddpm-fp32", root=root)
    fd = card["metrics"]["FD-raw"]
    assert fd["value"] == row["metrics"]["FD-raw"]["value"]
    assert fd["real_floor"] == floor["FD-raw"]["value"] and fd["n_samples"] == 200 and fd["dataset"] == "grid25"
    assert card["metrics"]["nll:nats_per_dim_total"]["n_samples"] == 20     # a likelihood: its test examples
    assert card["metrics"]["modes_captured"]["value"] == row["metrics"]["modes_captured"]["value"]
    assert card["metrics"]["fd"] == {"value": 1.5}        # the figures it had stay, beside the new ones
    assert card["commands"]["compare"].startswith("genmodels compare")
    assert (entry / WEIGHTS).read_bytes() == weights
    assert torch.equal(_samples(load_zoo("tiny-ddpm-fp32", root=root).model), before)

    # a table without the entry's row, no metrics, an unknown entry, an export-only flag: one-line errors
    capsys.readouterr()
    assert main(["zoo", "record", "tiny-vae-fp32", "--zoo-root", str(zoo), "--metrics", str(table)]) == 2
    assert "without a row of zoo:tiny-vae-fp32" in capsys.readouterr().err
    assert main(["zoo", "record", "tiny-ddpm-fp32", "--zoo-root", str(root)]) == 2
    assert "needs --metrics" in capsys.readouterr().err
    assert main(["zoo", "record", "no-such-entry", "--zoo-root", str(root), "--metrics", str(table)]) == 2
    assert "no-such-entry" in capsys.readouterr().err
    assert main(["zoo", "record", "tiny-ddpm-fp32", "--zoo-root", str(root), "--metrics", str(table),
                 "--dtype", "bf16"]) == 2
    assert "--dtype" in capsys.readouterr().err
