"""The one-call Python API: `genmodels.train(...)` trains through the same path as the CLI and returns
the model ready to sample; its keyword options are routed to the trainer or the model config."""

from __future__ import annotations

import pytest
import torch

import genmodels
from genmodels.config import load_toml
from genmodels.errors import ConfigError

TINY = dict(data="mnist5k", steps=6, batch_size=16, hidden=[16], latent_dim=2, data__limit=64, device="cpu",
            progress=False, report=False, tensorboard=False, sample_every=0, threads=1)


def test_train_returns_the_trained_model_and_writes_the_run(tmp_path):
    model = genmodels.train("vae", out=tmp_path / "run", **TINY)
    assert all(not m.training for m in model.modules().values())        # eval mode, as load() gives it
    x = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 28, 28)
    config, _ = load_toml(tmp_path / "run" / "config.toml")
    assert config.trainer.batch_size == 16 and config.model.hidden == [16] and config.data.limit == 64
    again = genmodels.load(tmp_path / "run")
    assert torch.equal(again.sample(4, generator=torch.Generator().manual_seed(0)), x)


@pytest.mark.parametrize("bad, words", [
    ({"nope": 1}, ["unknown option 'nope'", "batch_size"]),
    ({"data__nope": 1}, ["unknown option 'data__nope'"]),
])
def test_unknown_options_are_refused_before_training(tmp_path, bad, words):
    with pytest.raises(ConfigError) as e:
        genmodels.train("vae", out=tmp_path / "run", **{**TINY, **bad})
    assert all(w in str(e.value) for w in words)
    assert not (tmp_path / "run" / "checkpoints").exists()
