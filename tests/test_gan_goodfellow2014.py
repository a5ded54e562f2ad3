"""The MNIST networks of Goodfellow et al. 2014 (arch = "goodfellow2014"): the maxout layer, the
paper's G and D, their dropout, their size, their config and a few training steps."""

import math

import pytest
import torch
from conftest import FakeContext

from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError
from genmodels.models.gan import GAN, GANConfig
from genmodels.models.gan.model import sample_z
from genmodels.nets.gan_mlp import MaxoutDiscriminator, goodfellow2014_generator
from genmodels.nets.maxout import Maxout
from genmodels.recipes import load_recipe

MNIST = DataSpec("image", (1, 28, 28), num_classes=10)


def paper(**kw):
    return GANConfig(arch="goodfellow2014", **kw)


def test_maxout_is_the_max_over_each_units_pieces():
    layer = Maxout(3, units=2, pieces=3)
    W = torch.tensor([[1., 0., 0.], [0., 1., 0.], [0., 0., 1.],          # unit 0: pieces x0, x1, x2
                      [-1., 0., 0.], [1., 1., 0.], [0., -2., 1.]])       # unit 1: -x0, x0 + x1, x2 - 2 x1
    b = torch.tensor([0., 0., 0., 0.5, 0., -1.])
    with torch.no_grad():
        layer.linear.weight.copy_(W)
        layer.linear.bias.copy_(b)
    x = torch.tensor([[1., 2., 3.], [-1., -2., 0.5], [0., 0., 0.]])
    expected = torch.tensor([[max(1., 2., 3.), max(-1 + .5, 1 + 2, 3 - 4 - 1)],
                             [max(-1., -2., .5), max(1 + .5, -1 - 2, .5 + 4 - 1)],
                             [0., max(.5, 0., -1.)]])
    assert torch.equal(layer(x), expected)
    # the gradient reaches only the winning piece of each unit
    layer(x[:1]).sum().backward()
    rows_with_grad = layer.linear.bias.grad.nonzero().flatten().tolist()
    assert rows_with_grad == [2, 4]
    with pytest.raises(ValueError, match="pieces"):
        Maxout(3, 2, 0)


def test_one_piece_is_a_linear_layer():
    layer = Maxout(4, 3, 1)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(layer(x), layer.linear(x))


def test_generator_and_discriminator_shapes_and_ranges_for_28x28():
    model = GAN(paper(), MNIST)
    assert model.arch == "goodfellow2014"
    s = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert s.shape == (7, 1, 28, 28) and s.min() >= -1 and s.max() <= 1
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    assert model.D(x).shape == (6,)
    # G's output is the paper's sigmoid mapped to [-1, 1]: 2 sigmoid(a) - 1 of its last linear layer
    z = torch.rand(4, 100) * 2 - 1
    a = model.G.net(z)
    assert torch.allclose(model.G(z).flatten(1), 2 * torch.sigmoid(a) - 1, atol=1e-6)


def test_parameter_counts_are_the_papers_architecture():
    model = GAN(paper(), MNIST)
    g = (100 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 784 + 784)          # 2 ReLU layers, sigmoid output
    d = (784 * 240 * 5 + 240 * 5) + (240 * 240 * 5 + 240 * 5) + (240 + 1)          # 2 maxout layers, one logit
    assert sum(p.numel() for p in model.G.parameters()) == g == 2_503_984
    assert sum(p.numel() for p in model.D.parameters()) == d == 1_231_441


def test_the_configurations_initialisation():
    G = goodfellow2014_generator(100, (1, 28, 28))
    D = MaxoutDiscriminator((1, 28, 28))
    for net, irange in ((G, 0.05), (D, 0.005)):
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                assert p.abs().max() <= irange and p.abs().max() > 0.9 * irange, name
            else:
                assert torch.equal(p, torch.zeros_like(p)), name


def test_dropout_acts_in_training_mode_only():
    D = MaxoutDiscriminator((1, 28, 28), input_dropout=0.2, dropout=0.5)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    drops = [m for m in D.modules() if isinstance(m, torch.nn.Dropout)]
    assert [m.p for m in drops] == [0.2, 0.5, 0.5]          # D's input, before maxout 2, before the output
    D.eval()
    assert torch.equal(D(x), D(x))
    maxout1, maxout2 = D.features[1], D.features[3]
    without_dropout = D.head(maxout2(maxout1((x.flatten(1) + 1) / 2))).squeeze(1)
    assert torch.allclose(D(x), without_dropout)            # eval mode: dropout is the identity
    D.train()
    torch.manual_seed(0)
    assert not torch.allclose(D(x), D(x))
    # in training the input layer drops about 20% of the pixels, mapped to [0, 1] first (dropped = black)
    seen = []
    drops[0].register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    D(torch.ones(64, 1, 28, 28))
    inp, out = seen[0]
    assert torch.equal(inp, torch.ones_like(inp))
    assert 0.17 < (out == 0).float().mean() < 0.23
    assert torch.allclose(out[out != 0], torch.tensor(1.25))


def test_data_kind_defaults_and_explicit_values():
    cfg = paper().for_data(MNIST)
    assert (cfg.z_dim, cfg.mlp_width, cfg.mlp_depth, cfg.d_dropout, cfg.d_input_dropout) == (100, 1200, 2, 0.5, 0.2)
    assert (cfg.maxout_units, cfg.maxout_pieces, cfg.g_batchnorm) == (240, 5, False)
    mine = paper(mlp_width=64, mlp_depth=3, d_dropout=0.0, d_input_dropout=0.1, maxout_units=8,
                 maxout_pieces=2).for_data(MNIST)
    model = GAN(mine, MNIST)
    assert model.config == mine and (mine.mlp_width, mine.d_dropout, mine.d_input_dropout) == (64, 0.0, 0.1)
    assert [m.p for m in model.D.modules() if isinstance(m, torch.nn.Dropout)] == [0.1]
    assert [(m.units, m.pieces) for m in model.D.modules() if hasattr(m, "pieces")] == [(8, 2)] * 3
    # the other architectures keep their defaults: no dropout unless asked for
    assert GANConfig().for_data(MNIST).d_dropout == 0.0 and GANConfig().for_data(MNIST).d_input_dropout == 0.0
    mlp = GAN(GANConfig(arch="mlp", mlp_width=16, d_input_dropout=0.3), MNIST)
    assert [m.p for m in mlp.D.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]


def test_uniform_sqrt3_noise_has_unit_variance():
    z = sample_z(20000, 10, "uniform-sqrt3", torch.Generator().manual_seed(0), torch.device("cpu"))
    assert z.abs().max() <= math.sqrt(3) and z.abs().max() > 1.7
    assert abs(z.var().item() - 1.0) < 0.02


@pytest.mark.parametrize("field,value,match", [("maxout_pieces", 0, "model.maxout_pieces"),
                                               ("maxout_units", 0, "model.maxout_units"),
                                               ("d_dropout", 1.0, "model.d_dropout"),
                                               ("d_input_dropout", -0.1, "model.d_input_dropout"),
                                               ("arch", "goodfellow", "goodfellow2014"),
                                               ("noise", "uniform3", "uniform-sqrt3")])
def test_bad_values_are_refused_with_the_field_named(field, value, match):
    with pytest.raises(ConfigError, match=match):
        GANConfig(**{field: value}).validate()


def test_combinations_that_do_not_apply_are_refused():
    with pytest.raises(ConfigError, match="goodfellow2014"):
        GAN(paper(), DataSpec("points", (2,)))
    with pytest.raises(ConfigError, match="g_batchnorm"):
        GAN(paper(g_batchnorm=True), MNIST)
    with pytest.raises(ConfigError, match="DCGAN discriminator has no dropout"):
        GAN(GANConfig(arch="dcgan", d_dropout=0.3), MNIST)


def test_twenty_steps_of_the_recipes_settings_give_finite_losses(one_thread):
    """The gan-goodfellow2014-mnist recipe's model (SGD, momentum, dropout, maxout) on random MNIST-shaped
    images: 20 iterations of Algorithm 2.1 run, give finite losses and move both networks."""
    recipe = load_recipe("gan-goodfellow2014-mnist").config
    assert recipe.model_name == "gan" and recipe.model.arch == "goodfellow2014" and recipe.model.optimizer == "sgd"
    torch.manual_seed(0)
    model = GAN(recipe.model, MNIST)
    assert isinstance(model.opt_D, torch.optim.SGD) and model.opt_D.param_groups[0]["momentum"] == 0.5
    assert (model.opt_G.param_groups[0]["lr"], model.opt_D.param_groups[0]["lr"]) == (0.1, 0.05)
    before = {name: p.detach().clone() for name, p in [*model.G.named_parameters(), *model.D.named_parameters()]}
    x = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ctx = FakeContext(x, torch.arange(200) % 10, batch_size=recipe.trainer.batch_size)
    for step in range(20):
        ctx.step = step
        out = model.train_step(ctx.next_batch(), ctx)
        assert set(out) == {"loss_D", "loss_G", "D_x", "D_G_z"}
        assert all(math.isfinite(v) for v in out.values()), (step, out)
    after = dict([*model.G.named_parameters(), *model.D.named_parameters()])
    assert all(not torch.equal(before[n], after[n]) for n in ("net.0.weight", "features.1.linear.weight"))
    assert torch.isfinite(model.sample(4)).all()
