"""Learned variances (Nichol & Dhariwal 2021, eq. 15) and their L_hybrid: the interpolation at its
ends, the stop-gradient on the mean, and the bound, eq. 4.8 and ancestral sampling with a learned
Sigma against the closed forms of N(m, s^2) data; the DDPM family with learn_sigma; old runs whose
loss was the fixed-variance "hybrid"."""

import math

import pytest
import torch

from genmodels.diffusion.bound import bound_terms
from genmodels.diffusion.gaussian import learned_log_variance, p_mean_var, reverse_variance, split_model_output
from genmodels.diffusion.gaussian_data import (
    exact_bound_terms,
    exact_log_likelihood,
    model_marginal,
    optimal_eps_fn,
    with_learned_v,
)
from genmodels.diffusion.loglik import log_likelihood_is
from genmodels.diffusion.losses import diffusion_loss, sample_training_inputs
from genmodels.diffusion.samplers import ancestral
from genmodels.diffusion.schedule import NoiseSchedule, cosine_betas, linear_betas
from genmodels.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

M, S = 0.3, 0.5
X0 = torch.tensor([[-0.5], [0.3], [1.2]], dtype=torch.float64)
SCHED_100 = NoiseSchedule.from_betas(cosine_betas(100))
SCHED_20 = NoiseSchedule.from_betas(linear_betas(20, 5e-3, 0.5))


def test_learned_variance_is_beta_tilde_at_v_0_and_beta_at_v_1():
    t = torch.arange(1, SCHED_100.T + 1)
    like = torch.zeros(SCHED_100.T, 3, dtype=torch.float64)
    for v, fixed in ((0.0, "beta_tilde"), (1.0, "beta")):
        var, logvar = reverse_variance(SCHED_100, t, like, "learned", torch.full_like(like, v))
        want, want_log = reverse_variance(SCHED_100, t, like, fixed)
        assert torch.allclose(var, want.expand_as(var), rtol=1e-12, atol=0)
        assert torch.allclose(logvar, want_log.expand_as(logvar), rtol=1e-12, atol=0)
    # v = 1/2 is the geometric mean, and v is not constrained to [0, 1] (as in the paper)
    half = learned_log_variance(SCHED_100, t, torch.full((SCHED_100.T,), 0.5, dtype=torch.float64))
    assert torch.allclose(half, 0.5 * (torch.log(SCHED_100.beta) + SCHED_100.log_beta_tilde_clipped))
    over = learned_log_variance(SCHED_100, t, torch.full((SCHED_100.T,), 1.5, dtype=torch.float64))
    assert (over[1:] > torch.log(SCHED_100.beta[1:])).all()
    # per dimension: each coordinate of v sets its own variance
    xt = torch.zeros(1, 2, dtype=torch.float64)
    _, var2, _ = p_mean_var(SCHED_100, xt, xt, torch.tensor([50]), "learned", v=torch.tensor([[0.0, 1.0]]))
    assert var2[0, 0] == pytest.approx(float(SCHED_100.beta_tilde[49]))
    assert var2[0, 1] == pytest.approx(float(SCHED_100.beta[49]))
    assert split_model_output(xt) == (xt, None)


def _loss_inputs(loss, prediction="eps", seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(16, 1, 4, 4, generator=g, dtype=torch.float64) * 255).round().float() / 127.5 - 1
    t, eps, xt = sample_training_inputs(SCHED_20, x0, g)
    t[:2] = 1                                                   # the decoder term L_0 is covered too
    xt = SCHED_20.sqrt_alpha_bar[t - 1].float().reshape(-1, 1, 1, 1) * x0 + \
        SCHED_20.sqrt_one_minus_alpha_bar[t - 1].float().reshape(-1, 1, 1, 1) * eps
    output = (0.8 * eps + 0.1 * torch.randn(eps.shape, generator=g)).requires_grad_(True)
    v = (0.3 * torch.randn(eps.shape, generator=g)).requires_grad_(True)
    return dict(sched=SCHED_20, output=output, x0=x0, xt=xt, t=t, eps=eps, loss=loss, prediction=prediction,
                variance="learned", v=v)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_hybrid_stops_the_gradient_of_l_vlb_at_the_mean(prediction):
    args = _loss_inputs("hybrid", prediction)
    out = diffusion_loss(**args)
    grad_mean, grad_v = torch.autograd.grad(out["l_vlb"], [args["output"], args["v"]], allow_unused=True,
                                            retain_graph=True)
    assert grad_mean is None or float(grad_mean.abs().max()) == 0.0   # L_vlb does not train the mean
    assert float(grad_v.abs().max()) > 0                                # it trains Sigma
    # the whole L_hybrid's gradient on the mean is L_simple's
    g_hybrid = torch.autograd.grad(out["loss"], args["output"], retain_graph=True)[0]
    g_simple = torch.autograd.grad(out["l_simple"], args["output"])[0]
    assert torch.allclose(g_hybrid, g_simple, rtol=0, atol=0)
    # negative controls: without the stop-gradient (vlb, simple+vlb) L_vlb does move the mean
    for loss in ("vlb", "simple+vlb"):
        other = _loss_inputs(loss, prediction)
        g = torch.autograd.grad(diffusion_loss(**other)["l_vlb"], other["output"])[0]
        assert float(g.abs().max()) > 1e-4, loss
    # and the value of L_vlb is the same with and without the stop-gradient
    plain = diffusion_loss(**_loss_inputs("vlb", prediction))["l_vlb"]
    assert float(out["l_vlb"].detach()) == pytest.approx(float(plain.detach()))


def test_hybrid_needs_a_learned_variance():
    args = _loss_inputs("hybrid")
    args.update(variance="beta", v=None)
    with pytest.raises(ConfigError, match="simple\\+vlb"):
        diffusion_loss(**args)


@pytest.mark.parametrize("v", [0.0, 0.5, 1.0])
def test_bound_with_learned_sigma_matches_its_closed_form(v):
    exact = exact_bound_terms(SCHED_100, M, S, X0, "learned", v=v)
    if v in (0.0, 1.0):          # the closed forms themselves agree with the fixed choices at the ends
        fixed = exact_bound_terms(SCHED_100, M, S, X0, "beta_tilde" if v == 0.0 else "beta")
        assert torch.allclose(exact["total"], fixed["total"], rtol=1e-10)
    g = torch.Generator().manual_seed(1)
    R = 400
    eps_fn = with_learned_v(optimal_eps_fn(SCHED_100, M, S), v)
    mc = bound_terms(eps_fn, SCHED_100, X0.repeat(R, 1), variance="learned", decoder="gaussian", generator=g)
    for key in ("L_1:T-1", "L_0", "total"):
        est = mc[key].reshape(R, 3)
        se = est.std(0) / math.sqrt(R)
        assert ((est.mean(0) - exact[key].flatten()).abs() <= 4 * se + 1e-9).all(), key
    # a bound that ignored v (fixed beta_t) would be far off at v = 0
    if v == 0.0:
        wrong = bound_terms(eps_fn, SCHED_100, X0.repeat(R, 1), variance="beta", decoder="gaussian", generator=g)
        assert (wrong["total"].reshape(R, 3).mean(0) - exact["total"].flatten()).abs().min() > 0.3


def test_eq_4_8_and_ancestral_sampling_use_the_learned_sigma():
    v = 0.5
    eps_fn = with_learned_v(optimal_eps_fn(SCHED_20, M, S), v)
    g = torch.Generator().manual_seed(3)
    exact = exact_log_likelihood(SCHED_20, M, S, X0, "learned", v=v).flatten()
    R = 40
    est = log_likelihood_is(eps_fn, SCHED_20, X0.repeat(R, 1), num_trajectories=256, variance="learned",
                            decoder="gaussian", generator=g, chunk=256).reshape(R, 3)
    assert (est.mean(0) - exact).abs().max() < 0.02
    # ancestral sampling draws from the exact marginal of the model with Sigma of v = 1/2
    n = 40_000
    x = ancestral(eps_fn, torch.randn(n, 1, generator=g, dtype=torch.float64), SCHED_20, generator=g,
                  variance="learned")
    mean, var = model_marginal(SCHED_20, M, S, "learned", v=v)
    assert x.mean().item() == pytest.approx(mean, abs=4 * math.sqrt(var / n))
    assert x.var().item() == pytest.approx(var, rel=4 * math.sqrt(2 / n))
    mean_b, var_b = model_marginal(SCHED_20, M, S, "beta")
    assert abs(var_b - var) > 10 * var * math.sqrt(2 / n)      # the fixed beta_t model is distinguishable
    # at v = 0 and v = 1 the learned sampler retraces the fixed ones, draw for draw
    x_T = torch.randn(64, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for v_end, fixed in ((0.0, "beta_tilde"), (1.0, "beta")):
        a = ancestral(with_learned_v(optimal_eps_fn(SCHED_20, M, S), v_end), x_T, SCHED_20,
                      generator=torch.Generator().manual_seed(5), variance="learned", steps=7)
        b = ancestral(optimal_eps_fn(SCHED_20, M, S), x_T, SCHED_20, generator=torch.Generator().manual_seed(5),
                      variance=fixed, steps=7)
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
