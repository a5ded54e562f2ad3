"""Latent diffusion (Rombach et al. 2022): a DDPM trained on `latents:VAE_RUN`, sampled through the VAE's decoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genmodels.cli import main
from genmodels.config import load_toml
from genmodels.data.latents import latent_scale
from genmodels.errors import ConfigError
from genmodels.models.ddpm import DDPMSampleOptions
from genmodels.run import load_data as load

QUICK = ["--threads", "1", "--device", "cpu", "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ldm")
    vae, ddpm = root / "vae", root / "ldm"
    assert main(["train", "vae", "--data", "mnist5k", "--out", str(vae), "--steps", "30", "--batch-size", "32",
                 "--set", "data.limit=256", "--set", "model.latent_dim=4", "--set", "model.hidden=[64]", *QUICK]) == 0
    assert main(["train", "ddpm", "--data", f"latents:{vae}", "--out", str(ddpm), "--steps", "5", "--batch-size", "32",
                 "--set", "model.T=20", "--set", "model.mlp_width=32", "--set", "model.mlp_depth=1", *QUICK]) == 0
    return root


def test_latents_are_scaled_encoder_means_with_their_source(runs):
    data = load(f"latents:{runs / 'vae'}")
    assert data.kind == "points" and data.x.shape == (256, 4) and data.num_classes == 10
    assert data.latent is not None and data.latent.vae_run == str(runs / "vae") and data.latent.vae_step == 30
    assert abs(float(data.x.double().std()) - 1.0) < 1e-4                 # unit variance over all latent dims
    test = load(f"latents:{runs / 'vae'}", split="test")
    assert test.latent == data.latent and len(test) > 256                # the train split's scale, all test images
    expected = 1 / float(torch.tensor([0., 2, 2, 0]).std())
    assert latent_scale(torch.tensor([[0.0, 2.0], [2.0, 0.0]])) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="do not apply"):
        load(f"latents:{runs / 'vae'}", image_size=14)


def test_run_records_the_vae_and_the_scale(runs):
    config, extra = load_toml(runs / "ldm" / "config.toml")
    assert config.data.name == f"latents:{runs / 'vae'}"
    latent = extra["spec"]["latent"]
    assert latent["vae_run"] == str(runs / "vae") and latent["vae_step"] == 30 and latent["scale"] > 0
    assert extra["spec"]["kind"] == "points" and extra["spec"]["shape"] == [4]


def test_sample_decodes_to_images_of_the_vae_data_shape(runs):
    out = runs / "s.npy"
    assert main(["sample", str(runs / "ldm"), "--n", "6", "--out", str(out), "--device", "cpu", "--steps", "5"]) == 0
    x = np.load(out)
    assert x.shape == (6, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert main(["sample", str(runs / "ldm"), "--n", "4", "--out", str(runs / "s.png"), "--device", "cpu",
                 "--sampler", "ddim", "--steps", "5"]) == 0


def test_decoding_is_the_vae_decoder_of_the_unscaled_latents(runs):
    from genmodels.latent_run import decode_latents
    from genmodels.run import load_run

    loaded = load_run(runs / "ldm")
    decoded = decode_latents(loaded)
    assert decoded.spec.kind == "image" and decoded.config.data.name == "mnist5k"
    x = decoded.model.sample(3, DDPMSampleOptions(steps=5), generator=torch.Generator().manual_seed(0))
    z = loaded.model.sample(3, DDPMSampleOptions(steps=5),
                            generator=torch.Generator().manual_seed(0)) / loaded.spec.latent.scale
    assert torch.equal(x, decoded.model.vae.decode(z, mean=True))


def test_evaluate_scores_decoded_images_against_the_vae_data(runs, capsys):
    assert main(["evaluate", str(runs / "ldm"), "--metrics", "fd", "--n", "64", "--json",
                 "--sample-option", "steps=5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "mnist5k" in json.dumps(report)


def test_a_vae_trained_further_is_refused(runs, tmp_path):
    import dataclasses

    from genmodels.latent_run import decode_latents
    from genmodels.run import load_run

    loaded = load_run(runs / "ldm")
    moved = loaded.spec.latent.__class__(vae_run=loaded.spec.latent.vae_run, vae_step=7, scale=1.0)
    stale = dataclasses.replace(loaded, spec=dataclasses.replace(loaded.spec, latent=moved))
    with pytest.raises(ConfigError, match="step 30"):
        decode_latents(stale)
    gone = dataclasses.replace(loaded, spec=dataclasses.replace(loaded.spec, latent=dataclasses.replace(
        moved, vae_run=str(tmp_path / "nothing"))))
    with pytest.raises(ConfigError, match="not there"):
        decode_latents(gone)
    with pytest.raises(ConfigError, match="needs a VAE run"):
        load(f"latents:{runs / 'ldm'}")
