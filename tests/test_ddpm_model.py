"""The DDPM family against the model contract, with the tests' stand-in for the trainer's context."""

import math

import pytest
import torch
from conftest import FakeContext

from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMEvaluateOptions, DDPMSampleOptions
from genmodels.models.registry import get_model
from genmodels.models.vae import VAESampleOptions

pytestmark = pytest.mark.usefixtures("one_thread")


TINY_IMAGE = dict(T=50, channels=8, channel_mults=[1, 2], attention_resolutions=[4], num_res_blocks=1)


def image_data(n=32, classes=3):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 8, 8, generator=g) * 255).round() / 127.5 - 1   # on the 8-bit grid
    return Dataset(x=x, y=torch.arange(n) % classes, name="tiny", kind="image", num_classes=classes)


def test_registry_names_the_three_classes():
    assert get_model("ddpm") == (DDPM, DDPMConfig, DDPMSampleOptions)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="model.schedule.*cosine, linear"):
        DDPMConfig(schedule="quadratic").validate()
    with pytest.raises(ConfigError, match="model.T"):
        DDPMConfig(T=1).validate()
    with pytest.raises(ConfigError, match="model.prediction.*eps, v, x0"):
        DDPMConfig(prediction="score").validate()
    with pytest.raises(ConfigError, match="class_conditional needs labelled data"):
        DDPM(DDPMConfig(class_conditional=True), DataSpec("points", (2,)))
    with pytest.raises(ConfigError, match="unet needs image data"):
        DDPM(DDPMConfig(net="unet"), DataSpec("points", (2,)))


@pytest.mark.parametrize("loss,prediction,variance", [("simple", "eps", "beta"), ("vlb", "eps", "beta_tilde"),
                                                      ("simple+vlb", "x0", "beta"), ("simple", "v", "beta_tilde")])
def test_image_training_step_sampling_and_nll(loss, prediction, variance):
    data = image_data()
    model = DDPM(DDPMConfig(loss=loss, prediction=prediction, variance=variance, **TINY_IMAGE), data.spec)
    ctx = FakeContext()
    before = [p.detach().clone() for p in model.net.parameters()]
    logs = model.train_step((data.x[:8], data.y[:8]), ctx)
    assert math.isfinite(logs["loss"]) and "l_simple" in logs
    assert ("l_vlb" in logs) == (loss != "simple")
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net.parameters(), strict=True))
    for sampler in ("ancestral", "ddim", "dpm++"):
        x = model.sample(3, DDPMSampleOptions(sampler=sampler, steps=5), generator=torch.Generator().manual_seed(1))
        assert x.shape == (3, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    nll = model.evaluate("nll", data, DDPMEvaluateOptions(num_timesteps=5, nll_estimates="bound"), n=4,
                         generator=torch.Generator().manual_seed(2))
    parts = nll["bpd_L_T"] + nll["bpd_L_1:T-1"] + nll["bpd_L_0"]
    assert nll["bpd_total"] == pytest.approx(parts) and nll["n"] == 4
    assert 0 < nll["bpd_total"] and math.isfinite(nll["bpd_total"])


def test_sampling_is_reproducible_and_options_are_checked():
    model = DDPM(DDPMConfig(**TINY_IMAGE), image_data().spec)
    a = model.sample(2, DDPMSampleOptions(sampler="ddim", steps=4, eta=1.0), generator=torch.Generator().manual_seed(3))
    b = model.sample(2, DDPMSampleOptions(sampler="ddim", steps=4, eta=1.0), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="sample.sampler.*ancestral, ddim, dpm"):
        model.sample(1, DDPMSampleOptions(sampler="euler"))
    with pytest.raises(ConfigError, match="unknown DDPM sample option"):
        model.sample(1, VAESampleOptions(temperature=0.5))   # another family's options
    with pytest.raises(ConfigError, match="class-conditional"):
        model.sample(1, DDPMSampleOptions(guidance=3.0))
    with pytest.raises(ConfigError, match="1..50"):
        model.sample(1, DDPMSampleOptions(sampler="ddim", steps=51))
    strip = model.views(torch.Generator().manual_seed(4))["denoising"]
    assert strip.shape == (80, 1, 8, 8)


def test_classifier_free_guidance():
    data = image_data()
    with torch.random.fork_rng():          # the nets' initialisation, independent of earlier tests
        torch.manual_seed(0)
        # a large learning rate so that 3 steps move the label embedding enough to change samples
        model = DDPM(DDPMConfig(class_conditional=True, p_uncond=0.5, lr=1e-2, **TINY_IMAGE), data.spec)
    ctx = FakeContext()
    for _ in range(3):
        model.train_step((data.x[:8], data.y[:8]), ctx)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    plain = model.sample(4, DDPMSampleOptions(sampler="ddim", steps=5, label=2), generator=g())
    guided = model.sample(4, DDPMSampleOptions(sampler="ddim", steps=5, label=2, guidance=3.0), generator=g())
    uncond = model.sample(4, DDPMSampleOptions(sampler="ddim", steps=5, label=2, guidance=0.0), generator=g())
    assert not torch.allclose(plain, guided) and not torch.allclose(plain, uncond)
    # guidance w = 1 is exactly the conditional model; the guided eps is eps_u + w (eps_c - eps_u)
    xt, t, y = torch.randn(4, 1, 8, 8), torch.full((4,), 30), torch.full((4,), 2)
    with torch.no_grad():
        model.net.eval()
        e_c, e_u = model.eps_fn(y, 1.0)(xt, t), model.eps_fn(y, 0.0)(xt, t)
        assert torch.allclose(model.eps_fn(y, 3.0)(xt, t), e_u + 3.0 * (e_c - e_u), atol=1e-5)
    with pytest.raises(ConfigError, match="label must be"):
        model.sample(1, DDPMSampleOptions(label=3))


def test_points_model_learns_a_two_point_mixture_and_reports_nats_per_dim():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-3.0, 10.0], [3.0, 10.0]])
    x = centres[torch.randint(0, 2, (2000,), generator=g)] + 0.3 * torch.randn(2000, 2, generator=g)
    data = Dataset(x=x, name="two", kind="points")
    with torch.random.fork_rng():   # weight init from a fixed state, whatever the tests before did
        torch.manual_seed(0)
        model = DDPM(DDPMConfig(T=100, mlp_width=64, mlp_depth=2), data.spec)
    ctx = FakeContext()
    losses = []
    for _ in range(600):
        idx = torch.randint(0, 2000, (128,), generator=g)
        losses.append(model.train_step((x[idx], torch.full((128,), -1)), ctx)["loss"])
    assert sum(losses[-50:]) / 50 < 0.75 * sum(losses[:20]) / 20
    s = model.sample(1000, generator=torch.Generator().manual_seed(1))   # Algorithm 4.2, T = 100 steps
    assert s.shape == (1000, 2)
    near = torch.cdist(s, centres).min(1)
    assert (near.values < 1.5).float().mean() > 0.9                 # samples land on the two modes
    assert 0.2 < (near.indices == 0).float().mean() < 0.8             # and use both of them
    nll = model.evaluate("nll", data, DDPMEvaluateOptions(num_timesteps=20, nll_estimates="bound"), n=64,
                         generator=torch.Generator().manual_seed(2))
    assert set(nll) >= {"nats_per_dim_total", "nats_per_dim_L_0", "n"}
    # in data coordinates the bound sits above the data entropy, log(2)/2 + log(0.3 sqrt(2 pi e)) ~ 0.56
    # nats/dim (Gibbs: E[-log p_theta] >= H), and is finite for this briefly trained model
    entropy = 0.5 * math.log(2) + math.log(0.3 * math.sqrt(2 * math.pi * math.e))
    assert entropy < nll["nats_per_dim_total"] < 10.0
    assert model.views(torch.Generator()) == {}
