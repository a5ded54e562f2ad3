"""The metric maths against closed forms and the reference package `prdc`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from genmodels.errors import DataError, GenmodelsError
from genmodels.metrics import frechet, prdc
from genmodels.metrics.frechet import frechet_distance, frechet_distance_features, gaussian_fit
from genmodels.metrics.inception_score import inception_score
from genmodels.metrics.kid import kernel_inception_distance, mmd2_unbiased, polynomial_kernel


def test_frechet_is_zero_for_identical_sets():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance_features(f, f) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance_features(f, f + 0.5) > 16 * 0.25 * 0.99  # a shift of 0.5 in 16 dims


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    # For diagonal covariances: d^2 = ||mu1 - mu2||^2 + sum_i (sqrt(s1_i) - sqrt(s2_i))^2
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # and from samples of those Gaussians, through gaussian_fit
    rng = np.random.default_rng(1)
    a = mu1 + np.sqrt(s1) * rng.normal(size=(100_000, 3))
    b = mu2 + np.sqrt(s2) * rng.normal(size=(100_000, 3))
    assert frechet_distance_features(a, b) == pytest.approx(expected, rel=0.02)


def test_frechet_retries_with_eps_and_rejects_imaginary_parts(monkeypatch):
    real_sqrtm = scipy.linalg.sqrtm
    calls = []

    def failing_once(m, *a, **k):
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(frechet.scipy.linalg, "sqrtm", failing_once)
    s = np.diag([1.0, 2.0])
    assert frechet_distance(np.zeros(2), s, np.zeros(2), s, eps=1e-3) == pytest.approx(0.0, abs=1e-2)
    assert np.allclose(calls[1], (s + 1e-3 * np.eye(2)) @ (s + 1e-3 * np.eye(2)))

    monkeypatch.setattr(frechet.scipy.linalg, "sqrtm", lambda m, *a, **k: real_sqrtm(m) + 0.1j * np.eye(len(m)))
    with pytest.raises(GenmodelsError, match="imaginary"):
        frechet_distance(np.zeros(2), s, np.zeros(2), s)


def test_frechet_rejects_bad_shapes():
    with pytest.raises(DataError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(DataError):
        gaussian_fit(np.zeros(5))


def test_mmd2_unbiased_equals_its_definition():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(X[i], X[j]) for i in range(6) for j in range(6) if i != j) / (6 * 5)
    yy = sum(k(Y[i], Y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(X[i], Y[j]) for i in range(6) for j in range(5)) / (6 * 5)
    assert mmd2_unbiased(X, Y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(X, Y).shape == (6, 5)


def test_kid_is_zero_within_std_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2000, 32)), rng.normal(size=(2000, 32))
    mean, std = kernel_inception_distance(a, b, num_subsets=20, subset_size=500)
    assert abs(mean) < 3 * std + 1e-12
    shifted = rng.normal(loc=0.3, size=(2000, 32))
    mean2, std2 = kernel_inception_distance(a, shifted, num_subsets=20, subset_size=500)
    assert mean2 > 10 * std2 and mean2 > 10 * abs(mean)


# Reference values from the PyPI package `prdc` 0.2 (Naeem et al.),
# compute_prdc(real, fake, nearest_k=k) on the fixture below.
PRDC_REFERENCE = {
    3: {"precision": 0.7133333333333334, "recall": 0.905, "density": 0.6222222222222222, "coverage": 0.63},
    5: {"precision": 0.8266666666666667, "recall": 0.97, "density": 0.6373333333333333, "coverage": 0.84},
}


def _prdc_fixture():
    rng = np.random.default_rng(2024)
    return rng.normal(size=(200, 8)), rng.normal(loc=0.3, scale=1.2, size=(150, 8))


@pytest.mark.parametrize("block", [1024, 37])  # one block, and many uneven blocks
def test_prdc_reproduces_the_reference_package(monkeypatch, block):
    monkeypatch.setattr(prdc, "_BLOCK", block)
    real, fake = _prdc_fixture()
    for k, expected in PRDC_REFERENCE.items():
        got = prdc.prdc(real, fake, k)
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-12), (k, key)
    combined = prdc.precision_recall_density_coverage(real, fake, k_pr=3, k_dc=5)
    assert combined == {"precision": PRDC_REFERENCE[3]["precision"], "recall": PRDC_REFERENCE[3]["recall"],
                        "density": PRDC_REFERENCE[5]["density"], "coverage": PRDC_REFERENCE[5]["coverage"]}


def test_knn_radii_excludes_the_point_itself():
    X = np.array([[0.0], [1.0], [3.0], [6.0]])
    assert np.allclose(prdc.knn_radii(X, 1), [1.0, 1.0, 2.0, 3.0])
    with pytest.raises(DataError):
        prdc.knn_radii(X, 4)


def test_inception_score_extremes():
    K = 10
    confident_uniform = np.eye(K)[np.arange(1000) % K]
    mean, std = inception_score(confident_uniform, splits=10)
    assert mean == pytest.approx(K, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    constant = np.tile(np.random.default_rng(4).dirichlet(np.ones(K)), (1000, 1))
    assert inception_score(constant, splits=5)[0] == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(DataError):
        inception_score(np.ones((10, K)))  # rows do not sum to 1
