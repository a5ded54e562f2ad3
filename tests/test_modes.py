"""Mode coverage on 2-D mixtures (VEEGAN / PacGAN rule)."""

import math

import pytest
import torch

from genmodels.metrics.modes import mode_coverage


def ring8_modes(radius=2.0):
    angle = torch.arange(8) * 2 * math.pi / 8
    return torch.stack([radius * angle.cos(), radius * angle.sin()], 1)


def mixture(modes, which, n, std, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.tensor(which)[torch.randint(len(which), (n,), generator=g)]
    return modes[c] + std * torch.randn(n, 2, generator=g)


def test_true_mixture_covers_all_modes_with_the_chi2_share_of_high_quality():
    modes = ring8_modes()
    x = mixture(modes, list(range(8)), 20000, 0.02)
    r = mode_coverage(x, modes, 0.02)
    assert r["modes_captured"] == 8 and r["num_modes"] == 8
    # P(|N(0, s^2 I_2)| <= 3 s) = 1 - exp(-9/2) for a 2-D isotropic Gaussian
    assert r["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.004)
    assert r["reverse_kl"] < 0.01


def test_collapsed_generator_captures_only_its_modes():
    modes = ring8_modes()
    x = mixture(modes, [0, 3, 5], 6000, 0.02)
    r = mode_coverage(x, modes, 0.02)
    assert r["modes_captured"] == 3
    assert r["reverse_kl"] == pytest.approx(math.log(8 / 3), abs=0.02)


def test_off_mode_samples_are_not_high_quality():
    modes = ring8_modes()
    x = torch.zeros(1000, 2)                       # the centre of the ring: 2 away from every mode
    r = mode_coverage(x, modes, 0.02)
    assert r["modes_captured"] == 0 and r["high_quality"] == 0.0
    # 4 std away: not high quality at threshold 3, high quality at threshold 5
    y = modes[:1] + torch.tensor([[0.08, 0.0]])
    assert mode_coverage(y, modes, 0.02)["high_quality"] == 0.0
    assert mode_coverage(y, modes, 0.02, threshold=5.0)["high_quality"] == 1.0


def test_a_mode_needs_min_count_samples():
    modes = ring8_modes()
    x = torch.cat([modes[0].repeat(2490, 1), modes[1].repeat(10, 1)])
    r = mode_coverage(x, modes, 0.02)              # default min_count = 0.8% of 2,500 = 20
    assert r["min_count"] == 20 and r["modes_captured"] == 1
    assert mode_coverage(x, modes, 0.02, min_count=10)["modes_captured"] == 2


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same D"):
        mode_coverage(torch.zeros(5, 3), ring8_modes(), 0.02)
    with pytest.raises(ValueError, match="std"):
        mode_coverage(torch.zeros(5, 2), ring8_modes(), 0.0)
