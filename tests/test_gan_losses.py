"""GAN objectives on logits: values (seed eq. 2.1-2.3, Remark 1), stability, gradients."""


import pytest
import torch

from genmodels.errors import ConfigError
from genmodels.models.gan.losses import LOSS_KINDS, discriminator_loss, generator_loss, gradient_penalty


def test_discriminator_loss_is_minus_V_of_eq_2_1():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    D_x, D_G_z = torch.sigmoid(real), torch.sigmoid(fake)
    V = torch.log(D_x).mean() + torch.log(1 - D_G_z).mean()          # seed eq. 2.1 on a minibatch
    for kind in ("minimax", "nonsaturating"):
        assert float(discriminator_loss(real, fake, kind)) == pytest.approx(-float(V), rel=1e-12)


def test_generator_losses_are_eq_2_3_and_remark_1():
    fake = torch.linspace(-4, 4, 9, dtype=torch.float64)
    D_G_z = torch.sigmoid(fake)
    assert float(generator_loss(fake, "minimax")) == pytest.approx(float(torch.log(1 - D_G_z).mean()), rel=1e-12)
    assert float(generator_loss(fake, "nonsaturating")) == pytest.approx(float(-torch.log(D_G_z).mean()), rel=1e-12)


def test_one_sided_label_smoothing_only_moves_the_real_target():
    real, fake = torch.tensor([0.3, -1.2], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64)
    s = 0.1
    p, q = torch.sigmoid(real), torch.sigmoid(fake)
    expected = (-(1 - s) * p.log() - s * (1 - p).log()).mean() - (1 - q).log().mean()
    assert float(discriminator_loss(real, fake, "nonsaturating", label_smoothing=s)) == pytest.approx(float(expected))


def test_losses_are_finite_and_exact_at_extreme_logits():
    big = torch.tensor([200.0, -200.0])                  # float32: sigmoid saturates to exactly 0 / 1
    for kind in ("minimax", "nonsaturating"):
        assert torch.isfinite(discriminator_loss(big, big, kind))
    # -log D(G(z)) at l = -200 is 200 (log(sigmoid(-200)) in two steps would give inf)
    assert float(generator_loss(torch.tensor([-200.0]), "nonsaturating")) == pytest.approx(200.0)
    assert float(generator_loss(torch.tensor([200.0]), "minimax")) == pytest.approx(-200.0)


def test_minimax_gradient_vanishes_where_nonsaturating_does_not():
    # D(G(z)) close to 0 (D confidently rejects the samples, as early in training): the logit is -10.
    for logit in (-10.0, -20.0):
        l_mm = torch.full((4,), logit, requires_grad=True)
        l_ns = torch.full((4,), logit, requires_grad=True)
        generator_loss(l_mm, "minimax").backward()
        generator_loss(l_ns, "nonsaturating").backward()
        # d/dl log(1 - sigmoid(l)) = -sigmoid(l) ~ 0;  d/dl -log sigmoid(l) = sigmoid(l) - 1 ~ -1 (per example, / m)
        assert l_mm.grad.abs().max() < 1e-4 / 4
        assert l_ns.grad.abs().min() > 0.99 / 4
        # both push the logit up (decreasing the loss means raising D(G(z)))
        assert (l_mm.grad < 0).all() and (l_ns.grad < 0).all()


def test_the_vanishing_gradient_reaches_the_generator_parameters():
    # A tiny G and a D that rejects G's outputs: the minimax G gradient is ~sigmoid(l) times the
    # nonsaturating one.
    g = torch.Generator().manual_seed(3)
    G = torch.nn.Linear(2, 2)
    with torch.no_grad():
        G.weight.copy_(torch.randn(2, 2, generator=g))
        G.bias.zero_()
    w_D, b_D = torch.tensor([1.0, 1.0]), -30.0
    z = torch.randn(64, 2, generator=g)
    grads = {}
    for kind in ("minimax", "nonsaturating"):
        G.zero_grad()
        logits = G(z) @ w_D + b_D
        assert torch.sigmoid(logits).max() < 1e-6        # D(G(z)) close to 0
        generator_loss(logits, kind).backward()
        grads[kind] = torch.cat([G.weight.grad.flatten(), G.bias.grad]).norm()
    assert grads["minimax"] < 1e-6 * grads["nonsaturating"]
    assert grads["nonsaturating"] > 0.5


def test_hinge_and_wasserstein_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    assert float(discriminator_loss(real, fake, "hinge")) == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert float(discriminator_loss(real, fake, "wasserstein")) == pytest.approx(-1.5 - 1.25)
    for kind in ("hinge", "wasserstein"):
        assert float(generator_loss(fake, kind)) == pytest.approx(1.5)


def test_gradient_penalty_of_a_linear_critic_is_exact():
    # l(x) = w . x has gradient w everywhere: penalty (||w|| - 1)^2, zero when ||w|| = 1.
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, 3, 4, 4, generator=g), torch.randn(16, 3, 4, 4, generator=g)
    w = torch.randn(3 * 4 * 4, generator=g, requires_grad=True)
    gp = gradient_penalty(lambda x: x.flatten(1) @ w, real, fake, generator=g)
    assert float(gp.detach()) == pytest.approx((float(w.detach().norm()) - 1) ** 2, rel=1e-5)
    gp.backward()                                        # differentiable in the critic's parameters
    assert w.grad is not None and torch.isfinite(w.grad).all()
    unit = (w / w.norm()).detach()
    gp_unit = gradient_penalty(lambda x: x.flatten(1) @ unit, real, fake, generator=g)
    assert float(gp_unit) == pytest.approx(0, abs=1e-10)


def test_unknown_kind_lists_the_choices():
    with pytest.raises(ConfigError, match="minimax, nonsaturating, wasserstein"):
        generator_loss(torch.zeros(2), "least-squares")
    with pytest.raises(ConfigError, match="hinge"):
        discriminator_loss(torch.zeros(2), torch.zeros(2), "bce")
    assert set(LOSS_KINDS) == {"minimax", "nonsaturating", "hinge", "wasserstein"}
