"""What is kept and served again is keyed by the content it depends on, never by a name or a path
that may come to hold other content:
- a `compare --cache` row by the sampling options it was drawn with (a zoo card's own defaults
  included), not only the --sample-option flags;
- the cache's rows and floor by the content of the data file, not its name;
- a latent DDPM's VAE by the digest of its weights, not only its step;
- reading the cache never raises: a row missing a key or of the wrong types is measured again."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from genmodels.cli import main
from genmodels.zoo import export_run

QUIET = ["--device", "cpu", "--no-progress", "--threads", "1", "--precision", "fp32", "--set",
         "trainer.sample_every=0", "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]
SMALL = ["--metrics", "fd", "--n", "64", "--device", "cpu", "--no-progress", "--json"]


def _points(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(400, 2)) * (0.5 + seed)).astype(np.float32)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny DDPM on a .npy points file, and a zoo holding it twice: with the family's sampler and
    with a 5-step DDIM as the card's default."""
    import torch

    before = torch.get_num_threads()
    root = tmp_path_factory.mktemp("keyed")
    data = root / "my_points.npy"
    np.save(data, _points(0))
    assert main(["train", "ddpm", "--data", str(data), "--out", str(root / "ddpm"), "--steps", "5",
                 "--batch-size", "32", "--T", "50", "--mlp-width", "16", "--mlp-depth", "1", *QUIET]) == 0
    export_run(root / "ddpm", "plain", dtype="fp32", dest=root / "zoo")
    export_run(root / "ddpm", "fast", dtype="fp32", dest=root / "zoo", sample_options={"sampler": "ddim", "steps": 3})
    torch.set_num_threads(before)
    return root


def _compare(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(["compare", *argv, *SMALL]) == 0
    return json.loads(capsys.readouterr().out)


def _fd(table: dict) -> list[float]:
    return [next(iter(r["metrics"].values()))["value"] for r in table["rows"]]


def test_cache_rows_are_keyed_by_the_entry_s_own_sampling_defaults(runs, tmp_path, capsys):
    zoo = ["zoo:plain", "zoo:fast", "--zoo-root", str(runs / "zoo")]
    fresh = _fd(_compare(capsys, zoo))
    assert fresh[0] != fresh[1]                       # same weights, other samplers: other numbers
    cached = _fd(_compare(capsys, [*zoo, "--cache", str(tmp_path / "cache")]))
    assert cached == fresh
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3   # the floor and two rows


def test_cache_is_keyed_by_the_data_file_s_content(runs, tmp_path, capsys):
    run, data = tmp_path / "ddpm", tmp_path / "my_points.npy"
    shutil.copytree(runs / "ddpm", run)
    np.save(data, _points(0))
    (run / "config.toml").write_text((run / "config.toml").read_text().replace(str(runs / "my_points.npy"),
                                                                               str(data)))
    cache = ["--cache", str(tmp_path / "cache")]
    first = _compare(capsys, [str(run), *cache])
    np.save(data, _points(3))                          # the same path, other points
    second = _compare(capsys, [str(run), *cache])
    fresh = _compare(capsys, [str(run)])
    assert second["floor"]["metrics"] == fresh["floor"]["metrics"] != first["floor"]["metrics"]
    assert _fd(second) == _fd(fresh) != _fd(first)


@pytest.mark.parametrize("payload", [{}, {"metrics": "x"}, {"metrics": {"FD": {"value": "1"}}},
                                     {"metrics": {"FD": 3}}, {"metrics": {}, "n_likelihood": "2"}, [1, 2], None])
def test_an_unusable_cached_row_is_measured_again(runs, tmp_path, capsys, payload):
    cache = tmp_path / "cache"
    argv = [str(runs / "ddpm"), "--cache", str(cache)]
    first = _compare(capsys, argv)
    for path in cache.glob("*.json"):
        stored = json.loads(path.read_text())
        stored["payload"] = payload
        path.write_text(json.dumps(stored))
    capsys.readouterr()
    assert main(["compare", *argv, *SMALL]) == 0
    captured = capsys.readouterr()
    assert "unusable" in captured.err and "payload" in captured.err
    assert json.loads(captured.out)["rows"] == first["rows"]


def test_a_latent_ddpm_refuses_a_vae_retrained_at_the_same_path(tmp_path, capsys):
    data, vae, ldm = tmp_path / "pts.npy", tmp_path / "vae", tmp_path / "ldm"
    np.save(data, _points(0))
    vae_argv = ["train", "vae", "--data", str(data), "--out", str(vae), "--steps", "3", "--batch-size", "32",
                "--decoder", "gaussian", "--latent-dim", "2", "--hidden", "8", *QUIET]
    assert main(vae_argv) == 0
    assert main(["train", "ddpm", "--data", f"latents:{vae}", "--out", str(ldm), "--steps", "2", "--batch-size", "32",
                 "--T", "50", "--mlp-width", "16", "--mlp-depth", "1", *QUIET]) == 0
    out = tmp_path / "s.npy"
    assert main(["sample", str(ldm), "--n", "4", "--out", str(out), "--device", "cpu"]) == 0
    shutil.rmtree(vae)
    assert main([*vae_argv, "--seed", "1"]) == 0       # the same step count, another seed
    capsys.readouterr()
    out.unlink()
    assert main(["sample", str(ldm), "--n", "4", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"sha256 [0-9a-f]{16}\.\.\. now, [0-9a-f]{16}\.\.\. when it was trained", err), err
    assert "retrained" in err and str(vae) in err and not out.exists()
