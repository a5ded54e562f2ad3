"""Samplers: stored fixed-seed values with a tiny deterministic model, DDIM(eta=1, T steps) =
ancestral sampling, and every sampler recovering N(m, s^2) with the optimal eps_theta."""

import itertools
import math

import pytest
import torch

from genmodels.diffusion.gaussian_data import model_marginal, optimal_eps_fn
from genmodels.diffusion.samplers import (
    SAMPLERS,
    ancestral,
    ddim,
    dpm_solver_pp_2m,
    euler_ancestral,
    get_sampler,
    heun,
    timestep_sequence,
)
from genmodels.diffusion.schedule import NoiseSchedule, linear_betas
from genmodels.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = NoiseSchedule.from_betas(linear_betas(20, 1e-3, 0.2))


def tiny_denoise(x, t):
    """A fixed nonlinear 'network' (no parameters), deterministic on every platform."""
    return torch.tanh(0.5 * x) * (t.to(x.dtype)[:, None] / 20.0) + 0.1 * x.roll(1, dims=1)


STORED = {
    "ancestral_beta": (lambda x, g: ancestral(tiny_denoise, x, TINY, generator=g, variance="beta"),
                       [[1.8836685073344774, -0.8737848054270336, -5.958862538527114],
                        [1.6416845115134542, -2.737232291557416, 0.3372058490233415]]),
    "ancestral_beta_tilde_clip": (lambda x, g: ancestral(tiny_denoise, x, TINY, generator=g, variance="beta_tilde",
                                                         clip_x0=True),
                                  [[-0.21663461388270722, -0.3327570890911244, -0.9999999999999991],
                                   [0.8787539852995506, -0.9999999999999991, 0.23041509665092752]]),
    "ancestral_7_steps": (lambda x, g: ancestral(tiny_denoise, x, TINY, steps=7, generator=g),
                          [[2.7327608190746084, -0.5612027316025944, -5.98685947069801],
                           [1.4408093189899855, -3.1106584680023914, -0.5159269206354167]]),
    "ddim_eta0_5": (lambda x, g: ddim(tiny_denoise, x, TINY, steps=5, generator=g),
                    [[3.8297519456379563, -1.0524588632195415, -4.506051963778507],
                     [1.436814067044315, -2.2386463352932577, -2.3358065556885963]]),
    "ddim_eta05_10_clip": (lambda x, g: ddim(tiny_denoise, x, TINY, steps=10, generator=g, eta=0.5, clip_x0=True),
                           [[1.0, -0.712859491363008, -1.0],
                            [0.940491763687518, -0.9995855361358494, -0.8406184849313308]]),
    "dpmpp_6": (lambda x, g: dpm_solver_pp_2m(tiny_denoise, x, TINY, steps=6, generator=g),
                [[3.9700791433284355, -1.107384353904761, -4.617232633666502],
                 [1.4858368996851152, -2.3216112978485044, -2.3994011415411833]]),
    "heun_6_karras": (lambda x, g: heun(tiny_denoise, x, TINY, steps=6, generator=g),
                      [[4.1092896907062135, -1.1658196489736514, -4.713053800043581],
                       [1.5326934996857178, -2.397288270842725, -2.448521398338714]]),
    "euler_ancestral_7_karras": (lambda x, g: euler_ancestral(tiny_denoise, x, TINY, steps=7, generator=g),
                                 [[3.2298259072776863, -0.21836162325959124, -5.377548972808109],
                                  [1.2980603750017008, -2.611227876711359, -0.8979507333251611]]),
    "euler_ancestral_5_uniform_clip": (lambda x, g: euler_ancestral(tiny_denoise, x, TINY, steps=5, generator=g,
                                                                    spacing="uniform", clip_x0=True),
                                       [[0.5838316160456151, 0.0799934612318939, -1.0],
                                        [0.9768629315154597, -0.8821843732432686, -0.434111640615506]]),
}


@pytest.mark.parametrize("name", sorted(STORED))
def test_fixed_seed_runs_match_stored_values(name):
    run, want = STORED[name]
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 3, generator=g, dtype=torch.float64)
    got = run(x_T, g)
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-9), got.tolist()


def test_ddim_eta_1_with_all_steps_is_ancestral_sampling():
    # same noise stream: the two samplers produce the same path (Song et al. 2021, sec. 4.1)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x_T = torch.randn(64, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    a = ancestral(tiny_denoise, x_T, TINY, generator=g1, variance="beta_tilde")
    d = ddim(tiny_denoise, x_T, TINY, generator=g2, eta=1.0)
    assert torch.allclose(a, d, rtol=1e-9, atol=1e-9)
    # and independent runs have the same distribution (moments within their standard errors)
    n = 20_000
    ga, gd = torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)
    a = ancestral(tiny_denoise, torch.randn(n, 3, generator=ga, dtype=torch.float64), TINY, generator=ga,
                  variance="beta_tilde")
    d = ddim(tiny_denoise, torch.randn(n, 3, generator=gd, dtype=torch.float64), TINY, generator=gd, eta=1.0)
    se = torch.sqrt((a.var(0) + d.var(0)) / n)
    assert ((a.mean(0) - d.mean(0)).abs() < 4.5 * se).all()
    assert ((a.std(0) / d.std(0) - 1).abs() < 4.5 * math.sqrt(1 / n)).all()
    # whereas eta = 0 is a different (deterministic) sampler
    d0 = ddim(tiny_denoise, torch.randn(n, 3, generator=gd, dtype=torch.float64), TINY, generator=gd, eta=0.0)
    assert ((a.std(0) - d0.std(0)).abs() > 10 * se).any()


# (sampler, steps, spacing, relative tolerance on the standard deviation): few-step samplers are
# only approximately right; DPM-Solver++ with log-SNR spacing is accurate at 10-20 steps.
GAUSSIAN_CASES = [("ancestral", None, "uniform", 0.03), ("ancestral", 50, "uniform", 0.10),
                  ("ddim", 200, "uniform", 0.05), ("ddim", 50, "logsnr", 0.08), ("dpm++", 20, "logsnr", 0.03),
                  ("dpm++", 10, "logsnr", 0.04)]


@pytest.mark.parametrize("name,steps,spacing,rel", GAUSSIAN_CASES)
def test_samplers_recover_gaussian_data_with_the_optimal_denoiser(name, steps, spacing, rel):
    m, s = 0.4, 0.3
    sched = NoiseSchedule.named("linear", 1000)
    g = torch.Generator().manual_seed(9)
    n = 20_000
    x = get_sampler(name)(optimal_eps_fn(sched, m, s), torch.randn(n, 1, generator=g, dtype=torch.float64), sched,
                          steps=steps, generator=g, spacing=spacing)
    assert x.mean().item() == pytest.approx(m, abs=0.01)
    assert x.std().item() == pytest.approx(s, rel=rel)
    if name == "ancestral" and steps is None:   # Algorithm 4.2 samples the exact model marginal
        mean, var = model_marginal(sched, m, s, "beta")
        assert x.var().item() == pytest.approx(var, rel=4 * math.sqrt(2 / n))


def test_dpm_solver_needs_logsnr_spacing_on_narrow_data():
    """With uniform-in-t steps the 20-step solver overshoots the variance by ~30%: why logsnr is its default."""
    sched = NoiseSchedule.named("linear", 1000)
    g = torch.Generator().manual_seed(9)
    x = dpm_solver_pp_2m(optimal_eps_fn(sched, 0.4, 0.3), torch.randn(20_000, 1, generator=g, dtype=torch.float64),
                         sched, steps=20, spacing="uniform")
    assert x.std().item() > 0.35


def test_timestep_sequence_and_errors():
    sched = NoiseSchedule.named("linear", 1000)
    assert timestep_sequence(sched, None) == list(range(1000, -1, -1))
    for spacing in ("uniform", "logsnr"):
        seq = timestep_sequence(sched, 20, spacing)
        assert seq[0] == 1000 and seq[-2:] == [1, 0] and len(seq) == 21
        assert all(a > b for a, b in itertools.pairwise(seq))
    assert timestep_sequence(sched, 5) == [1000, 750, 500, 251, 1, 0]
    assert timestep_sequence(sched, 1) == [1000, 0]
    with pytest.raises(ConfigError, match="1..20"):
        timestep_sequence(TINY, 21)
    with pytest.raises(ConfigError, match="karras, logsnr, uniform"):
        timestep_sequence(TINY, 5, "quadratic")
    with pytest.raises(ConfigError, match="ancestral, ddim, dpm"):
        get_sampler("euler")
    with pytest.raises(ConfigError, match="eta"):
        ddim(tiny_denoise, torch.zeros(1, 3), TINY, eta=-1.0)
    assert set(SAMPLERS) == {"ancestral", "ddim", "dpm++", "heun", "euler-ancestral"}


def test_dpm_solver_is_deterministic_and_uses_the_requested_number_of_evaluations():
    calls = []

    def counting(x, t):
        calls.append(int(t[0]))
        return tiny_denoise(x, t)

    x_T = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = dpm_solver_pp_2m(counting, x_T, TINY, steps=8, generator=torch.Generator().manual_seed(2), spacing="uniform")
    assert len(calls) == 8 and calls[0] == 20 and calls[-1] == 1
    b = dpm_solver_pp_2m(tiny_denoise, x_T, TINY, steps=8, generator=torch.Generator().manual_seed(3),
                         spacing="uniform")
    assert torch.equal(a, b)
    calls.clear()
    dpm_solver_pp_2m(counting, x_T, TINY, steps=8)   # log-SNR steps that round to the same t are merged
    assert 6 <= len(calls) <= 8 and calls[0] == 20 and calls[-1] == 1
