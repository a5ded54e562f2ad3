"""Training at any noise level (`diffusion/continuous.py`): the lognormal and logit-normal densities
against their definitions, Karras et al.'s preconditioning against the closed-form optimal denoiser
of Gaussian data, the EDM loss weight, soft-min-SNR against hand-computed values, and a DDPM that
trains with each option."""

import math

import pytest
import torch
from conftest import FakeContext
from scipy import stats

from genmodels.data.dataset import Dataset, DataSpec
from genmodels.diffusion.continuous import (
    alpha_bar_at,
    draw_steps,
    edm_output_to_eps,
    edm_scalings,
    net_input_scale,
    snr_weight_at,
    target_at,
)
from genmodels.diffusion.gaussian_data import optimal_eps_fn
from genmodels.diffusion.losses import diffusion_loss, output_to_eps, training_target
from genmodels.diffusion.noise_levels import sigma_at
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions

SCHED = NoiseSchedule.named("linear", 1000)


@pytest.mark.parametrize("density,mean,std", [("lognormal", -1.2, 1.2), ("logit-normal", 0.0, 1.0)])
def test_densities_draw_ln_sigma_from_their_normal(density, mean, std):
    t = draw_steps(SCHED, 200_000, density, torch.Generator().manual_seed(0), "cpu")
    assert t.dtype == torch.float64 and float(t.min()) >= 1.0 and float(t.max()) <= 1000.0
    log_sigma = torch.log(sigma_at(SCHED, t))
    inside = log_sigma[(t > 1.0) & (t < 1000.0)]            # clipped at sigma_1 only in the far tail
    assert len(inside) / len(t) > 0.995
    # the clipped normal's moments, and its shape inside the schedule's range
    assert float(log_sigma.mean()) == pytest.approx(mean, abs=0.02)
    assert float(log_sigma.std()) == pytest.approx(std, rel=0.02)
    lo = math.log(float(sigma_at(SCHED, torch.tensor([1.0]))))
    z = ((inside.numpy() - mean) / std)
    cdf_lo = stats.norm.cdf((lo - mean) / std)
    truncated = stats.truncnorm(a=(lo - mean) / std, b=math.inf)
    assert stats.kstest(z[:20000], truncated.cdf).pvalue > 1e-3
    assert cdf_lo < 0.005


def test_logit_normal_is_esser_et_al_time_on_the_linear_path():
    """t' = sigmoid(u) on x = (1 - t') x_0 + t' eps has y = x / (1 - t') = x_0 + sigma eps with
    sigma = t' / (1 - t'): ln sigma = u, so their logit-normal(0, 1) is ln sigma ~ N(0, 1)."""
    u = torch.randn(1000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    tp = torch.sigmoid(u)
    assert torch.allclose(torch.log(tp / (1 - tp)), u, atol=1e-9)


def test_uniform_density_is_algorithm_4_1():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    t = draw_steps(SCHED, 100, "uniform", g1, "cpu")
    assert t.dtype == torch.int64 and torch.equal(t, torch.randint(1, 1001, (100,), generator=g2))


def test_alpha_bar_at_integer_and_fractional_steps():
    t = torch.arange(1, 1001)
    assert torch.equal(alpha_bar_at(SCHED, t), SCHED.alpha_bar)
    assert torch.allclose(alpha_bar_at(SCHED, t.double()), SCHED.alpha_bar, rtol=1e-10)
    mid = alpha_bar_at(SCHED, torch.tensor([10.5], dtype=torch.float64))
    assert float(SCHED.alpha_bar[10]) < float(mid) < float(SCHED.alpha_bar[9])


def test_edm_scalings_are_karras_table_1():
    abar = torch.tensor([0.9, 0.5, 0.01], dtype=torch.float64)
    sigma = ((1 - abar) / abar).sqrt()
    c_skip, c_out, c_in = edm_scalings(abar, 0.5)
    assert torch.allclose(c_skip, 0.25 / (sigma**2 + 0.25))
    assert torch.allclose(c_out, sigma * 0.5 / (sigma**2 + 0.25).sqrt())
    assert torch.allclose(c_in, 1 / (sigma**2 + 0.25).sqrt())


@pytest.mark.parametrize("s,sigma_data", [(0.5, 0.5), (1.3, 0.5), (0.7, 1.0)])
def test_edm_target_regresses_on_the_closed_form_optimal_denoiser(s, sigma_data):
    """For x_0 ~ N(0, s^2), E[x_0 | y] = s^2 / (s^2 + sigma^2) y, so the optimal F is
    (s^2 / (s^2 + sigma^2) - c_skip) y / c_out (zero when sigma_d = s). Monte Carlo: the least-squares
    slope of F_target on y, at three noise levels."""
    g = torch.Generator().manual_seed(4)
    for ab in (0.95, 0.5, 0.05):
        abar = torch.tensor(ab, dtype=torch.float64)
        x0 = s * torch.randn(400_000, generator=g, dtype=torch.float64)
        eps = torch.randn(400_000, generator=g, dtype=torch.float64)
        sigma2 = (1 - ab) / ab
        y = x0 + math.sqrt(sigma2) * eps
        f = target_at(x0, eps, abar, "edm", sigma_data)
        slope = float((f * y).mean() / (y * y).mean())
        c_skip, c_out, _ = edm_scalings(abar, sigma_data)
        expected = float((s**2 / (s**2 + sigma2) - c_skip) / c_out)
        assert slope == pytest.approx(expected, abs=6e-3)
        if s == sigma_data:
            assert abs(expected) < 1e-12


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_edm_output_of_the_optimal_f_is_the_optimal_eps(sigma_data):
    """The optimal F of Gaussian data, converted by `output_to_eps`, is the closed-form E[eps | x_t]
    (`gaussian_data.optimal_eps_fn`), at every step."""
    s = 0.8
    t = torch.arange(1, 1001)
    xt = torch.randn(1000, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    abar = SCHED.alpha_bar[t - 1][:, None]
    sigma2 = (1 - abar) / abar
    c_skip, c_out, _ = edm_scalings(abar, sigma_data)
    y = xt / abar.sqrt()
    f_star = (s**2 / (s**2 + sigma2) - c_skip) * y / c_out
    eps = output_to_eps(SCHED, f_star, xt, t, "edm", sigma_data)
    assert torch.allclose(eps, optimal_eps_fn(SCHED, 0.0, s)(xt, t), atol=1e-9)
    assert torch.allclose(edm_output_to_eps(f_star, xt, abar, sigma_data), eps)


def test_edm_loss_weight_makes_f_unit_weighted():
    """lambda(sigma) ||D - x_0||^2 = ||F - F_target||^2 with lambda = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2."""
    g = torch.Generator().manual_seed(6)
    abar = torch.tensor([[0.9], [0.3], [0.02]], dtype=torch.float64)
    x0, eps, f = (torch.randn(3, 5, generator=g, dtype=torch.float64) for _ in range(3))
    sigma2, d = (1 - abar) / abar, 0.5
    c_skip, c_out, _ = edm_scalings(abar, d)
    y = x0 + sigma2.sqrt() * eps
    denoised = c_skip * y + c_out * f
    lam = (sigma2 + d**2) / (sigma2 * d**2)
    assert torch.allclose(lam * (denoised - x0) ** 2, (f - target_at(x0, eps, abar, "edm", d)) ** 2)


def test_v_prediction_is_edm_with_unit_sigma_data():
    g = torch.Generator().manual_seed(7)
    x0, eps = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    t = torch.tensor([1, 200, 600, 1000])
    abar = SCHED.alpha_bar[t - 1].float()[:, None]
    assert torch.allclose(target_at(x0, eps, abar, "edm", 1.0), -training_target(SCHED, x0, t, eps, "v"), atol=1e-5)
    assert torch.allclose(net_input_scale(abar, "edm", 1.0), torch.ones_like(abar), atol=1e-6)
    assert net_input_scale(abar, "v", 1.0) is None


def test_soft_min_snr_against_hand_computed_values():
    """SNR = abar / (1 - abar); x_0 weight min(SNR, 5) or 5 SNR / (SNR + 5), carried to eps and v."""
    abar = torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)    # SNR 1, 9, 99
    hand_min = torch.tensor([1.0, 5.0, 5.0])
    hand_soft = torch.tensor([5 / 6, 45 / 14, 495 / 104])
    assert torch.allclose(snr_weight_at(abar, "x0", 5.0, "min"), hand_min)
    assert torch.allclose(snr_weight_at(abar, "x0", 5.0, "soft-min"), hand_soft)
    assert torch.allclose(snr_weight_at(abar, "eps", 5.0, "soft-min"), hand_soft / torch.tensor([1.0, 9, 99]))
    assert torch.allclose(snr_weight_at(abar, "v", 5.0, "soft-min"), hand_soft / torch.tensor([2.0, 10, 100]))
    assert bool((snr_weight_at(abar, "x0", 5.0, "soft-min") <= hand_min).all())
    assert torch.equal(snr_weight_at(abar, "v", 0.0, "soft-min"), torch.ones(3))


def test_min_weighting_on_integer_steps_is_unchanged():
    """The 'min' path with integer t is today's `min_snr_weight` (stored runs train as before)."""
    g = torch.Generator().manual_seed(8)
    x0, eps = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    t = torch.tensor([1, 10, 100, 400, 800, 1000])
    out = torch.randn(6, 4, generator=g)
    xt = torch.zeros_like(x0)
    a = diffusion_loss(SCHED, out, x0, xt, t, eps, prediction="v", snr_gamma=5.0)["loss"]
    b = diffusion_loss(SCHED, out, x0, xt, t.double(), eps, prediction="v", snr_gamma=5.0)["loss"]
    assert float(a) == pytest.approx(float(b), rel=1e-5)


def test_fractional_steps_refuse_the_bound_terms():
    x = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="fractional steps"):
        diffusion_loss(SCHED, x, x, x, torch.tensor([1.5, 2.5], dtype=torch.float64), x, loss="vlb")
    with pytest.raises(ConfigError, match="noise_density = lognormal.*loss = simple"):
        DDPMConfig(noise_density="lognormal", loss="vlb").validate()


@pytest.mark.parametrize("options", [dict(prediction="edm", noise_density="lognormal"),
                                     dict(noise_density="logit-normal", snr_weighting="soft-min"),
                                     dict(prediction="edm", sigma_data=1.0),
                                     dict(prediction="v", snr_weighting="soft-min")])
def test_ddpm_trains_and_samples_with_each_option(options):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 1, 8, 8, generator=g) * 255).round() / 127.5 - 1
    data = Dataset(x=x, y=torch.full((64,), -1), name="tiny", kind="image")
    model = DDPM(DDPMConfig(T=50, channels=8, channel_mults=[1, 2], attention_resolutions=[4], **options),
                 data.spec)
    if options.get("prediction") == "edm":
        assert model.config.snr_gamma == 0.0                      # EDM's own weighting: unit weight on F
    ctx = FakeContext(x=x, batch_size=16)
    losses = [float(model.train_step((x[i:i + 16], data.y[:16]), ctx)["loss"]) for i in list(range(0, 64, 16)) * 3]
    assert all(math.isfinite(v) for v in losses)
    for sampler in ("ddim", "dpm++", "euler-ancestral"):
        s = model.sample(3, DDPMSampleOptions(sampler=sampler, steps=5), generator=torch.Generator().manual_seed(1))
        assert s.shape == (3, 1, 8, 8) and bool(torch.isfinite(s).all())


def test_edm_ddpm_learns_gaussian_points_toward_the_closed_form():
    """On 2-D N(0, 0.5^2) points with sigma_d = 0.5 the optimal F is 0; a short training run moves
    the trained eps toward the closed form E[eps | x_t] at mid noise levels."""
    g = torch.Generator().manual_seed(9)
    x = 0.5 * torch.randn(4096, 2, generator=g)
    data = Dataset(x=x, y=torch.full((4096,), -1), name="gauss", kind="points")
    model = DDPM(DDPMConfig(T=100, prediction="edm", noise_density="lognormal", mlp_width=64, mlp_depth=2,
                            lr=3e-3), DataSpec("points", (2,)))
    sched = model.sched
    t = torch.full((2048,), 40)
    probe = torch.randn(2048, 2, generator=g)

    def error():
        with torch.no_grad():
            x0 = model._to_model_space(x[:2048])       # the standardiser's space, where the data is N(0, ~1)
            eps = probe
            xt = sched.sqrt_alpha_bar[39].float() * x0 + sched.sqrt_one_minus_alpha_bar[39].float() * eps
            s = float(x0.std())
            exact = optimal_eps_fn(sched, 0.0, s)(xt.double(), t).float()
            return float(((model.eps_fn()(xt, t) - exact) ** 2).mean())

    ctx = FakeContext(x=x, batch_size=256)
    model.train_step((x[:256], data.y[:256]), ctx)            # fits the standardiser
    before = error()
    for _ in range(150):
        model.train_step(ctx.next_batch(), ctx)
    assert error() < 0.3 * before
