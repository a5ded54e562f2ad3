"""Zoo entries of the sampling networks only (`genmodels zoo export --networks sampling`): a GAN's
entry without its discriminator stores no D tensor, samples and evaluates exactly like its run, is
refused by `train --init` naming D, and is checked as strictly as a full entry."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_zoo import QUIET, _copy_entry, _fit_capturing, _rewrite_tensors, _samples

from genmodels.cli import main
from genmodels.errors import CheckpointError, ConfigError
from genmodels.run import load_run
from genmodels.zoo import CARD, WEIGHTS, export_run, load_zoo, zoo_card
from genmodels.zoo import weights as W

GAN = ["gan", "--data", "moons", "--mlp-width", "16", "--mlp-depth", "1", "--z-dim", "4", "--ema",
       "--batch-size", "32", "--set", "trainer.ema_decay=0.9", *QUIET]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny GAN on moons keeping an EMA of G, trained in a temporary folder."""
    folder = tmp_path_factory.mktemp("runs") / "gan"
    before = torch.get_num_threads()
    assert main(["train", *GAN, "--steps", "30", "--out", str(folder)]) == 0
    torch.set_num_threads(before)
    return folder


@pytest.fixture(scope="module")
def zoo(run, tmp_path_factory):
    """A zoo root with fp32 exports of the run: G alone ("gan-g") and every network ("gan-all")."""
    root = tmp_path_factory.mktemp("zoo")
    export_run(run, "gan-g", dtype="fp32", dest=root, networks="sampling")
    export_run(run, "gan-all", dtype="fp32", dest=root)
    return root


def _stored(root, name):
    entry = root / name / WEIGHTS
    return W.decode(entry.read_bytes(), entry)[0]


def _params(module):
    return sum(p.numel() for p in module.parameters())


def test_a_sampling_entry_stores_g_alone_and_a_full_one_everything(run, zoo):
    model = load_run(run).model
    sampling, full = _stored(zoo, "gan-g"), _stored(zoo, "gan-all")
    assert sampling and all(k.startswith("G.") for k in sampling)
    assert {k for k in full if k.startswith("G.")} == set(sampling) and any(k.startswith("D.") for k in full)
    card, full_card = zoo_card("gan-g", root=zoo), zoo_card("gan-all", root=zoo)
    assert card["networks"] == ["G"] and full_card["networks"] == ["D", "G"]
    assert card["params"] == _params(model.G)                          # the stored networks' parameters only
    assert full_card["params"] == _params(model.G) + _params(model.D)
    assert "--networks sampling" in card["commands"]["export"]
    assert "--networks" not in full_card["commands"]["export"]
    assert card["size_bytes"] < full_card["size_bytes"]


def test_the_sampling_entry_samples_exactly_like_the_run_s_ema(run, zoo):
    ema = load_run(run, ema=True)
    entry = load_zoo("gan-g", root=zoo)
    assert entry.ema and entry.networks == ("G",) and entry.missing_networks() == ["D"]
    assert torch.equal(_samples(entry.model), _samples(ema.model))
    assert not torch.equal(_samples(entry.model), _samples(load_run(run, ema=False).model))   # EMA weights shipped
    pairs = list(zip(entry.model.D.parameters(), ema.model.D.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in pairs)                                      # D stayed fresh
    full = load_zoo("gan-all", root=zoo)
    assert full.networks is None and full.missing_networks() == []
    assert all(torch.equal(a, b) for a, b in zip(full.model.D.parameters(), ema.model.D.parameters(), strict=True))


def test_init_refuses_a_sampling_entry_naming_d(zoo, tmp_path, monkeypatch, capsys):
    common = ["--zoo-root", str(zoo), "--steps", "2", *QUIET]
    assert main(["train", "--init", "zoo:gan-g", "--out", str(tmp_path / "ft"), *common]) == 2
    err = capsys.readouterr().err
    assert "zoo:gan-g stores only the sampling networks (G)" in err and "D is not in it" in err
    assert not (tmp_path / "ft").exists()                            # refused before the run was made
    seen = _fit_capturing(monkeypatch)                               # the full entry is accepted
    assert main(["train", "--init", "zoo:gan-all", "--out", str(tmp_path / "ft2"), *common]) == 0
    assert seen["init"] == "zoo:gan-all"


def test_export_refuses_an_unknown_networks_choice(run, tmp_path):
    with pytest.raises(ConfigError, match="networks 'generator'.*all, sampling"):
        export_run(run, "bad", dest=tmp_path, networks="generator")   # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_a_card_naming_an_unknown_or_malformed_network_is_refused(zoo, tmp_path):
    root, entry = _copy_entry(zoo, tmp_path, "gan-g")
    card = json.loads((entry / CARD).read_text())
    (entry / CARD).write_text(json.dumps({**card, "networks": ["E", "G"]}))
    with pytest.raises(CheckpointError) as e:
        load_zoo("gan-g", root=root)
    assert str(entry / CARD) in str(e.value) and "E" in str(e.value) and "does not have" in str(e.value)
    (entry / CARD).write_text(json.dumps({**card, "networks": "G"}))
    with pytest.raises(CheckpointError, match="networks must be a list"):
        load_zoo("gan-g", root=root)


def test_a_card_without_networks_means_every_network(zoo, tmp_path):
    root = tmp_path / "zoo"
    for name in ("gan-g", "gan-all"):
        shutil.copytree(zoo / name, root / name)
        card = json.loads((root / name / CARD).read_text())
        del card["networks"]                                         # as written before the key existed
        (root / name / CARD).write_text(json.dumps(card))
    assert load_zoo("gan-all", root=root).networks is None           # an old full card still loads
    with pytest.raises(CheckpointError, match="network 'D' does not match the model: missing"):
        load_zoo("gan-g", root=root)


def test_tampering_with_a_sampling_entry_is_refused(zoo, tmp_path):
    root, entry = _copy_entry(zoo, tmp_path, "gan-g")
    original, card = (entry / WEIGHTS).read_bytes(), (entry / CARD).read_text()
    data = bytearray(original)
    data[len(data) - 8] ^= 0x01
    (entry / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_zoo("gan-g", root=root)
    # D's tensors slipped into G's entry (hash updated to match): tensors of a network the card does not list
    d_tensors = {k: v for k, v in _stored(zoo, "gan-all").items() if k.startswith("D.")}
    (entry / WEIGHTS).write_bytes(original)
    _rewrite_tensors(entry, lambda t: t.update(d_tensors))
    with pytest.raises(CheckpointError) as e:
        load_zoo("gan-g", root=root)
    assert str(entry / WEIGHTS) in str(e.value) and "belong to no network" in str(e.value)
    (entry / WEIGHTS).write_bytes(original)
    (entry / CARD).write_text(card)
    _rewrite_tensors(entry, lambda t: t.pop(next(iter(t))))
    with pytest.raises(CheckpointError, match="network 'G' does not match the model: missing"):
        load_zoo("gan-g", root=root)


def test_the_cli_exports_samples_and_evaluates_a_sampling_entry(run, tmp_path, capsys):
    dest = tmp_path / "mine"
    assert main(["zoo", "export", str(run), "--name", "g", "--networks", "sampling", "--dtype", "fp32",
                 "--dest", str(dest)]) == 0
    assert "networks G," in capsys.readouterr().out
    assert zoo_card("g", root=dest)["networks"] == ["G"]
    assert main(["zoo", "g", "--zoo-root", str(dest)]) == 0
    assert "networks    G\n" in capsys.readouterr().out
    common = ["--n", "64", "--device", "cpu", "--seed", "3"]
    a, b = tmp_path / "zoo.npy", tmp_path / "run.npy"
    assert main(["sample", "zoo:g", "--zoo-root", str(dest), *common, "--out", str(a)]) == 0
    assert main(["sample", str(run), *common, "--out", str(b)]) == 0
    assert np.array_equal(np.load(a), np.load(b))
    capsys.readouterr()
    figures = []
    for source in ("zoo:g", str(run)):
        assert main(["evaluate", source, "--zoo-root", str(dest), "--metrics", "fd", "--no-floor", "--json",
                     *common]) == 0
        figures.append(json.loads(capsys.readouterr().out)["metrics"])
    assert figures[0] == figures[1] and figures[0]
    assert main(["zoo", "--networks", "sampling"]) == 2                 # an export option
    assert "export" in capsys.readouterr().err
    with pytest.raises(SystemExit):                                  # argparse: the choices are all, sampling
        main(["zoo", "export", str(run), "--name", "h", "--networks", "some", "--dest", str(dest)])
    assert "{all,sampling}" in capsys.readouterr().err
