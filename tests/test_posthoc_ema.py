"""Power-function EMA and post-hoc reconstruction (Karras et al. 2024) against an EMA tracked directly."""

import numpy as np
import pytest
import torch

from genmodels.training.posthoc_ema import (
    PowerEMA,
    beta,
    gamma_to_sigma_rel,
    profile_weights,
    reconstruct,
    reconstruction_error,
    sigma_rel_to_gamma,
)


@pytest.mark.parametrize("sigma_rel,gamma", [(0.05, 16.97), (0.10, 6.94)])
def test_sigma_rel_and_gamma_match_the_paper(sigma_rel, gamma):
    """Karras et al. 2024 (sec. 3): sigma_rel 0.05 and 0.10 are gamma 16.97 and 6.94."""
    assert sigma_rel_to_gamma(sigma_rel) == pytest.approx(gamma, abs=0.01)
    assert gamma_to_sigma_rel(sigma_rel_to_gamma(sigma_rel)) == pytest.approx(sigma_rel, rel=1e-9)


def test_recursion_weights_are_the_closed_form_profile():
    """theta_hat(t) by the recursion with beta(t) = (1 - 1/t)^(gamma + 1) weights theta(tau) by
    (tau^(g+1) - (tau-1)^(g+1)) / t^(g+1), summing to 1."""
    t, g = 37, 4.5
    thetas = torch.eye(t, dtype=torch.float64)                    # theta(tau) = e_tau reads off the weights
    ema = PowerEMA([gamma_to_sigma_rel(g)], {"w": thetas[0]})
    for step in range(1, t + 1):
        ema.update(step, {"w": thetas[step - 1]})
    got = ema.averages[gamma_to_sigma_rel(g)]["w"].double().numpy()
    assert np.allclose(got, profile_weights(t, g, t), atol=1e-6)
    assert profile_weights(t, g, t).sum() == pytest.approx(1.0)
    assert beta(1, g) == 0.0


def test_posthoc_reconstruction_matches_an_ema_tracked_directly():
    """Two EMAs (sigma_rel 0.05, 0.10) stored every 100 steps of a 2,000-step random walk rebuild the
    sigma_rel = 0.07 and 0.15 averages at the last step to within a few percent of the distance the
    tracked average lies from the final weights."""
    gen = torch.Generator().manual_seed(0)
    steps, stored, targets = 2000, (0.05, 0.10), (0.07, 0.15)
    theta = torch.zeros(64)
    track = PowerEMA(stored + targets, {"w": theta})
    snapshots = []
    for step in range(1, steps + 1):
        theta = theta + 0.05 * torch.randn(64, generator=gen) + 0.01     # drift + noise, like SGD's
        track.update(step, {"w": theta})
        if step % 100 == 0:
            snapshots += [(step, track.gammas[s], {"w": track.averages[s]["w"].clone()}) for s in stored]
    for target in targets:
        direct = track.averages[target]["w"]
        rebuilt = reconstruct(snapshots, steps, target)["w"]
        spread = float((direct - theta).norm())
        assert float((rebuilt - direct).norm()) < 0.05 * spread
        assert reconstruction_error([(s, g) for s, g, _ in snapshots], steps, target) < 0.05
    # a single stored average cannot make another width: the error is large
    only = [snap for snap in snapshots if snap[1] == track.gammas[0.05]][-1:]
    assert reconstruction_error([(s, g) for s, g, _ in only], steps, 0.15) > 0.2


def test_sigma_rel_out_of_range_is_refused():
    with pytest.raises(ValueError, match="sigma_rel"):
        sigma_rel_to_gamma(0.5)
