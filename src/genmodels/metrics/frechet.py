"""Frechet distance between Gaussian fits of two feature sets (Heusel et al. 2017, "GANs Trained
by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium").

    d^2 = ||mu_1 - mu_2||^2 + Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^{1/2})

On InceptionV3 pool features with the standard weights this is FID; on any other features it is
"FD-<extractor>" (docs/metrics.md, "Names are honest"). Pure functions on arrays, as in pytorch-fid's
`calculate_frechet_distance`.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from genmodels.errors import DataError, GenmodelsError


def _as_features(f, what: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise DataError(f"{what}: expected a feature array of shape (N >= 2, D), got {f.shape}")
    if not np.isfinite(f).all():
        raise DataError(f"{what}: features contain NaN or inf")
    return f


def gaussian_fit(features) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> (mu (D,), Sigma (D, D)): sample mean and unbiased covariance."""
    f = _as_features(features, "gaussian_fit")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu: (D,), sigma: (D, D). The matrix square root is scipy's sqrtm; if it is not finite
    (near-singular product), eps * I is added to both covariances and it is retried. A complex
    result whose diagonal has an imaginary part larger than 1e-3 raises GenmodelsError;
    smaller imaginary parts (rounding) are dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise DataError(
            f"frechet_distance: shapes do not match: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular covariances (dead features) are handled below, not warned about
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)  # (Sigma_1 Sigma_2)^{1/2}
        if not np.isfinite(covmean).all():
            offset = np.eye(len(mu1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        max_imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if max_imag > 1e-3:
            raise GenmodelsError(
                f"frechet_distance: the matrix square root has an imaginary component {max_imag:.3g} on its "
                "diagonal; the covariances are too ill-conditioned (use more samples than feature dimensions)"
            )
        covmean = covmean.real
    d2 = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(d2, 0.0))


def frechet_distance_features(features1, features2, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussian fits of two feature arrays (N1, D) and (N2, D)."""
    mu1, sigma1 = gaussian_fit(features1)
    mu2, sigma2 = gaussian_fit(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)
