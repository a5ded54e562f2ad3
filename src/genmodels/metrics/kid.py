"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
estimate of the squared maximum mean discrepancy with the cubic polynomial kernel

    k(x, y) = (x . y / d + 1)^3

averaged over random subsets (default 100 subsets of 1,000), reported as mean and standard
deviation over the subsets. Unlike the Frechet distance it is unbiased, so two samples of one
distribution give a value near 0 (within its std), and it can be negative.
"""

from __future__ import annotations

import numpy as np

from genmodels.errors import ConfigError, DataError


def polynomial_kernel(X: np.ndarray, Y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """k(x, y) = (x . y / d + coef0)^degree for X (m, d), Y (n, d) -> (m, n)."""
    d = X.shape[1]
    return (X @ Y.T / d + coef0) ** degree


def mmd2_unbiased(X: np.ndarray, Y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between X (m, d) and Y (n, d) (Gretton et al. 2012, "A Kernel Two-Sample Test", Lemma 6):

    1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j) - 2/(mn) sum_{i,j} k(x_i, y_j)
    """
    m, n = len(X), len(Y)
    if m < 2 or n < 2:
        raise DataError(f"mmd2_unbiased needs at least 2 examples per set, got {m} and {n}")
    K_XX = polynomial_kernel(X, X, degree, coef0)
    K_YY = polynomial_kernel(Y, Y, degree, coef0)
    K_XY = polynomial_kernel(X, Y, degree, coef0)
    term_xx = (K_XX.sum() - np.trace(K_XX)) / (m * (m - 1))
    term_yy = (K_YY.sum() - np.trace(K_YY)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * K_XY.sum() / (m * n))


def kernel_inception_distance(
    features1,
    features2,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    coef0: float = 1.0,
) -> tuple[float, float]:
    """KID between features1 (N1, D) and features2 (N2, D): (mean, std) of the unbiased MMD^2
    over `num_subsets` random subsets of `subset_size` drawn without replacement from each set
    (subset_size is capped at min(N1, N2)). `seed` drives a local numpy Generator."""
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise DataError(f"kernel_inception_distance: feature shapes {f1.shape} and {f2.shape} do not match as (N, D)")
    if num_subsets < 1 or subset_size < 2:
        raise ConfigError(f"KID needs num_subsets >= 1 and subset_size >= 2, got {num_subsets} and {subset_size}")
    m = min(subset_size, len(f1), len(f2))
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for s in range(num_subsets):
        X = f1[rng.choice(len(f1), m, replace=False)]
        Y = f2[rng.choice(len(f2), m, replace=False)]
        values[s] = mmd2_unbiased(X, Y, degree, coef0)
    return float(values.mean()), float(values.std())
