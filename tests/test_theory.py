"""`genmodels theory`: every check of the seed's claims passes with the library's functions, and
fails when the formula it tests is deliberately broken."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from genmodels.cli import main
from genmodels.diffusion.bound import bound_terms
from genmodels.diffusion.gaussian import q_step_mean_var
from genmodels.diffusion.gaussian_data import optimal_eps_fn
from genmodels.diffusion.loglik import log_likelihood_is
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.models.gan.losses import discriminator_loss, generator_loss
from genmodels.theory import Check, diffusion_claims, feller, gan_claims, markov
from genmodels.theory.densities import Mixture1D, optimal_eps, wasserstein1

pytestmark = pytest.mark.usefixtures("one_thread")


def scaled_posterior_variance(sched: NoiseSchedule, factor: float) -> NoiseSchedule:
    """The schedule with the posterior variance beta~_t of q(x_{t-1} | x_t, x_0) times `factor`."""
    return dataclasses.replace(sched, beta_tilde=sched.beta_tilde * factor,
                               log_beta_tilde_clipped=sched.log_beta_tilde_clipped + math.log(factor))


def assert_passes(check: Check) -> None:
    assert isinstance(check, Check)
    assert check.passed, f"{check.claim}: {check.value} ({check.computed})"


def assert_fails(check: Check) -> None:
    assert not check.passed, f"{check.claim} passed with a broken formula: {check.value} ({check.computed})"


# ---------------------------------------------------------------------------------------------
# GAN, seed section 2


def test_remark1_passes_and_catches_swapped_labels_and_a_wrong_generator_loss():
    assert_passes(gan_claims.check_remark1())
    assert_fails(gan_claims.check_remark1(discriminator_loss_fn=lambda r, f, kind: discriminator_loss(f, r, kind)))
    assert_fails(gan_claims.check_remark1(generator_loss_fn=lambda f, kind: -generator_loss(f, kind)))


def test_prop2_trained_discriminator_matches_d_star():
    check = gan_claims.check_prop2_trained()
    assert_passes(check)
    assert check.value < 0.03


def test_prop2_fails_when_the_loss_is_not_the_bce_of_eq_2_2():
    # One-sided label smoothing (real target 0.8) makes the optimum 0.8 D*: no longer eq. 2.4.
    smoothed = lambda r, f, kind: discriminator_loss(r, f, kind, label_smoothing=0.2)  # noqa: E731
    assert_fails(gan_claims.check_prop2_trained(discriminator_loss_fn=smoothed, steps=400))


def test_prop2_argmax_passes_and_catches_a_wrong_optimum():
    assert_passes(gan_claims.check_prop2_argmax(trials=40))
    assert_fails(gan_claims.check_prop2_argmax(optimal_logit_fn=lambda a, b: a - b + 0.3, trials=40))


def test_theorem3_passes_and_catches_a_wrong_discriminator_and_the_missing_factor_2():
    identity, minimum = gan_claims.check_theorem3()
    assert_passes(identity)
    assert_passes(minimum)
    assert all(r["C(G)"] > -math.log(4) for r in identity.details["pairs"] if not r["same"])
    wrong_d = gan_claims.check_theorem3(optimal_logit_fn=lambda a, b: 0.9 * (a - b))
    assert_fails(wrong_d[0])
    # The seed's last line reads C(G) = JSD - log 4; the factor 2 is needed.
    assert_fails(gan_claims.check_theorem3(jsd_fn=lambda a, b, dx: 0.5 * gan_claims.jsd(a, b, dx))[0])


def test_jsd_matches_a_closed_form_limit():
    """Disjoint supports give JSD = log 2; identical densities give 0."""
    p, q = Mixture1D.gaussian(-30.0, 1.0), Mixture1D.gaussian(30.0, 1.0)
    x, dx = gan_claims.joint_grid(p, q, 200001)
    assert float(gan_claims.jsd(p.log_prob(x), q.log_prob(x), dx)) == pytest.approx(math.log(2), abs=1e-6)
    assert float(gan_claims.jsd(p.log_prob(x), p.log_prob(x), dx)) == pytest.approx(0.0, abs=1e-12)


def test_prop4_drives_c_of_g_to_minus_log_4_and_fails_with_a_wrong_sign():
    check = gan_claims.check_prop4()
    assert_passes(check)
    assert check.details["mu"] == pytest.approx(1.0, abs=1e-2)
    assert check.details["sigma"] == pytest.approx(0.6, abs=1e-2)
    assert_fails(gan_claims.check_prop4(generator_loss_fn=lambda logit, kind: -generator_loss(logit, kind),
                                        iterations=50))


# ---------------------------------------------------------------------------------------------
# Diffusion, seed section 4


def test_theorem5_reverse_kernel_becomes_gaussian():
    check = feller.check_theorem5()
    assert_passes(check)
    kls = check.details["mean KL"]
    assert kls[0] > 1e-2 and kls[-1] < 1e-5


def test_theorem5_reverse_kernel_of_gaussian_data_is_exactly_gaussian():
    x_t = torch.linspace(-2, 2, 9, dtype=torch.float64)
    x, log_k, dx = feller.reverse_kernel(Mixture1D.gaussian(0.3, 0.7), 0.2, x_t)
    kl, _ = feller.gaussian_kl_gap(x, log_k, dx)
    assert float(kl.abs().max()) < 1e-12


def test_theorem5_fails_when_the_forward_kernel_variance_does_not_shrink_with_beta():
    def stuck(sched, x_prev, t):
        mean, var = q_step_mean_var(sched, x_prev, t)
        return mean, var.clamp(min=0.05)

    assert_fails(feller.check_theorem5(forward_kernel=stuck))


def test_prop6_reverse_is_markov_and_a_second_order_forward_process_is_not():
    assert_passes(markov.check_prop6())
    assert_fails(markov.check_prop6(joint_fn=markov.second_order_joint))


def test_markov_joint_is_a_distribution_with_the_given_kernels():
    g = torch.Generator().manual_seed(1)
    q0, kernels = markov.random_chain(4, 3, g)
    joint = markov.markov_joint(q0, kernels)
    assert joint.shape == (4, 4, 4, 4)
    assert float(joint.sum()) == pytest.approx(1.0, abs=1e-12)
    pair = joint.sum(dim=(2, 3))                                       # q(x_0, x_1)
    assert torch.allclose(pair / pair.sum(1, keepdim=True), kernels[0])


def test_theorem8_bound_forms_agree_and_a_wrong_posterior_variance_is_caught():
    assert_passes(diffusion_claims.check_theorem8_bound())
    wider = lambda eps_fn, sched, x0, **kw: bound_terms(eps_fn, scaled_posterior_variance(sched, 1.1), x0, **kw)  # noqa: E731
    assert_fails(diffusion_claims.check_theorem8_bound(bound_terms_fn=wider))


def test_theorem8_loglik_converges_and_a_wrong_beta_is_caught():
    check = diffusion_claims.check_theorem8_loglik()
    assert_passes(check)
    assert check.details["mean(estimate - exact)"][0] < 0          # K = 1: Jensen's lower bound

    def off_beta(eps_fn, sched, x0, **kw):
        return log_likelihood_is(eps_fn, dataclasses.replace(sched, beta=sched.beta * 1.05), x0, **kw)

    assert_fails(diffusion_claims.check_theorem8_loglik(off_beta, ks=(1, 64, 256)))


def test_theorem8_checks_hold_with_a_learned_variance_and_catch_a_bound_that_ignores_it():
    assert_passes(diffusion_claims.check_theorem8_bound(v=0.5))
    assert_passes(diffusion_claims.check_theorem8_loglik(v=0.5, ks=(1, 64, 1024)))
    fixed = lambda eps_fn, sched, x0, **kw: bound_terms(eps_fn, sched, x0, **{**kw, "variance": "beta"})  # noqa: E731
    assert_fails(diffusion_claims.check_theorem8_bound(bound_terms_fn=fixed, v=0.5))


def test_remark7_both_variances_pass():
    bound, samples = diffusion_claims.check_remark7()
    assert_passes(bound)
    assert_passes(samples)
    # sigma^2 = beta is the tighter bound here (data variance near 1), with similar likelihoods.
    assert bound.details["beta"]["L"] < bound.details["beta_tilde"]["L"]


def test_remark7_catches_a_wrong_noise_predictor_and_a_bound_that_averages_instead_of_summing():
    sched = diffusion_claims.small_schedule()
    exact = optimal_eps(diffusion_claims.MIXTURE_DATA, sched)
    _, samples = diffusion_claims.check_remark7(lambda x, t: 0.8 * exact(x, t), n=5000, n_nll=50, k_nll=16)
    assert_fails(samples)

    def averaged(eps_fn, sched, x0, **kw):
        out = bound_terms(eps_fn, sched, x0, **kw)
        out["total"] = out["L_T"] + out["L_1:T-1"] / (sched.T - 1) + out["L_0"]
        return out

    bound, _ = diffusion_claims.check_remark7(bound_terms_fn=averaged, n=5000, n_nll=100, k_nll=16)
    assert_fails(bound)


# ---------------------------------------------------------------------------------------------
# Helpers


def test_mixture_optimal_eps_matches_the_gaussian_closed_form():
    sched = diffusion_claims.small_schedule()
    mine = optimal_eps(Mixture1D.gaussian(0.5, 0.8), sched)
    library = optimal_eps_fn(sched, 0.5, 0.8)
    x = torch.linspace(-3, 3, 13, dtype=torch.float64).unsqueeze(1)
    for t_int in (1, 10, 100):
        t = torch.full((13,), t_int)
        assert torch.allclose(mine(x, t), library(x, t), atol=1e-12)


def test_mixture_optimal_eps_is_the_monte_carlo_posterior_mean():
    sched = diffusion_claims.small_schedule()
    data = diffusion_claims.MIXTURE_DATA
    g = torch.Generator().manual_seed(0)
    n, t_int = 400_000, 30
    x0 = data.sample(n, g)
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    abar = float(sched.alpha_bar[t_int - 1])
    xt = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps
    bins = (xt > 0.2) & (xt < 0.3)                                  # E[eps | x_t in a thin slice]
    predicted = optimal_eps(data, sched)(xt[bins].unsqueeze(1), torch.full((int(bins.sum()),), t_int))
    assert float(eps[bins].mean()) == pytest.approx(float(predicted.mean()), abs=0.02)


def test_quantiles_and_wasserstein():
    m = Mixture1D((0.3, 0.7), (-1.0, 1.5), (0.3, 0.5))
    q = m.quantiles(10000)
    assert float(q.mean()) == pytest.approx(m.mean, abs=1e-3)
    assert float(q.var()) == pytest.approx(m.var, rel=1e-3)
    assert wasserstein1(q, m) < 1e-3
    assert wasserstein1(q + 0.5, m) == pytest.approx(0.5, abs=1e-3)


def test_check_to_dict_is_json_ready():
    c = Check("claim", "computed", float("nan"), "0", 1e-3, False)
    d = json.loads(json.dumps(c.to_dict()))
    assert d["value"] == "nan" and d["passed"] is False


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_json_and_plots(tmp_path, capsys):
    rc = main(["theory", "--only", "remark1,prop6,theorem5", "--json", "--plots", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["passed"] == out["total"] == 3
    assert (tmp_path / "theory_thm5_feller.png").stat().st_size > 1000


def test_cli_table(capsys):
    assert main(["theory", "--only", "prop6"]) == 0
    out = capsys.readouterr().out
    assert "Proposition 6" in out and "pass" in out and "1/1 checks passed" in out


def test_cli_unknown_check_is_a_clear_error(capsys):
    assert main(["theory", "--only", "theorem9"]) == 2
    err = capsys.readouterr().err
    assert "theorem9" in err and "remark1" in err
