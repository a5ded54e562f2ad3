"""The VAE model against the family contract: training on real digits improves the ELBO, the
IWAE bound lies above it, dynamic binarisation, sampling, views, the decoders and nets, errors."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FakeContext, as_floats

from genmodels.data import load
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError, DataError
from genmodels.models.registry import get_model
from genmodels.models.vae import VAE, VAEConfig, VAEEvaluateOptions, VAESampleOptions

MNIST = DataSpec("image", (1, 28, 28))


def fit(model, x, steps, batch=64, seed=0):
    ctx = FakeContext(seed=seed)
    out = {}
    for s in range(steps):
        ctx.step = s
        idx = torch.randint(0, len(x), (batch,), generator=ctx.generator)
        out = model.train_step((x[idx], torch.full((batch,), -1)), ctx)
    return out


@pytest.fixture(scope="module")
def mnist5k():
    return load("mnist5k"), load("mnist5k", split="test")


def test_registry_points_at_the_vae():
    assert get_model("vae") == (VAE, VAEConfig, VAESampleOptions)
    assert VAE.metric_names == ("elbo", "nll")


def test_short_mnist5k_training_improves_the_elbo_and_iwae_is_above_it(mnist5k):
    train, test = mnist5k
    torch.manual_seed(0)  # weight initialisation only (the trainer does this in a private RNG)
    model = VAE(VAEConfig(latent_dim=16, hidden=[200]), MNIST)
    held_out = Dataset(test.x[:300], name="mnist5k-test")
    before = model.evaluate("elbo", held_out)["elbo"]
    logs = fit(model, train.x, steps=200)
    after = model.evaluate("elbo", held_out)
    assert set(logs) == {"loss", "elbo", "rec", "kl", "beta"} and all(math.isfinite(v) for v in logs.values())
    assert after["elbo"] > before + 250, (before, after)          # about -545 -> about -160
    assert after["elbo"] == pytest.approx(after["rec"] - after["kl"], abs=1e-3)
    assert after["nelbo_bits_per_dim"] == pytest.approx(-after["elbo"] / (784 * math.log(2)))
    g = torch.Generator().manual_seed(0)
    nll = model.evaluate("nll", Dataset(test.x[:100]), VAEEvaluateOptions(chunk=64), k=200, generator=g)
    elbo_same = model.evaluate("elbo", Dataset(test.x[:100]), generator=torch.Generator().manual_seed(1))["elbo"]
    assert nll["k"] == 200 and nll["n"] == 100
    assert -nll["nll"] > elbo_same + 1.0, (nll, elbo_same)          # log p(x) >= L_200 > ELBO
    assert nll["nll_bits_per_dim"] == pytest.approx(nll["nll"] / (784 * math.log(2)))


def test_dynamic_binarisation_redraws_each_batch_and_the_test_set_once():
    model = VAE(VAEConfig(latent_dim=2, hidden=[8]), MNIST)
    x = torch.full((200, 1, 28, 28), 0.5)                          # p = 0.75
    g = torch.Generator().manual_seed(0)
    a, b = model.to_model(x, g), model.to_model(x, g)
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    assert a.mean().item() == pytest.approx(0.75, abs=0.01)
    data = Dataset(x)
    assert torch.equal(model.eval_data(data), model.eval_data(data))   # fixed by eval_seed
    static = VAE(VAEConfig(latent_dim=2, hidden=[8], binarize="static"), MNIST)
    assert torch.equal(static.to_model(x, g), torch.ones_like(x))


def test_kl_warmup_and_beta():
    model = VAE(VAEConfig(latent_dim=2, hidden=[8], beta=4.0, kl_warmup_steps=100), MNIST)
    assert [model.kl_weight(s) for s in (0, 49, 99, 500)] == pytest.approx([0.04, 2.0, 4.0, 4.0])
    ctx = FakeContext()
    ctx.step = 49
    out = as_floats(model.train_step((torch.rand(8, 1, 28, 28) * 2 - 1, torch.zeros(8)), ctx))
    assert out["beta"] == pytest.approx(2.0)
    assert out["loss"] == pytest.approx(-(out["rec"] - 2.0 * out["kl"]), rel=1e-5)


def test_sample_is_reproducible_and_in_data_space():
    model = VAE(VAEConfig(latent_dim=4, hidden=[16]), MNIST)
    s1 = model.sample(6, generator=torch.Generator().manual_seed(3))
    s2 = model.sample(6, generator=torch.Generator().manual_seed(3))
    assert s1.shape == (6, 1, 28, 28) and torch.equal(s1, s2) and s1.abs().max() <= 1
    drawn = model.sample(6, VAESampleOptions(mean=False), generator=torch.Generator().manual_seed(3))
    assert set(drawn.unique().tolist()) <= {-1.0, 1.0}


def test_views_include_the_latent_map_for_a_2d_latent():
    model = VAE(VAEConfig(latent_dim=2, hidden=[16]), MNIST)
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    views = model.views(torch.Generator().manual_seed(0), data=Dataset(x))
    assert set(views) == {"samples", "reconstructions", "interpolations", "latent_map"}
    assert views["reconstructions"].shape == (1, 1, 2 + 2 * 30, 2 + 8 * 30)        # inputs above, reconstructions below
    assert views["interpolations"].shape == (1, 1, 2 + 8 * 30, 2 + 10 * 30)        # 8 pairs x 10 steps
    assert views["latent_map"].shape == (1, 1, 2 + 20 * 30, 2 + 20 * 30)
    assert all(v.min() >= -1 and v.max() <= 1 for v in views.values())
    assert "latent_map" not in VAE(VAEConfig(latent_dim=3, hidden=[16]), MNIST).views()   # no images seen yet
    model.train_step((x, torch.zeros(16)), FakeContext())
    assert "reconstructions" in model.views()                                        # the last training batch


@pytest.mark.parametrize("net,shape,decoder", [
    *[("mlp", (3, 8, 8), d) for d in ("bernoulli", "gaussian", "gaussian_learned", "discretized_logistic",
                                      "discretized_gaussian")],
    ("conv", (1, 28, 28), "bernoulli"), ("conv", (3, 32, 32), "discretized_logistic")])
def test_every_decoder_and_net_trains_and_samples(net, shape, decoder):
    torch.manual_seed(0)
    cfg = VAEConfig(latent_dim=3, net=net, hidden=[32], channels=4, conv_hidden=16, decoder=decoder)
    model = VAE(cfg, DataSpec("image", shape))
    x = (torch.randint(0, 256, (8, *shape)).float() / 127.5 - 1)
    first = fit(model, x, steps=1, batch=8)
    last = fit(model, x, steps=15, batch=8)
    assert math.isfinite(last["loss"]) and last["loss"] < first["loss"]
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, *shape)
    assert math.isfinite(model.evaluate("nll", Dataset(x), k=4)["nll"])


def test_gaussian_decoder_on_points():
    model = VAE(VAEConfig(latent_dim=2, hidden=[16], decoder="gaussian_learned"), DataSpec("points", (2,)))
    x = torch.randn(64, 2)
    fit(model, x, steps=5, batch=16)
    assert model.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 2)
    assert model.views() == {}


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="model.decoder.*bernoulli"):
        VAE(VAEConfig(decoder="poisson"), MNIST)
    with pytest.raises(ConfigError, match="needs image data"):
        VAE(VAEConfig(), DataSpec("points", (2,)))
    with pytest.raises(ConfigError, match="conv.*divisible by 4"):
        VAE(VAEConfig(net="conv"), DataSpec("image", (1, 30, 30)))
    with pytest.raises(ConfigError, match="model.hidden"):
        VAE(VAEConfig(hidden=[]), MNIST)
    model = VAE(VAEConfig(latent_dim=2, hidden=[8]), MNIST)
    with pytest.raises(ConfigError, match="unknown VAE metric 'fid'"):
        model.evaluate("fid", Dataset(torch.zeros(2, 1, 28, 28)))
    with pytest.raises(DataError, match="shape"):
        model.evaluate("elbo", Dataset(torch.zeros(2, 1, 8, 8)))


@pytest.mark.slow
def test_full_mnist_short_run_reaches_a_sensible_iwae_nll(tmp_path):
    """A 10-epoch version of the docs/vae.md quality run through the real trainer: Burda et al.'s
    784-500-500-50 VAE, dynamic binarisation, Adam 1e-3, batch 100; IWAE K = 5000 on the first
    200 test digits (binarised once). About 5-10 minutes on 2 CPU cores."""
    from genmodels.config import RunConfig
    from genmodels.run import build_model
    from genmodels.training import Trainer

    train, test = load("mnist"), load("mnist", split="test")
    config = RunConfig.default("vae").with_overrides(
        ["data.name=mnist", f"out={tmp_path / 'run'}", "trainer.epochs=10", "trainer.batch_size=100",
         "trainer.progress=false", "trainer.sample_every=0", "trainer.device=cpu"])
    model = build_model(config, train.spec, torch.device("cpu"))
    Trainer(config).fit(model, train)
    subset = Dataset(test.x[:200], name="mnist-test")
    elbo = model.evaluate("elbo", subset)["elbo"]
    nll = model.evaluate("nll", subset, k=5000, generator=torch.Generator().manual_seed(0))["nll"]
    assert nll < -elbo < 105, (nll, elbo)
    assert nll < 98, nll   # 10 epochs; the 70-epoch run of docs/vae.md reaches the figure given there
