"""Schedules and the precomputed constants of seed section 4.1.1 / Remark 7."""

import math

import pytest
import torch

from genmodels.diffusion.schedule import NoiseSchedule, cosine_betas, gather, linear_betas, make_betas
from genmodels.errors import ConfigError


def test_linear_schedule_is_ho_et_al():
    b = linear_betas()
    assert b.dtype == torch.float64 and b.shape == (1000,)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    assert torch.allclose(b[1:] - b[:-1], torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))


def test_cosine_schedule_matches_nichol_dhariwal_alpha_bar():
    T, s = 1000, 0.008
    sched = NoiseSchedule.from_betas(cosine_betas(T, s))
    t = torch.arange(1, T + 1, dtype=torch.float64)
    f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    want = f(t) / f(torch.zeros((), dtype=torch.float64))
    unclipped = sched.beta < 0.999
    assert torch.allclose(sched.alpha_bar[unclipped], want[unclipped], rtol=1e-10, atol=1e-12)
    assert sched.beta.max() <= 0.999


def test_derived_constants():
    sched = NoiseSchedule.named("linear", 1000)
    assert sched.T == 1000
    assert torch.allclose(sched.alpha_bar, torch.cumprod(1 - sched.beta, 0))
    assert sched.alpha_bar_prev[0] == 1.0 and torch.equal(sched.alpha_bar_prev[1:], sched.alpha_bar[:-1])
    t = 10  # 1-based: index t-1
    ab, abp, b = sched.alpha_bar[t - 1], sched.alpha_bar[t - 2], sched.beta[t - 1]
    assert sched.beta_tilde[t - 1] == pytest.approx(((1 - abp) / (1 - ab) * b).item(), rel=1e-12)
    assert sched.posterior_coef_x0[t - 1] == pytest.approx((abp.sqrt() * b / (1 - ab)).item(), rel=1e-12)
    assert sched.posterior_coef_xt[t - 1] == pytest.approx(((1 - b).sqrt() * (1 - abp) / (1 - ab)).item(), rel=1e-12)
    assert sched.beta_tilde[0] == 0.0 and sched.log_beta_tilde_clipped[0] == sched.log_beta_tilde_clipped[1]
    # gather reads step t at index t-1 and broadcasts
    x = torch.zeros(3, 1, 2, 2)
    g = gather(sched.beta, torch.tensor([1, 500, 1000]), x)
    assert g.shape == (3, 1, 1, 1) and g.dtype == torch.float32
    assert torch.allclose(g.flatten(), sched.beta[[0, 499, 999]].float())


def test_schedule_errors_name_the_problem():
    with pytest.raises(ConfigError, match="valid choices: cosine, linear"):
        make_betas("quadratic", 10)
    with pytest.raises(ConfigError, match="beta_1"):
        linear_betas(10, 0.5, 0.1)
    with pytest.raises(ConfigError, match="T must be"):
        cosine_betas(0)
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        NoiseSchedule.from_betas(torch.tensor([0.1, 1.0]))


def test_named_linear_schedule_scales_with_T():
    assert torch.equal(make_betas("linear", 1000), linear_betas())
    short = NoiseSchedule.named("linear", 100)
    assert short.beta[0].item() == pytest.approx(1e-3) and short.beta[-1].item() == pytest.approx(0.2)
    assert short.alpha_bar[-1] < 1e-4
