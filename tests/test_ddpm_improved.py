"""The DDPM family with Nichol & Dhariwal's improvements: learned variances (learn_sigma) trained by
L_hybrid, importance-sampled t (its history saved so that a resumed run is bit-identical), the
three likelihood estimates of evaluate("nll"), and old run directories whose loss was the
fixed-variance "hybrid" (now "simple+vlb")."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import FakeContext, as_floats

from genmodels.cli import main
from genmodels.config import load_toml
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMEvaluateOptions, DDPMSampleOptions
from genmodels.run import load_run
from genmodels.run.checkpoint import check_model, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_IMAGE = dict(T=20, channels=8, channel_mults=[1, 2], attention_resolutions=[4], num_res_blocks=1)
TINY_POINTS = dict(T=10, mlp_width=32, mlp_depth=1, mlp_octaves=0)


def image_data(n=16):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 8, 8, generator=g) * 255).round() / 127.5 - 1
    return Dataset(x=x, y=torch.arange(n) % 2, name="tiny", kind="image", num_classes=2)


def points_data(n=256):
    g = torch.Generator().manual_seed(0)
    return Dataset(x=torch.randn(n, 2, generator=g) * torch.tensor([2.0, 0.5]) + 3.0, name="blob", kind="points")


def build(config: DDPMConfig, spec):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return DDPM(config, spec)


def test_config_names_the_paper_meaning_of_each_loss():
    with pytest.raises(ConfigError, match="model.loss = hybrid.*learn_sigma = true.*simple\\+vlb"):
        DDPMConfig(loss="hybrid").validate()
    with pytest.raises(ConfigError, match="learn_sigma with model.loss = simple"):
        DDPMConfig(learn_sigma=True).validate()
    with pytest.raises(ConfigError, match="t_sampler = importance.*vlb"):
        DDPMConfig(t_sampler="importance").validate()
    with pytest.raises(ConfigError, match="model.t_sampler.*importance, uniform"):
        DDPMConfig(t_sampler="loss-aware").validate()
    for ok in (dict(learn_sigma=True, loss="hybrid"), dict(learn_sigma=True, loss="vlb", t_sampler="importance"),
               dict(loss="simple+vlb"), dict(loss="vlb")):
        DDPMConfig(**ok).validate()


@pytest.mark.parametrize("data", ["image", "points"])
def test_learned_sigma_model_trains_with_l_hybrid_and_samples_with_every_sampler(data):
    data = image_data() if data == "image" else points_data()
    tiny = TINY_IMAGE if data.kind == "image" else TINY_POINTS
    model = build(DDPMConfig(learn_sigma=True, loss="hybrid", snr_gamma=0.0, **tiny), data.spec)
    xt = torch.randn(3, *data.spec.shape)
    t = torch.tensor([1, 5, 9])
    raw = model.net(xt, t.float())
    assert raw.shape == (3, 2 * data.spec.shape[0], *data.spec.shape[1:])    # prediction and v (eq. 15)
    eps, v = model.eps_fn()(xt, t)
    assert eps.shape == v.shape == xt.shape
    ctx = FakeContext()
    before = [p.detach().clone() for p in model.net.parameters()]
    logs = as_floats(model.train_step((data.x[:8], torch.full((8,), -1)), ctx))
    assert set(logs) == {"loss", "l_simple", "l_vlb"} and all(math.isfinite(x) for x in logs.values())
    assert logs["loss"] == pytest.approx(logs["l_simple"] + 1e-3 * logs["l_vlb"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net.parameters(), strict=True))
    for sampler in ("ancestral", "ddim", "dpm++", "heun", "euler-ancestral"):
        x = model.sample(3, DDPMSampleOptions(sampler=sampler, steps=4), generator=torch.Generator().manual_seed(1))
        assert x.shape == (3, *data.spec.shape) and torch.isfinite(x).all(), sampler


def test_ancestral_sampling_and_the_bound_follow_the_network_v():
    """Scaling v's output changes ancestral samples and the bound, but not DDIM (which has no variance)."""
    data = points_data()
    model = build(DDPMConfig(learn_sigma=True, loss="hybrid", **TINY_POINTS), data.spec)
    model.standardiser.fit(data.x)
    with torch.no_grad():
        model.net.out[-1].weight[2:].zero_()
        model.net.out[-1].bias[2:].fill_(0.0)           # v = 0: Sigma = beta~_t
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    anc0 = model.sample(64, DDPMSampleOptions(sampler="ancestral"), generator=g())
    ddim0 = model.sample(64, DDPMSampleOptions(sampler="ddim", steps=5), generator=g())
    nll0 = model.evaluate("nll", data, DDPMEvaluateOptions(nll_estimates="bound"), n=64,
                          generator=g())["nats_per_dim_total"]
    with torch.no_grad():
        model.net.out[-1].bias[2:].fill_(1.0)           # v = 1: Sigma = beta_t
    assert not torch.equal(anc0, model.sample(64, DDPMSampleOptions(sampler="ancestral"), generator=g()))
    assert torch.equal(ddim0, model.sample(64, DDPMSampleOptions(sampler="ddim", steps=5), generator=g()))
    assert nll0 != model.evaluate("nll", data, DDPMEvaluateOptions(nll_estimates="bound"), n=64,
                                  generator=g())["nats_per_dim_total"]


def test_points_model_reports_the_three_likelihood_estimates():
    data = points_data()
    model = build(DDPMConfig(learn_sigma=True, loss="hybrid", **TINY_POINTS), data.spec)
    ctx = FakeContext()
    for _ in range(3):
        model.train_step((data.x[:64], torch.full((64,), -1)), ctx)
    out = model.evaluate("nll", data, n=32, batch_size=32, k=8, generator=torch.Generator().manual_seed(4))
    assert {"nats_per_dim_total", "nats_per_dim_is", "nats_per_dim_ode", "is_k", "ode_nfe", "n"} <= set(out)
    assert all(math.isfinite(v) for v in out.values()) and out["is_k"] == 8 and out["ode_nfe"] > 10
    with pytest.raises(ConfigError, match="likelihood estimate.*bound, is, ode"):
        model.evaluate("nll", data, DDPMEvaluateOptions(nll_estimates="bound,elbo"), n=4)
    # each estimate is computed on its own: asking for the others does not change the bound
    alone = model.evaluate("nll", data, DDPMEvaluateOptions(nll_estimates="bound"), n=32, batch_size=32,
                           generator=torch.Generator().manual_seed(4))
    assert alone["nats_per_dim_total"] == out["nats_per_dim_total"]


def test_importance_sampler_history_fills_from_the_l_vlb_terms_and_changes_the_draws():
    data = points_data()
    model = build(DDPMConfig(loss="vlb", t_sampler="importance", **TINY_POINTS), data.spec)
    assert set(model.modules()) == {"denoiser", "standardiser", "t_sampler"}
    assert set(build(DDPMConfig(**TINY_POINTS), data.spec).modules()) == {"denoiser", "standardiser"}
    ctx = FakeContext()
    for _ in range(6):                                            # 6 x 64 draws fill 10 values for each of 10 steps
        model.train_step((data.x[:64], torch.full((64,), -1)), ctx)
    assert int(model.t_sampler.counts.min()) >= 10 and int(model.t_sampler.counts.sum()) == 6 * 64
    p = model.t_sampler.probabilities()
    assert float(p.max() / p.min()) > 2 and float(p.sum()) == pytest.approx(1.0)


def _checkpoint_state(model: DDPM, ctx: FakeContext) -> dict:
    return {"modules": {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in model.modules().items()},
            "opt": model.opt.state_dict(), "rng": ctx.generator.get_state()}


def test_resume_with_the_importance_history_is_bit_identical_and_without_it_is_not():
    data = points_data()
    cfg = dict(loss="vlb", t_sampler="importance", learn_sigma=True, **TINY_POINTS)
    batches = [(data.x[i * 32:(i + 1) * 32], torch.full((32,), -1)) for i in range(8)]

    straight, ctx = build(DDPMConfig(**cfg), data.spec), FakeContext()
    for b in batches:
        straight.train_step(b, ctx)

    first, ctx1 = build(DDPMConfig(**cfg), data.spec), FakeContext()
    for b in batches[:5]:
        first.train_step(b, ctx1)
    saved = _checkpoint_state(first, ctx1)

    def resumed(with_history: bool) -> DDPM:
        model, ctx2 = build(DDPMConfig(**cfg), data.spec), FakeContext()
        for name, module in model.modules().items():
            if name != "t_sampler" or with_history:
                module.load_state_dict(saved["modules"][name])
        model.opt.load_state_dict(saved["opt"])
        ctx2.generator.set_state(saved["rng"])
        for b in batches[5:]:
            model.train_step(b, ctx2)
        return model

    again = resumed(True)
    for name, module in straight.modules().items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, again.modules()[name].state_dict()[key]), (name, key)
    lost = resumed(False)                                         # a fresh history draws other steps
    assert not torch.equal(lost.t_sampler.history, straight.t_sampler.history)


TRAIN = ["--data", "ring8", "--T", "10", "--mlp-width", "16", "--mlp-depth", "1", "--batch-size", "32",
         "--device", "cpu", "--precision", "fp32", "--no-progress", "--set", "trainer.sample_every=0",
         "--set", "trainer.report=false", "--set", "trainer.log_every=1", "--set", "trainer.tensorboard=false"]


def test_resumed_training_with_importance_sampling_matches_an_uninterrupted_run(tmp_path):
    extra = ["--loss", "vlb", "--t-sampler", "importance", "--learn-sigma"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["train", "ddpm", *TRAIN, *extra, "--steps", "6", "--out", str(whole)]) == 0
    assert main(["train", "ddpm", *TRAIN, *extra, "--steps", "3", "--out", str(split)]) == 0
    assert main(["train", "ddpm", *TRAIN, *extra, "--steps", "6", "--out", str(split), "--resume"]) == 0
    a, b = load_checkpoint(whole / "checkpoints" / "latest.pt"), load_checkpoint(split / "checkpoints" / "latest.pt")
    assert int(a["modules"]["t_sampler"]["counts"].min()) >= 10             # history full: p in use
    for name in a["modules"]:
        for key, value in a["modules"][name].items():
            assert torch.equal(value, b["modules"][name][key]), (name, key)


def test_an_old_run_with_the_fixed_variance_hybrid_loads_as_simple_plus_vlb(tmp_path, capsys):
    run = tmp_path / "old"
    assert main(["train", "ddpm", *TRAIN, "--loss", "simple+vlb", "--steps", "2", "--out", str(run)]) == 0
    # rewrite the run as a version before learned variances wrote it: loss = "hybrid", no new fields
    lines = (run / "config.toml").read_text().splitlines()
    old = [line.replace('"simple+vlb"', '"hybrid"') for line in lines
           if not line.startswith(("learn_sigma", "t_sampler"))]
    (run / "config.toml").write_text("\n".join(old) + "\n")
    path = run / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(path)
    ckpt["model_config"] = {k: v for k, v in ckpt["model_config"].items() if k not in ("learn_sigma", "t_sampler")}
    ckpt["model_config"]["loss"] = "hybrid"
    torch.save(ckpt, path)

    with pytest.warns(UserWarning, match="read as 'simple\\+vlb'"):
        loaded = load_run(run)
    assert loaded.config.model.loss == "simple+vlb" and loaded.step == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["sample", str(run), "--n", "4", "--sampler", "heun", "--steps", "3",
                     "--out", str(tmp_path / "s.npy")]) == 0
        assert main(["train", "ddpm", *TRAIN, "--loss", "simple+vlb", "--steps", "3", "--out", str(run),
                     "--resume"]) == 0
    assert load_checkpoint(path)["model_config"]["loss"] == "simple+vlb"          # now written in today's names
    # a checkpoint with the old name is compared in today's names
    config, _ = load_toml(run / "config.toml")
    check_model({"model_name": "ddpm", "model_config": {**ckpt["model_config"]}}, "ddpm",
                {**ckpt["model_config"], "loss": "simple+vlb", "learn_sigma": False, "t_sampler": "uniform"},
                defaults={"learn_sigma": False, "t_sampler": "uniform"})
    assert config.model.loss == "simple+vlb"
    # but a new config that asks for "hybrid" without learn_sigma is refused, naming why
    capsys.readouterr()
    assert main(["train", "ddpm", *TRAIN, "--loss", "hybrid", "--steps", "1", "--out", str(tmp_path / "new")]) != 0
    assert "L_hybrid" in capsys.readouterr().err and not (tmp_path / "new" / "checkpoints").exists()

