"""Closed forms of seed section 4 checked against Monte Carlo and Bayes' rule."""

import math

import pytest
import torch

from genmodels.diffusion.gaussian import (
    discretized_gaussian_log_likelihood,
    eps_from_v,
    gaussian_log_prob,
    normal_kl,
    p_mean_var,
    predict_eps_from_x0,
    predict_x0_from_eps,
    q_mean_var,
    q_posterior_mean_var,
    q_sample,
    q_step_mean_var,
    v_target,
)
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


SCHED = NoiseSchedule.named("linear", 1000)


def test_q_xt_given_x0_matches_the_simulated_chain():
    """Running q(x_t | x_{t-1}) step by step gives the moments of q(x_t | x_0) (seed 4.1.1)."""
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.tensor([0.8, -0.4], dtype=torch.float64).repeat(n, 1)
    x = x0
    for t_int in range(1, 301):
        t = torch.full((n,), t_int)
        mean, var = q_step_mean_var(SCHED, x, t)
        x = mean + var.sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
        if t_int in (1, 50, 300):
            m, v, _ = q_mean_var(SCHED, x0[:1], torch.tensor([t_int]))
            se_mean = (v.sqrt() / math.sqrt(n)).item()
            assert torch.allclose(x.mean(0), m[0], atol=5 * se_mean)
            assert torch.allclose(x.var(0), v[0].expand(2), rtol=5 * math.sqrt(2 / n))
    # q_sample draws from the same distribution in one shot
    t = torch.full((n,), 300)
    xs = q_sample(SCHED, x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    assert torch.allclose(xs.mean(0), x.mean(0), atol=0.01)
    assert torch.allclose(xs.var(0), x.var(0), rtol=0.02)


@pytest.mark.parametrize("t_int", [2, 10, 400, 1000])
def test_posterior_is_bayes_rule(t_int):
    """q(x_{t-1} | x_t, x_0) propto q(x_t | x_{t-1}) q(x_{t-1} | x_0), on a fine 1-D grid."""
    x0, xt = torch.tensor([[0.7]], dtype=torch.float64), torch.tensor([[0.1]], dtype=torch.float64)
    t = torch.tensor([t_int])
    mu, var, _ = q_posterior_mean_var(SCHED, x0, xt, t)
    sd = var.sqrt().item()
    grid = torch.linspace(mu.item() - 12 * sd, mu.item() + 12 * sd, 200_001, dtype=torch.float64)[:, None]
    prior_mean, prior_var, prior_logvar = q_mean_var(SCHED, x0, t - 1) if t_int > 1 else (x0, None, None)
    like_mean, like_var = q_step_mean_var(SCHED, grid, t.expand(len(grid)))
    log_post = gaussian_log_prob(xt, like_mean, torch.log(like_var)) + gaussian_log_prob(grid, prior_mean, prior_logvar)
    w = torch.softmax(log_post.flatten(), 0)
    post_mean = (w * grid.flatten()).sum()
    post_var = (w * (grid.flatten() - post_mean) ** 2).sum()
    assert post_mean.item() == pytest.approx(mu.item(), abs=1e-6 * max(1.0, abs(mu.item())))
    assert post_var.item() == pytest.approx(var.item(), rel=1e-5)


def test_gaussian_kl_matches_sampling():
    g = torch.Generator().manual_seed(1)
    cases = [(0.0, 0.0, 0.0, 0.0), (0.5, -1.0, -0.3, 0.4), (2.0, 0.7, 1.0, -0.5), (-1.0, -3.0, 0.0, -2.0)]
    for m1, lv1, m2, lv2 in cases:
        m1, lv1, m2, lv2 = (torch.tensor(v, dtype=torch.float64) for v in (m1, lv1, m2, lv2))
        x = m1 + (0.5 * lv1).exp() * torch.randn(400_000, generator=g, dtype=torch.float64)
        ratio = gaussian_log_prob(x, m1, lv1) - gaussian_log_prob(x, m2, lv2)
        kl = normal_kl(m1, lv1, m2, lv2).item()
        assert abs(ratio.mean().item() - kl) < 5 * ratio.std().item() / math.sqrt(len(x)) + 1e-9
    assert normal_kl(torch.tensor(0.3), torch.tensor(0.1), torch.tensor(0.3), torch.tensor(0.1)).item() == 0.0


def test_each_bound_kl_term_matches_sampling():
    """L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p_theta(x_{t-1}|x_t)) in closed form vs sampling x_{t-1}."""
    g = torch.Generator().manual_seed(2)
    x0 = torch.full((1, 3), 0.5, dtype=torch.float64)
    for t_int in (2, 300):
        t = torch.tensor([t_int])
        xt = q_sample(SCHED, x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
        eps_theta = torch.randn(x0.shape, generator=g, dtype=torch.float64)  # any prediction
        for variance in ("beta", "beta_tilde"):
            mu, _, logvar_q = q_posterior_mean_var(SCHED, x0, xt, t)
            mean, _, logvar_p = p_mean_var(SCHED, eps_theta, xt, t, variance)
            kl = normal_kl(mu, logvar_q, mean, logvar_p).sum().item()
            x = mu + (0.5 * logvar_q).exp() * torch.randn((200_000, 3), generator=g, dtype=torch.float64)
            ratio = (gaussian_log_prob(x, mu, logvar_q) - gaussian_log_prob(x, mean, logvar_p)).sum(1)
            assert abs(ratio.mean().item() - kl) < 5 * ratio.std().item() / math.sqrt(len(x)) + 1e-9


def test_reverse_mean_is_eq_4_3_and_the_posterior_mean_at_x0_hat():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 2, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 5, 500, 1000])
    eps = torch.randn(4, 2, generator=g, dtype=torch.float64)
    xt = q_sample(SCHED, x0, t, eps)
    eps_theta = eps + 0.1 * torch.randn(4, 2, generator=g, dtype=torch.float64)
    mean, var, logvar = p_mean_var(SCHED, eps_theta, xt, t, "beta")
    b, a, ab = SCHED.beta[t - 1, None], SCHED.alpha[t - 1, None], SCHED.alpha_bar[t - 1, None]
    assert torch.allclose(mean, (xt - b / (1 - ab).sqrt() * eps_theta) / a.sqrt())  # seed eq. 4.3
    assert torch.allclose(var.flatten(), b.flatten())
    mu_tilde, _, _ = q_posterior_mean_var(SCHED, predict_x0_from_eps(SCHED, xt, t, eps_theta), xt, t)
    assert torch.allclose(mean, mu_tilde, atol=1e-9)
    mean_c, _, _ = p_mean_var(SCHED, eps_theta, xt, t, "beta", clip_x0=True)
    x0_c = predict_x0_from_eps(SCHED, xt, t, eps_theta).clamp(-1, 1)
    assert torch.allclose(mean_c, q_posterior_mean_var(SCHED, x0_c, xt, t)[0])
    _, var_bt, _ = p_mean_var(SCHED, eps_theta, xt, t, "beta_tilde")
    assert torch.allclose(var_bt.flatten()[1:], SCHED.beta_tilde[t[1:] - 1])
    with pytest.raises(ConfigError, match="beta, beta_tilde, learned"):
        p_mean_var(SCHED, eps_theta, xt, t, "fixed")
    with pytest.raises(ConfigError, match="needs the network's v"):
        p_mean_var(SCHED, eps_theta, xt, t, "learned")


def test_prediction_conversions_round_trip():
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([3, 900])
    xt = q_sample(SCHED, x0, t, eps)
    assert torch.allclose(predict_x0_from_eps(SCHED, xt, t, eps), x0, atol=1e-8)
    assert torch.allclose(predict_eps_from_x0(SCHED, xt, t, x0), eps, atol=1e-8)
    assert torch.allclose(eps_from_v(SCHED, xt, t, v_target(SCHED, x0, t, eps)), eps, atol=1e-10)


def test_discretized_decoder_is_a_distribution_over_the_256_bins():
    x = torch.linspace(-1, 1, 256, dtype=torch.float64)
    for mean, log_scale in [(0.0, -4.0), (0.37, -1.0), (-1.2, -2.0), (3.0, 0.5)]:
        lp = discretized_gaussian_log_likelihood(x, torch.tensor(mean, dtype=torch.float64),
                                                 torch.tensor(log_scale, dtype=torch.float64))
        assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    # interior bin mass ~ density x bin width when the Gaussian is wide
    lp = discretized_gaussian_log_likelihood(x[128:129], torch.tensor(0.0, dtype=torch.float64),
                                             torch.tensor(0.0, dtype=torch.float64))
    dens = gaussian_log_prob(x[128:129], torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    assert lp.item() == pytest.approx(dens.item() + math.log(2 / 255), abs=1e-4)
    # far-tail bins stay finite
    far = discretized_gaussian_log_likelihood(torch.tensor([0.0]), torch.tensor([0.9]), torch.tensor([-5.0]))
    assert torch.isfinite(far).all() and far.item() < -1000
