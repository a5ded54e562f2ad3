"""Inception-Score-style score (Salimans et al. 2016, "Improved Techniques for Training GANs"):

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

from the class probabilities p(y|x) of a classifier on generated samples. It lies in [1, K]:
K when every sample is classified confidently and the classes are used uniformly, 1 when every
sample gets the same prediction. With the project's digit classifier it is "IS-mnist", not the
Inception Score (which needs InceptionV3's 1008 ImageNet classes).
"""

from __future__ import annotations

import numpy as np

from genmodels.errors import ConfigError, DataError


def inception_score(probs, splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    """probs (N, K), rows summing to 1 -> (mean, std) of exp(E KL(p(y|x) || p(y))) over `splits`
    equal chunks (Salimans et al. use 10), p(y) estimated within each chunk."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise DataError(f"inception_score: expected probabilities of shape (N, K), got {p.shape}")
    if (p < -1e-6).any() or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise DataError("inception_score: rows must be probabilities (non-negative, summing to 1); "
                        "pass softmax outputs")
    if not 1 <= splits <= len(p):
        raise ConfigError(f"inception_score: splits must be in [1, N={len(p)}], got {splits}")
    scores = []
    for chunk in np.array_split(p, splits):
        p_y = chunk.mean(axis=0, keepdims=True)  # p(y) = E_x p(y|x)
        kl = (chunk * (np.log(chunk + eps) - np.log(p_y + eps))).sum(axis=1)  # KL(p(y|x) || p(y))
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
