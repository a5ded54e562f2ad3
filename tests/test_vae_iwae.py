"""IWAE training (Burda et al. 2015, "Importance Weighted Autoencoders"): the objective L_k of eq. 8 as
a VAE training loss (`objective = "iwae"`, `k`), the k-sample ELBO (`objective = "elbo"`, k > 1),
and their agreement with the IWAE evaluation bound, which shares the log-weight computation."""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import pytest
import torch
from conftest import FakeContext, as_floats
from test_vae_elbo import linear_gaussian

from genmodels.data.dataset import DataSpec
from genmodels.errors import ConfigError
from genmodels.models.vae import VAE, VAEConfig
from genmodels.models.vae.elbo import elbo, iwae, iwae_bound

SMALL = DataSpec("image", (1, 8, 8))


def small_vae(seed: int = 0, **overrides) -> VAE:
    """A 64-4 VAE with one hidden layer of 32, weights drawn from a private copy of the global RNG."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return VAE(VAEConfig(latent_dim=4, hidden=[32], **overrides), SMALL)


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, 8, 8) pixels in {0, 1}: what the Bernoulli decoder models."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 8, 8, generator=g) < 0.3).float()


def manual_log_weights(model: VAE, x01: torch.Tensor, generator: torch.Generator, k: int) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) with torch.distributions, z = mu + sigma eps drawn as (k, N, L)."""
    mu, logvar = model.encoder(x01)
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn((k, *mu.shape), generator=generator)
    logits = model.decoder(z.reshape(-1, mu.shape[1])).reshape(k, *x01.shape)
    log_px_z = torch.distributions.Bernoulli(logits=logits).log_prob(x01.expand_as(logits)).flatten(2).sum(-1)
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    return log_px_z + log_pz - log_qz                                   # (k, N)


def same_state(g: torch.Generator) -> torch.Generator:
    out = torch.Generator()
    out.set_state(g.get_state())
    return out


# ---- (a) k = 1: the Monte-Carlo ELBO of the same draw; the closed-form ELBO in expectation ------------

def test_iwae_at_k1_is_the_monte_carlo_elbo_of_the_same_draw():
    model, x = small_vae(), binary_images(12)
    g = torch.Generator().manual_seed(3)
    expected = manual_log_weights(model, x, same_state(g), k=1)[0]
    t = iwae(x, model.encoder, model.decoder, model.likelihood, k=1, generator=g)
    assert t.bound.shape == (12,) and t.log_w.shape == (1, 12)
    assert torch.allclose(t.bound, expected, rtol=0, atol=1e-4), (t.bound - expected).abs().max()
    assert torch.equal(t.bound, t.log_w[0])                              # log (1/1) exp(log w) = log w


def test_iwae_at_k1_matches_the_closed_form_kl_elbo_in_expectation():
    model, x = small_vae(), binary_images(4)
    reps = 4000
    x_rep = x.repeat(reps, 1, 1, 1)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        l1 = iwae(x_rep, model.encoder, model.decoder, model.likelihood, k=1, generator=g).bound.view(reps, 4)
        e = elbo(x_rep, model.encoder, model.decoder, model.likelihood, generator=g).elbo.view(reps, 4)
    se = torch.sqrt(l1.var(0) / reps + e.var(0) / reps)
    assert ((l1.mean(0) - e.mean(0)).abs() < 4 * se).all(), (l1.mean(0), e.mean(0), se)
    assert (l1.var(0) > e.var(0)).all()                                  # the Monte-Carlo KL adds variance


def test_train_step_loss_at_k1_is_minus_the_monte_carlo_elbo():
    model = small_vae(objective="iwae", k=1, binarize="static")         # static: no draw for the pixels
    x = binary_images(10) * 2 - 1                                        # data space {-1, 1}
    before = copy.deepcopy(model)
    ctx = FakeContext(seed=5)
    g = same_state(ctx.generator)
    logs = model.train_step((x, torch.full((10,), -1)), ctx)
    with torch.no_grad():
        expected = -manual_log_weights(before, before.to_model(x), g, k=1).mean().item()
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["iwae"] == pytest.approx(-logs["loss"])


# ---- the training objective and the evaluation bound share the log weights ------------------------------

def test_training_objective_equals_the_evaluation_bound_at_the_same_draws():
    decoder, exact, log_px, lik, x = linear_gaussian()

    def poor_encoder(x):
        mu, logvar = exact(x)
        return mu + 0.4, logvar - 1.0

    for K in (1, 7, 50):
        t = iwae(x, poor_encoder, decoder, lik, k=K, generator=torch.Generator().manual_seed(K))
        b = iwae_bound(x, poor_encoder, decoder, lik, K=K, chunk=K, generator=torch.Generator().manual_seed(K))
        assert torch.allclose(t.bound, b, rtol=0, atol=1e-12), K
    # with the exact posterior every weight is p(x): L_k = log p(x) for any k, gradients or not
    t = iwae(x, exact, decoder, lik, k=5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(t.bound, log_px(x), atol=1e-9)
    assert torch.allclose(t.log_w, log_px(x).expand(5, -1), atol=1e-9)


# ---- (b) L_1 < L_5 < L_50 in expectation ---------------------------------------------------------------

def test_the_bound_rises_with_k():
    model, x = small_vae(), binary_images(16)
    g = torch.Generator().manual_seed(6)
    means, ses = {}, {}
    with torch.no_grad():
        for k in (1, 5, 50):
            reps = 4000 // k                                             # the same decoder work for every k
            b = iwae(x.repeat(reps, 1, 1, 1), model.encoder, model.decoder, model.likelihood,
                     k=k, generator=g).bound.view(reps, 16).mean(1)      # mean over the 16 images, per repeat
            means[k], ses[k] = b.mean().item(), b.std().item() / math.sqrt(reps)
    # gaps on this model: about 0.28 and 0.06 nats; standard errors about 0.003
    for lo, hi in ((1, 5), (5, 50)):
        assert means[hi] - means[lo] > 5 * math.hypot(ses[lo], ses[hi]), (means, ses)


# ---- the k-sample ELBO ------------------------------------------------------------------------------

def test_k_sample_elbo_averages_the_reconstruction_and_keeps_the_closed_form_kl():
    model, x = small_vae(), binary_images(6)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        mu, logvar = model.encoder(x)
        g2 = same_state(g)
        z = mu + torch.exp(0.5 * logvar) * torch.randn((3, *mu.shape), generator=g2)
        logits = model.decoder(z.reshape(-1, 4)).reshape(3, *x.shape)
        rec = torch.distributions.Bernoulli(logits=logits).log_prob(x.expand_as(logits)).flatten(2).sum(-1).mean(0)
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
                                               torch.distributions.Normal(0.0, 1.0)).sum(-1)
        t = elbo(x, model.encoder, model.decoder, model.likelihood, beta=2.0, k=3, generator=g)
    assert torch.allclose(t.rec, rec, atol=1e-4) and torch.allclose(t.kl, kl, atol=1e-5)
    assert torch.allclose(t.objective, t.rec - 2.0 * t.kl)


def test_elbo_objective_with_k_keeps_its_log_keys():
    model = small_vae(k=4)
    logs = as_floats(model.train_step((binary_images(8) * 2 - 1, torch.full((8,), -1)), FakeContext()))
    assert set(logs) == {"loss", "elbo", "rec", "kl", "beta"}
    assert logs["elbo"] == pytest.approx(logs["rec"] - logs["kl"], abs=1e-3)


# ---- (c) configuration -----------------------------------------------------------------------------

def test_config_validation_names_the_fields():
    VAEConfig(objective="iwae", k=50).validate()
    VAEConfig(objective="elbo", k=3, beta=4.0, kl_warmup_steps=10).validate()
    with pytest.raises(ConfigError, match=r"model\.k must be an integer >= 1, got 0"):
        VAEConfig(k=0).validate()
    with pytest.raises(ConfigError, match=r"model\.objective.*'bogus'.*elbo.*iwae"):
        VAEConfig(objective="bogus").validate()
    with pytest.raises(ConfigError, match=r"model\.beta = 1.*beta = 2\.0.*no separate KL term"):
        VAEConfig(objective="iwae", beta=2.0).validate()
    with pytest.raises(ConfigError, match=r"model\.kl_warmup_steps = 0.*kl_warmup_steps = 100.*no separate KL"):
        VAEConfig(objective="iwae", kl_warmup_steps=100).validate()
    with pytest.raises(ConfigError, match="model.beta"):
        VAE(VAEConfig(latent_dim=2, hidden=[8], objective="iwae", beta=0.5), SMALL)


# ---- (d) training through train_step ----------------------------------------------------------------

def prototypes(n: int = 64, seed: int = 0) -> torch.Tensor:
    """n images in [-1, 1] from 4 random 8x8 prototypes with pixel probabilities 0.9 / 0.1."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(4, 1, 8, 8, generator=g) < 0.5
    return torch.where(protos[torch.arange(n) % 4], 0.8, -0.8)


def test_a_few_iwae_steps_are_finite_and_lower_the_loss():
    model = small_vae(objective="iwae", k=10, lr=3e-3)
    x = prototypes()
    ctx = FakeContext(seed=8)
    logs = []
    for s in range(30):
        ctx.step = s
        logs.append(model.train_step((x, torch.full((64,), -1)), ctx))
    assert all(set(r) == {"loss", "iwae", "elbo", "rec", "kl"} for r in logs)
    assert all(math.isfinite(v) for r in logs for v in r.values())
    first = sum(r["loss"] for r in logs[:5]) / 5
    last = sum(r["loss"] for r in logs[-5:]) / 5
    assert last < first - 3.0, (first, last)
    # L_10 lies above the ELBO estimate at the same draws (the mean of log w <= log mean w)
    assert all(r["iwae"] >= r["elbo"] - 0.5 for r in logs)
    assert sum(r["iwae"] - r["elbo"] for r in logs) > 0


def test_the_k_draws_of_an_example_share_one_binarisation():
    model = small_vae(objective="iwae", k=5)
    seen = []
    log_prob = model.likelihood.log_prob

    def spy(params, x):
        seen.append(x.detach().clone())
        return log_prob(params, x)

    model.likelihood.log_prob = spy
    x = torch.zeros(7, 1, 8, 8)                                          # p = 1/2: every draw differs
    model.train_step((x, torch.full((7,), -1)), FakeContext(seed=9))
    (targets,) = seen
    targets = targets.view(5, 7, 1, 8, 8)
    assert torch.equal(targets, targets[:1].expand_as(targets))          # the same pixels for all k draws
    assert not torch.equal(targets[0, 0], targets[0, 1])                 # yet drawn afresh per example
    assert set(targets.unique().tolist()) <= {0.0, 1.0}


@contextmanager
def bf16():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


def test_iwae_step_under_bf16_autocast_is_close_to_fp32():
    x = prototypes(16)
    out = {}
    for name in ("fp32", "bf16"):
        model, ctx = small_vae(objective="iwae", k=5), FakeContext(seed=10)
        if name == "bf16":
            ctx.autocast = bf16
        out[name] = as_floats(model.train_step((x, torch.full((16,), -1)), ctx))
    assert all(math.isfinite(v) for v in out["bf16"].values())
    assert out["bf16"]["loss"] == pytest.approx(out["fp32"]["loss"], rel=0.02)
