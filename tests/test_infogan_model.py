"""The InfoGAN model: the L_I term reaches G and Q, sampling and traversals, code-accuracy, and a
short mnist5k run that raises L_I towards H(c)."""

import math

import pytest
import torch

from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError, DataError
from genmodels.models.infogan import InfoGAN, InfoGANConfig, InfoGANSampleOptions
from genmodels.models.infogan.codes import CodeSpec, sample_codes
from genmodels.models.infogan.traversal import traversal_codes
from genmodels.training.context import TrainContext

IMAGES = DataSpec(kind="image", shape=(1, 28, 28), num_classes=10)
SMALL = dict(width=8, hidden=64, q_hidden=16)          # the paper's layout, narrower, for speed


pytestmark = pytest.mark.usefixtures("one_thread")


def make_ctx(data: Dataset, batch: int = 32, seed: int = 0, precision: str = "fp32") -> TrainContext:
    """The trainer's own StepContext over random minibatches of `data`."""
    data_gen = torch.Generator().manual_seed(seed + 1)

    def next_batch():
        i = torch.randint(len(data), (batch,), generator=data_gen)
        return data.x[i], data.y[i]

    return TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed), precision=precision,
                        grad_clip=0.0, next_batch=next_batch)


def random_images(n: int = 64, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset(x=torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, y=torch.randint(10, (n,), generator=g),
                   name="noise", num_classes=10)


def model(seed: int = 0, **overrides) -> InfoGAN:
    torch.manual_seed(seed)   # the nets' initialisation (tests only; the library never seeds globally)
    return InfoGAN(InfoGANConfig(**{**SMALL, **overrides}), IMAGES)


def test_defaults_are_the_papers_mnist_setup():
    cfg = InfoGANConfig()
    assert (cfg.categorical, cfg.continuous, cfg.z_dim) == ([10], 2, 62)
    assert (cfg.lambda_cat, cfg.lambda_cont, cfg.lr_d, cfg.lr_g) == (1.0, 1.0, 2e-4, 1e-3)
    assert (cfg.width, cfg.hidden, cfg.q_hidden) == (64, 1024, 128)
    m = model()                                      # the same codes and layout, narrower
    assert m.arch == "conv"
    assert m.G.fc[0].in_features == 62 + 10 + 2
    assert m.Q.net[-1].out_features == 12            # 10 logits + 2 Gaussian means


def test_mi_term_reaches_G_and_Q():
    m = model()
    _, terms, _ = m.fake_terms(16, torch.Generator().manual_seed(0))
    loss = m.info_loss(terms)                        # -lambda L_I alone
    named = {f"{net}.{n}": p for net, mod in (("G", m.G), ("Q", m.Q), ("D", m.D))
             for n, p in mod.named_parameters()}
    grads = dict(zip(named, torch.autograd.grad(loss, list(named.values()), allow_unused=True), strict=True))
    for prefix in ("G.", "Q.", "D.body."):
        norms = [g.norm().item() for n, g in grads.items() if n.startswith(prefix) and g is not None]
        assert norms and sum(norms) > 0, prefix
    assert grads["D.head.weight"] is None            # D's real/fake head plays no part in L_I


def test_train_step_uses_the_mi_term_in_both_players_steps():
    """With lambda = 0, Q's head gets no update and G's update differs from the lambda > 0 one:
    the detached-sample and Q-only-optimiser mistakes would both fail this."""
    data = random_images()
    after = {}
    for lam in (0.0, 1.0):
        m = model(lambda_cat=lam, lambda_cont=lam)
        q0 = [p.detach().clone() for p in m.Q.parameters()]
        m.train_step(make_ctx(data).next_batch(), make_ctx(data))
        q_moved = any(not torch.equal(a, b) for a, b in zip(q0, m.Q.parameters(), strict=True))
        after[lam] = (q_moved, [p.detach().clone() for p in m.G.parameters()])
    assert after[0.0][0] is False and after[1.0][0] is True
    assert any(not torch.allclose(a, b) for a, b in zip(after[0.0][1], after[1.0][1], strict=True))


def test_train_step_logs_L_I_H_and_code_accuracy():
    m = model()
    data = random_images()
    ctx = make_ctx(data)
    out = m.train_step(ctx.next_batch(), ctx)
    assert {"loss_D", "loss_G", "D_x", "D_G_z", "L_I", "L_I_cat0", "L_I_cont0", "L_I_cont1", "code_acc"} <= out.keys()
    assert out["H_cat0"] == pytest.approx(math.log(10))
    assert out["L_I_cat0"] <= out["H_cat0"]
    assert 0.0 <= out["code_acc"] <= 1.0
    assert all(math.isfinite(v) for v in out.values())
    unlabelled = Dataset(x=data.x, y=None, name="noise")
    m2 = model()
    out2 = m2.train_step((unlabelled.x[:32], torch.full((32,), -1)), make_ctx(data))
    assert "code_acc" not in out2


def test_train_step_under_cpu_bf16_autocast():
    """--precision bf16: D's features come out of autocast in bf16; the step (and its logged code
    accuracy, which runs Q on them) must still work, with k > 1 through the shared D step."""
    m = model(k=2)
    ctx = make_ctx(random_images(), precision="bf16")
    out = m.train_step(ctx.next_batch(), ctx)
    assert {"loss_D", "loss_G", "L_I_cat0", "code_acc"} <= out.keys()
    assert all(math.isfinite(v) for v in out.values())


def test_sample_and_code_value():
    m = model()
    x = m.sample(12, generator=torch.Generator().manual_seed(0))
    assert x.shape == (12, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    same = m.sample(12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, same)
    assert m.sample(4, InfoGANSampleOptions(code_value=3), generator=torch.Generator().manual_seed(0)).shape == (4, 1,
                    28, 28)
    with pytest.raises(ConfigError, match="0..9"):
        m.sample(4, InfoGANSampleOptions(code_value=10))


def test_traversal_codes_are_row_major():
    spec = CodeSpec(categorical=(10, 3), continuous=2)
    base = sample_codes(spec, 1, torch.Generator().manual_seed(0))
    c = traversal_codes(spec, base, cont_index=1, cat_index=0, steps=5, limit=2.0)
    assert len(c) == 50
    assert torch.equal(c.cat[0], torch.arange(10).repeat_interleave(5))      # rows: the categorical values
    assert torch.equal(c.cat[1], base.cat[1].expand(50))                        # other codes fixed
    assert torch.allclose(c.cont[:, 1], torch.linspace(-2, 2, 5).repeat(10))   # columns: -2 .. 2
    assert torch.equal(c.cont[:, 0], torch.zeros(50))
    with pytest.raises(ConfigError, match="traverse_code=2"):
        traversal_codes(spec, base, cont_index=2)


def test_sample_traverse_returns_the_grid_images():
    m = model()
    opts = InfoGANSampleOptions(traverse=True, traverse_steps=5)
    x = m.sample(50, opts, generator=torch.Generator().manual_seed(1))
    assert x.shape == (50, 1, 28, 28)
    # row-major grid with one z: the same images as G on the traversal codes
    g = torch.Generator().manual_seed(1)
    base = sample_codes(m.codes, 1, g)
    z = m.noise(1, g).expand(50, -1)
    m.G.eval()
    expected = m.generate(z, traversal_codes(m.codes, base, steps=5))
    assert torch.allclose(x, expected, atol=1e-6)
    assert m.sample(75, opts, generator=torch.Generator().manual_seed(1)).shape == (75, 1, 28, 28)
    assert m.sample_nrow(opts) == 5 and m.sample_nrow() is None
    views = m.views(torch.Generator().manual_seed(0))
    assert set(views) == {"traversal_cont0", "traversal_cont1"}
    assert views["traversal_cont0"].shape == (1, 1, 2 + 10 * 30, 2 + 10 * 30)


def test_code_accuracy_metric():
    m = model()
    data = random_images(40)
    out = m.evaluate("code-accuracy", data)
    assert 0.0 < out["code-accuracy"] <= 1.0 and out["n"] == 40
    pred = m.predict_codes(data.x)
    assert pred.shape == (40,) and pred.dtype == torch.int64
    with pytest.raises(ConfigError, match="code-accuracy"):
        m.evaluate("fid", data)
    with pytest.raises(DataError, match="needs labels"):
        m.evaluate("code-accuracy", Dataset(x=data.x, y=None, name="unlabelled"))


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="model.categorical"):
        InfoGANConfig(categorical=[1]).validate()
    with pytest.raises(ConfigError, match="at least one code"):
        InfoGANConfig(categorical=[], continuous=0).validate()
    with pytest.raises(ConfigError, match="model.loss"):
        InfoGANConfig(loss="wasserstein").validate()
    with pytest.raises(ConfigError, match="arch='conv'"):
        InfoGAN(InfoGANConfig(arch="conv"), DataSpec(kind="points", shape=(2,)))


def test_points_use_mlp_nets_and_learned_variance():
    m = InfoGAN(InfoGANConfig(categorical=[3], continuous=1, z_dim=2, learn_var=True, mlp_width=16),
                DataSpec(kind="points", shape=(2,)))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    ctx = make_ctx(Dataset(x=x, y=torch.full((64,), -1), kind="points", name="pts"))
    out = m.train_step((x[:32], torch.full((32,), -1)), ctx)
    assert m.arch == "mlp" and math.isfinite(out["L_I"])
    assert m.sample(5, generator=g).shape == (5, 2)
    assert m.views(g) == {}


def test_short_mnist5k_training_raises_L_I_towards_H():
    """100 steps on mnist5k (batch 32, narrow nets): L_I of the categorical code climbs from about 0
    (Q knows nothing) to over half its maximum H(c) = log 10, and never exceeds it."""
    from genmodels.data.load import load

    data = load("mnist5k")
    m = model(width=16, hidden=256, q_hidden=32)
    ctx = make_ctx(data, batch=32)
    L_I, H = [], math.log(10)
    for step in range(100):
        ctx.step = step
        out = m.train_step(ctx.next_batch(), ctx)
        L_I.append(out["L_I_cat0"])
    first, last = sum(L_I[:10]) / 10, sum(L_I[-10:]) / 10
    assert max(L_I) <= H
    assert last >= 0.5 * H and last >= first + 0.8, (first, last)
