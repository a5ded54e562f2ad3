"""The GAN model: Algorithm 2.1 in train_step, options, networks, sampling and views."""

import math

import pytest
import torch
from conftest import FakeContext

from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError, DataError
from genmodels.models.gan import GAN, GANConfig, GANSampleOptions
from genmodels.models.gan.losses import generator_loss
from genmodels.models.registry import get_model
from genmodels.viz import save_image


def ring8_with_labels(n, seed=0, std=0.02):
    """8 Gaussians of std `std` on a circle of radius 2 -> (points (n, 2), components (n,), modes (8, 2))."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.arange(8) * 2 * math.pi / 8
    modes = torch.stack([2 * angle.cos(), 2 * angle.sin()], 1)
    y = torch.randint(8, (n,), generator=g)
    return modes[y] + std * torch.randn(n, 2, generator=g), y, modes


def ring8(n, seed=0, std=0.02):
    """ring8_with_labels without the labels: (points (n, 2), modes (8, 2))."""
    x, _, modes = ring8_with_labels(n, seed, std)
    return x, modes


POINTS = DataSpec("points", (2,))


def small(**kw):
    """A tiny GAN with the data-independent settings these tests were written for."""
    fixed = {"g_batchnorm": False, "lr_g": 2e-4, "lr_d": 2e-4, "betas": "pytorch"} | kw
    return GANConfig(mlp_width=16, mlp_depth=2, z_dim=4, dcgan_width=8, **fixed)


def test_defaults_depend_on_the_kind_of_data_not_its_name():
    points = GANConfig().for_data(POINTS)
    assert (points.z_dim, points.g_batchnorm, points.mlp_width, points.mlp_depth) == (2, True, 400, 4)
    assert (points.lr_g, points.lr_d, points.betas) == (1e-4, 1e-4, "dcgan")
    image_spec = DataSpec(kind="image", shape=(1, 28, 28), num_classes=10)
    images = GANConfig().for_data(image_spec)
    assert (images.z_dim, images.g_batchnorm, images.mlp_width, images.mlp_depth) == (100, False, 1024, 2)
    assert (images.lr_g, images.betas) == (2e-4, "pytorch")
    # explicit values are kept, and an explicit g_batchnorm = false keeps the 3 x 256 MLPs
    mine = GANConfig(z_dim=8, g_batchnorm=False, lr_g=3e-4, betas="wgan-gp").for_data(POINTS)
    assert (mine.z_dim, mine.g_batchnorm, mine.mlp_width, mine.mlp_depth, mine.lr_g, mine.lr_d, mine.betas) == \
        (8, False, 256, 3, 3e-4, 1e-4, "wgan-gp")
    assert GAN(GANConfig(), POINTS).config == points       # the model uses (and reports) the resolved values


def test_registry_and_defaults_are_algorithm_2_1():
    Model, Config, Options = get_model("gan")
    assert (Model, Config, Options) == (GAN, GANConfig, GANSampleOptions)
    cfg = GANConfig()
    cfg.validate()
    assert cfg.k == 1 and cfg.loss == "nonsaturating"
    assert cfg.label_smoothing == 0.0 and not cfg.spectral_norm and not cfg.ema and not cfg.conditional


def test_k3_takes_three_discriminator_steps_on_three_minibatches_then_one_generator_step():
    x, _ = ring8(1000)
    model = GAN(small(k=3), POINTS)
    ctx = FakeContext(x, batch_size=32)
    seen_by_D, z_seen_by_G = [], []
    model.D.register_forward_pre_hook(lambda mod, args: seen_by_D.append(args[0].detach().clone()))
    model.G.register_forward_pre_hook(lambda mod, args: z_seen_by_G.append(args[0].detach().clone()))
    first = ctx.next_batch()
    ctx.batches_served.clear()
    out = model.train_step(first, ctx)

    assert ctx.optimized == [model.opt_D] * 3 + [model.opt_G]            # k D steps, then one G step
    assert len(ctx.batches_served) == 2                                  # steps 2 and 3 draw fresh data
    minibatches = [first[0]] + [b[0] for b in ctx.batches_served]
    for i in range(3):                                                   # D step i: D(x_i), then D(G(z_i))
        assert torch.equal(seen_by_D[2 * i], minibatches[i])
    for i in range(3):
        for j in range(i):
            assert not torch.equal(minibatches[i], minibatches[j])        # three different minibatches
    assert len(z_seen_by_G) == 4                                         # fresh noise in each of the 4 steps
    assert all(not torch.equal(z_seen_by_G[i], z_seen_by_G[j]) for i in range(4) for j in range(i))
    assert set(out) == {"loss_D", "loss_G", "D_x", "D_G_z"}
    assert all(math.isfinite(v) for v in out.values())
    assert 0 < out["D_x"] < 1 and 0 < out["D_G_z"] < 1


def test_default_step_takes_one_discriminator_and_one_generator_step_and_moves_both():
    x, _ = ring8(500)
    model = GAN(small(), POINTS)
    ctx = FakeContext(x)
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in model.modules().items()}
    model.train_step(ctx.next_batch(), ctx)
    assert ctx.optimized == [model.opt_D, model.opt_G]
    assert len(ctx.batches_served) == 1                                 # k = 1: only the given batch
    for name, net in model.modules().items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)), name


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "hinge", "wasserstein"])
def test_every_loss_trains_a_step(loss):
    x, _ = ring8(500)
    model = GAN(small(loss=loss), POINTS)
    ctx = FakeContext(x)
    out = model.train_step(ctx.next_batch(), ctx)
    assert all(math.isfinite(v) for v in out.values())
    assert ("gp" in out) == (loss == "wasserstein")


def test_minimax_generator_step_is_weaker_than_nonsaturating_when_D_rejects_samples():
    # Algorithm 2.1 with the two generator objectives: same nets, D made to reject G's samples.
    x, _ = ring8(500)
    norms = {}
    for loss in ("minimax", "nonsaturating"):
        torch.manual_seed(0)
        model = GAN(small(loss=loss, optimizer="sgd", lr_g=1e-3), POINTS)
        with torch.no_grad():
            model.D.head[0].bias.fill_(-25.0)                          # D(G(z)) ~ 1e-11
        z = model.noise(64, torch.Generator().manual_seed(0))
        loss_G = generator_loss(model.D(model.G(z)), loss)
        grads = torch.autograd.grad(loss_G, list(model.G.parameters()))
        norms[loss] = torch.cat([g.flatten() for g in grads]).norm()
    assert norms["minimax"] < 1e-6 * norms["nonsaturating"]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 28, 28), (1, 32, 32)])
def test_dcgan_is_chosen_for_28_and_32_pixel_images(shape):
    spec = DataSpec("image", shape)
    model = GAN(small(), spec)
    assert model.arch == "dcgan"
    x = torch.rand(8, *shape) * 2 - 1
    ctx = FakeContext(x, batch_size=4)
    model.train_step(ctx.next_batch(), ctx)
    s = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, *shape) and s.min() >= -1 and s.max() <= 1
    assert model.D(x).shape == (8,)


def test_mlp_for_other_images_and_forced_mlp():
    assert GAN(small(), DataSpec("image", (1, 16, 16))).arch == "mlp"
    forced = GAN(small(arch="mlp"), DataSpec("image", (1, 28, 28)))
    assert forced.arch == "mlp"
    assert forced.sample(3).shape == (3, 1, 28, 28)
    with pytest.raises(ConfigError, match="28x28 or 32x32"):
        GAN(small(arch="dcgan"), DataSpec("image", (1, 16, 16)))


def test_options_change_the_networks():
    sn = GAN(small(spectral_norm=True), DataSpec("image", (1, 28, 28)))
    assert any("parametrizations" in n for n, _ in sn.D.named_parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sn.D.modules())
    wgan = GAN(small(loss="wasserstein", k=5, betas="wgan-gp"), DataSpec("image", (1, 28, 28)))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in wgan.D.modules())   # per-example penalty
    assert wgan.opt_D.param_groups[0]["betas"] == (0.0, 0.9)
    dc = GAN(small(betas="dcgan"), POINTS)
    assert dc.opt_G.param_groups[0]["betas"] == (0.5, 0.999)
    m = GAN(small(ema=True), POINTS)
    assert list(m.ema_modules()) == ["G"] and m.ema_modules()["G"] is m.G
    assert GAN(small(), POINTS).ema_modules() == {}


def test_label_smoothing_changes_only_the_discriminator_loss():
    x, _ = ring8(500)
    outs = []
    for s in (0.0, 0.2):
        torch.manual_seed(0)
        model = GAN(small(label_smoothing=s), POINTS)
        ctx = FakeContext(x)
        outs.append(model.train_step(ctx.next_batch(), ctx))
    assert outs[0]["D_x"] == pytest.approx(outs[1]["D_x"])            # same nets, same first batch
    assert outs[0]["loss_D"] != pytest.approx(outs[1]["loss_D"])


def test_conditional_gan_uses_labels():
    spec = DataSpec("image", (1, 28, 28), num_classes=10)
    model = GAN(small(conditional=True), spec)
    x, y = torch.rand(40, 1, 28, 28) * 2 - 1, torch.arange(40) % 10
    ctx = FakeContext(x, y, batch_size=8)
    model.train_step(ctx.next_batch(), ctx)
    s = model.sample(4, GANSampleOptions(label=3), generator=torch.Generator().manual_seed(0))
    assert s.shape == (4, 1, 28, 28)
    # the label changes the sample for the same noise
    a = model.sample(4, GANSampleOptions(label=3), generator=torch.Generator().manual_seed(0))
    b = model.sample(4, GANSampleOptions(label=7), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, s) and not torch.allclose(a, b)
    with pytest.raises(DataError, match="labels"):
        model.train_step((x[:8], torch.full((8,), -1)), ctx)
    with pytest.raises(ConfigError, match="class"):
        model.sample(2, GANSampleOptions(label=10))
    with pytest.raises(ConfigError, match="labelled data"):
        GAN(small(conditional=True), POINTS)
    with pytest.raises(ConfigError, match="conditional"):
        GAN(small(), POINTS).sample(2, GANSampleOptions(label=1))


@pytest.mark.parametrize("field,value,match", [("k", 0, "model.k"), ("loss", "lsgan", "minimax"),
                                               ("label_smoothing", 1.0, "label_smoothing"),
                                               ("betas", "adamw", "dcgan")])
def test_bad_config_is_refused_with_the_field_named(field, value, match):
    with pytest.raises(ConfigError, match=match):
        GANConfig(**{field: value}).validate()
    with pytest.raises(ConfigError, match="cross-entropy"):
        GANConfig(loss="hinge", label_smoothing=0.1).validate()


def test_sampling_is_reproducible_with_an_explicit_generator():
    model = GAN(small(), POINTS)
    a = model.sample(10, generator=torch.Generator().manual_seed(5))
    b = model.sample(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (10, 2)


def test_decision_surface_view_for_2d_data(tmp_path):
    x, _ = ring8(500)
    model = GAN(small(), POINTS)
    ctx = FakeContext(x)
    model.train_step(ctx.next_batch(), ctx)
    views = model.views(torch.Generator().manual_seed(0))
    img = views["decision_surface"]
    assert img.dim() == 4 and img.shape[:2] == (1, 3) and img.shape[2] > 100
    assert img.min() >= -1 and img.max() <= 1 and img.std() > 0.1
    path = save_image(img, tmp_path / "d.png")
    from PIL import Image
    assert Image.open(path).size == (img.shape[3], img.shape[2])
    assert GAN(small(), DataSpec("image", (1, 28, 28))).views() == {}


def test_pacgan_packing_feeds_packs_to_D():
    x, _ = ring8(500)
    model = GAN(small(pack=4), POINTS)
    assert model.D.features[0][0].in_features == 8                     # 4 points of 2 coordinates
    assert model.discriminate(x[:64]).shape == (16,)
    assert model.discriminate(x[:66]).shape == (16,)                   # a ragged tail is dropped
    ctx = FakeContext(x)
    out = model.train_step(ctx.next_batch(), ctx)
    assert all(math.isfinite(v) for v in out.values())
    assert GAN(small(pack=2), DataSpec("image", (1, 28, 28))).discriminate(torch.zeros(4, 1, 28, 28)).shape == (2,)
    with pytest.raises(ConfigError, match="pack"):
        GANConfig(pack=0).validate()


def mode_coverage_after_training(model, ctx, steps, modes):
    """Run `steps` iterations of Algorithm 2.1 on ctx's minibatches, then measure mode coverage of
    2,500 samples (VEEGAN / PacGAN protocol, std 0.02)."""
    from genmodels.metrics.modes import mode_coverage

    for step in range(steps):
        ctx.step = step
        model.train_step(ctx.next_batch(), ctx)
    return mode_coverage(model.sample(2500, generator=torch.Generator().manual_seed(1)), modes, 0.02)


@pytest.mark.slow
def test_unconditional_ring8_covers_the_modes_with_high_quality_samples():
    """Acceptance: ring8 (8 Gaussians, radius 2, std 0.02), an unconditional GAN on CPU in a few
    minutes: >= 7 of 8 modes captured and most samples within 3 std of a mode. Settings (docs/gan.md):
    z in R^2, MLPs 4 x 400 with batch norm in G (the PacGAN / VEEGAN 2-D generator), Adam 1e-4 with
    DCGAN betas, batch 100, 8,000 iterations of Algorithm 2.1 with its defaults otherwise."""
    x, modes = ring8(100000)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GAN(GANConfig(z_dim=2, g_batchnorm=True, mlp_width=400, mlp_depth=4, lr_g=1e-4, lr_d=1e-4,
                              betas="dcgan"), DataSpec("points", (2,)))
    r = mode_coverage_after_training(model, FakeContext(x, batch_size=100), 8000, modes)
    print("ring8, unconditional GAN, 8,000 iterations:", r)
    assert r["modes_captured"] >= 7, r
    assert r["high_quality"] > 0.5, r


@pytest.mark.slow
def test_ring8_modes_are_covered_by_the_conditional_gan():
    """ring8 with the class-conditional GAN (labels = mixture component), Adam 1e-3 with DCGAN betas,
    batch 256, 3,000 iterations of Algorithm 2.1: >= 7 of 8 modes and most samples of high quality."""
    x, y, modes = ring8_with_labels(100000)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GAN(GANConfig(conditional=True, betas="dcgan", lr_g=1e-3, lr_d=1e-3), DataSpec("points", (2,), 8))
    r = mode_coverage_after_training(model, FakeContext(x, y, batch_size=256), 3000, modes)
    print("ring8, conditional GAN, 3,000 iterations:", r)
    assert r["modes_captured"] >= 7, r
    assert r["high_quality"] > 0.5, r


def test_train_step_runs_under_the_trainers_context():
    from genmodels.training.context import TrainContext

    x, _ = ring8(500)
    helper = FakeContext(x)
    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), precision="fp32",
                       grad_clip=1.0, next_batch=helper.next_batch)
    model = GAN(small(k=2), POINTS)
    out = model.train_step(helper.next_batch(), ctx)
    assert len(helper.batches_served) == 2 and all(math.isfinite(v) for v in out.values())


def test_decision_surface_draws_the_given_data_after_a_reload():
    """A reloaded run has seen no training points; views(data=...) draws the given ones instead."""
    from genmodels.data import load

    data = load("ring8", split="test")
    model = GAN(small(), POINTS)                      # fresh: no remembered training points
    g = lambda: torch.Generator().manual_seed(0)      # noqa: E731
    without = model.views(g())["decision_surface"]
    with_data = model.views(g(), data=data)["decision_surface"]
    assert with_data.shape == without.shape
    assert (with_data - without).abs().amax() > 0.1   # the data's points are drawn
    assert torch.equal(model.views(g(), data=data)["decision_surface"], with_data)


def test_g_batchnorm_puts_batch_norm_in_the_mlp_generator_only():
    model = GAN(GANConfig(mlp_width=16, mlp_depth=2, z_dim=2, g_batchnorm=True), POINTS)
    norms = [m for m in model.G.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2                                   # one per hidden layer of small()'s G
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.D.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in GAN(small(), POINTS).G.modules())
    x, _ = ring8(256)
    ctx = FakeContext(x)
    assert math.isfinite(model.train_step(ctx.next_batch(), ctx)["loss_G"])
    with pytest.raises(ConfigError, match="g_batchnorm applies to the MLP generator"):
        GAN(small(g_batchnorm=True, arch="dcgan"), DataSpec("image", (1, 28, 28)))
