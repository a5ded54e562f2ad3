"""Karras et al. (2022): their noise levels (eq. 5) mapped from the VP schedule, and the Heun and
Euler-ancestral samplers, against the paper's formula, the exact probability-flow map of Gaussian
data and ancestral sampling; plus the continuous noise-level interpolation used by the ODE."""

import itertools
import math

import pytest
import torch

from genmodels.diffusion.gaussian_data import optimal_eps_fn
from genmodels.diffusion.noise_levels import karras_sigmas, karras_steps, sigma_at, sigma_table, step_at
from genmodels.diffusion.samplers import ancestral, ddim, euler_ancestral, heun, timestep_sequence
from genmodels.diffusion.schedule import NoiseSchedule, linear_betas
from genmodels.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

SCHED = NoiseSchedule.named("linear", 1000)
TINY = NoiseSchedule.from_betas(linear_betas(20, 1e-3, 0.2))
M, S = 0.4, 0.3


def tiny_denoise(x, t):
    return torch.tanh(0.5 * x) * (t.to(x.dtype)[:, None] / 20.0) + 0.1 * x.roll(1, dims=1)


def test_karras_sigmas_follow_eq_5():
    # the paper's CIFAR-10 settings: sigma_min = 0.002, sigma_max = 80, N = 18, rho = 7
    got = karras_sigmas(0.002, 80.0, 18)
    want = [(80.0 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7 for i in range(18)] + [0.0]
    assert got.tolist() == pytest.approx(want, rel=1e-12, abs=0)
    assert got[0] == 80.0 and float(got[17]) == pytest.approx(0.002) and got[18] == 0.0
    # rho = 1 is uniform spacing; rho = 7 puts more levels at low noise
    assert torch.allclose(karras_sigmas(1.0, 5.0, 5, rho=1.0)[:-1],
                          torch.tensor([5.0, 4, 3, 2, 1], dtype=torch.float64))
    assert (got[:-1] < 10).sum() > 9
    for bad in (dict(sigma_min=0.0, sigma_max=1.0, n=3), dict(sigma_min=2.0, sigma_max=1.0, n=3),
                dict(sigma_min=0.1, sigma_max=1.0, n=0)):
        with pytest.raises(ConfigError):
            karras_sigmas(**bad)


def test_sigmas_are_mapped_from_the_vp_schedule_and_rounded_to_its_steps():
    table = sigma_table(SCHED)
    abar = SCHED.alpha_bar
    assert table[0] == 0 and torch.allclose(table[1:], ((1 - abar) / abar).sqrt(), rtol=1e-12)
    steps = karras_steps(SCHED, 18)
    assert steps[0] == 1000 and steps[-2:] == [1, 0] and len(steps) == 19
    assert all(a > b for a, b in itertools.pairwise(steps))
    levels = karras_sigmas(float(table[1]), float(table[-1]), 18)[:-1]
    for t, level in zip(steps[:-1], levels, strict=True):                   # each step is the nearest to its level
        assert (table[1:] - level).abs().argmin() + 1 == t
    assert timestep_sequence(SCHED, 18, "karras") == steps
    # at small T rounding merges levels: at most n evaluations, still from T down to 1
    merged = karras_steps(TINY, 15)
    assert merged[0] == 20 and merged[-2:] == [1, 0] and len(merged) < 16


def test_continuous_sigma_interpolation_is_exact_at_the_steps_and_inverts():
    table = sigma_table(SCHED)
    t = torch.arange(0, 1001, dtype=torch.float64)
    assert torch.allclose(sigma_at(SCHED, t), table, rtol=1e-12, atol=0)
    frac = torch.rand(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1000
    s = sigma_at(SCHED, frac)
    assert torch.allclose(step_at(SCHED, s), frac, rtol=0, atol=1e-9)
    assert (s[1:][frac[1:] > frac[:-1]] >= s[:-1][frac[1:] > frac[:-1]]).all()   # increasing in t
    assert float(sigma_at(SCHED, torch.tensor(0.5))) == pytest.approx(0.5 * float(table[1]))


def _flow_gain(sampler, steps, spacing="karras"):
    """(x_0 - m) / (exact x_0 - m) for the exact probability-flow map of N(m, s^2) data: the ODE is
    linear, so this ratio is one number per sampler and the sample variance is ratio^2 times the exact one."""
    x_T = torch.tensor([[-2.0], [1.5]], dtype=torch.float64)
    sigma_T = float(sigma_table(SCHED)[-1])
    exact = M + (x_T * math.sqrt(1 + sigma_T**2) - M) * S / math.sqrt(S**2 + sigma_T**2)
    x0 = sampler(optimal_eps_fn(SCHED, M, S), x_T, SCHED, steps=steps, spacing=spacing)
    ratio = (x0 - M) / (exact - M)
    assert float(ratio.max() - ratio.min()) < 1e-9
    return float(ratio.mean())


def test_heun_is_second_order_and_reaches_the_data_variance_with_the_optimal_denoiser():
    errors = {n: abs(_flow_gain(heun, n) - 1) for n in (9, 18, 35)}
    assert errors[18] < 0.08 and errors[35] < 0.02
    assert errors[9] / errors[18] > 3 and errors[18] / errors[35] > 3        # error ~ N^-2
    euler = {n: abs(_flow_gain(ddim, n) - 1) for n in (18, 35)}              # DDIM = Euler in these variables
    assert euler[18] / euler[35] < 2.5 and euler[35] > 5 * errors[35]
    # Monte Carlo: samples of N(0.4, 0.3^2) with 35 levels (69 network evaluations)
    g = torch.Generator().manual_seed(9)
    x = heun(optimal_eps_fn(SCHED, M, S), torch.randn(20_000, 1, generator=g, dtype=torch.float64), SCHED, steps=35)
    assert x.mean().item() == pytest.approx(M, abs=0.01)
    assert x.std().item() == pytest.approx(S, rel=0.03)


def test_heun_uses_2n_minus_1_evaluations_and_is_deterministic():
    calls = []

    def counting(x, t):
        calls.append(int(t[0]))
        return tiny_denoise(x, t)

    x_T = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = heun(counting, x_T, TINY, steps=6, generator=torch.Generator().manual_seed(2))
    assert len(calls) == 2 * 6 - 1 and calls[0] == 20 and calls[-1] == 1
    assert torch.equal(a, heun(tiny_denoise, x_T, TINY, steps=6, generator=torch.Generator().manual_seed(3)))


def test_euler_ancestral_with_all_steps_is_ancestral_sampling_with_beta_tilde():
    # the same noise stream gives the same path: both draw from the DDPM posterior at x0_hat
    x_T = torch.randn(64, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    a = ancestral(tiny_denoise, x_T, TINY, generator=torch.Generator().manual_seed(5), variance="beta_tilde")
    e = euler_ancestral(tiny_denoise, x_T, TINY, steps=None, spacing="uniform",
                        generator=torch.Generator().manual_seed(5))
    assert torch.allclose(a, e, rtol=1e-9, atol=1e-9)
    b = ancestral(tiny_denoise, x_T, TINY, generator=torch.Generator().manual_seed(5), variance="beta")
    assert not torch.allclose(b, e, atol=1e-3)
    # and with few Karras steps it still samples N(m, s^2) with the optimal denoiser (it is stochastic)
    g = torch.Generator().manual_seed(7)
    x = euler_ancestral(optimal_eps_fn(SCHED, M, S), torch.randn(20_000, 1, generator=g, dtype=torch.float64), SCHED,
                        steps=200, generator=g)
    assert x.mean().item() == pytest.approx(M, abs=0.01) and x.std().item() == pytest.approx(S, rel=0.05)
