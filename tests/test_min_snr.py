"""Min-SNR-gamma loss weighting (Hang et al. 2023): the weights of each prediction target against
hand-computed values, and the property that defines them: for the same denoiser, the weighted
losses of the eps, x0 and v parameterisations are one and the same min(SNR, gamma) ||x0 - x0_hat||^2."""

from __future__ import annotations

import pytest
import torch

from genmodels.diffusion.gaussian import predict_x0_from_eps, v_target
from genmodels.diffusion.losses import diffusion_loss, min_snr_weight, simple_loss, snr
from genmodels.diffusion.schedule import NoiseSchedule

# abar_1 = 0.9, abar_2 = 0.5, abar_3 = 0.2: SNR = 9, 1, 0.25
SCHED = NoiseSchedule.from_betas(torch.tensor([0.1, 1 - 0.5 / 0.9, 1 - 0.2 / 0.5], dtype=torch.float64))
T = torch.tensor([1, 2, 3])


def test_snr_values():
    assert snr(SCHED, T).tolist() == pytest.approx([9.0, 1.0, 0.25])


@pytest.mark.parametrize("prediction, expected", [
    ("x0", [5.0, 1.0, 0.25]),              # min(SNR, 5)
    ("eps", [5 / 9, 1.0, 1.0]),            # min(SNR, 5) / SNR
    ("v", [5 / 10, 1 / 2, 0.25 / 1.25]),   # min(SNR, 5) / (SNR + 1)
])
def test_weights_by_hand(prediction, expected):
    assert min_snr_weight(SCHED, T, prediction, 5.0).tolist() == pytest.approx(expected, rel=1e-6)


def test_the_three_parameterisations_give_one_weighted_loss():
    g = torch.Generator().manual_seed(0)
    sched = NoiseSchedule.named("linear", 1000)
    t = torch.tensor([1, 10, 100, 400, 700, 1000])
    x0 = torch.rand((6, 1, 4, 4), generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    from genmodels.diffusion.gaussian import q_sample

    xt = q_sample(sched, x0, t, eps)
    eps_hat = eps + 0.3 * torch.randn(x0.shape, generator=g, dtype=torch.float64)   # an imperfect denoiser
    x0_hat = predict_x0_from_eps(sched, xt, t, eps_hat)
    v_hat = v_target(sched, x0_hat, t, eps_hat)
    reference = snr(sched, t).clamp(max=5.0) * simple_loss(x0_hat, x0)
    for prediction, output, target in (("eps", eps_hat, eps), ("x0", x0_hat, x0),
                                       ("v", v_hat, v_target(sched, x0, t, eps))):
        weighted = min_snr_weight(sched, t, prediction, 5.0).double() * simple_loss(output, target)
        assert weighted.tolist() == pytest.approx(reference.tolist(), rel=1e-5), prediction
    # negative control: dividing the v error by SNR (not SNR + 1) breaks the equality
    wrong = snr(sched, t).clamp(max=5.0) / snr(sched, t) * simple_loss(v_hat, v_target(sched, x0, t, eps))
    assert not torch.allclose(wrong, reference, rtol=1e-3)


def test_diffusion_loss_weights_only_the_minimised_loss():
    g = torch.Generator().manual_seed(1)
    sched = NoiseSchedule.named("linear", 100)
    x0 = torch.rand((8, 3), generator=g) * 2 - 1
    t = torch.tensor([1, 2, 3, 5, 10, 50, 80, 100])           # SNR from about 1e3 down to 1e-4
    eps = torch.randn(x0.shape, generator=g)
    from genmodels.diffusion.gaussian import q_sample

    xt = q_sample(sched, x0, t, eps)
    out = torch.randn(x0.shape, generator=g)
    plain = diffusion_loss(sched, out, x0, xt, t, eps, decoder="gaussian")
    weighted = diffusion_loss(sched, out, x0, xt, t, eps, decoder="gaussian", snr_gamma=5.0)
    assert torch.equal(plain["l_simple"], weighted["l_simple"])             # the logged L_simple is unweighted
    expected = (min_snr_weight(sched, t, "eps", 5.0) * simple_loss(out, eps)).mean()
    assert torch.allclose(weighted["loss"], expected)
    assert not torch.allclose(weighted["loss"], plain["loss"])
