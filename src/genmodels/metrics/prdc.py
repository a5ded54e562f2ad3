"""Precision / recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
Assessing Generative Models") and density / coverage (Naeem et al. 2020, "Reliable Fidelity and
Diversity Metrics for Generative Models") from k-nearest-neighbour balls in feature space.

With NND_k(x) the distance from x to its k-th nearest neighbour in its own set (itself excluded),
real features X_i (N) and fake features Y_j (M):

    precision = 1/M sum_j 1[ exists i: ||Y_j - X_i|| < NND_k(X_i) ]
    recall    = 1/N sum_i 1[ exists j: ||X_i - Y_j|| < NND_k(Y_j) ]
    density   = 1/(kM) sum_j sum_i 1[ ||Y_j - X_i|| < NND_k(X_i) ]
    coverage  = 1/N sum_i 1[ min_j ||X_i - Y_j|| < NND_k(X_i) ]

Defaults: k = 3 for precision/recall (Kynkaanniemi et al. 2019), k = 5 for density/coverage
(Naeem et al. 2020); docs/metrics.md has both. The formulas are those of the reference package
`prdc` (Naeem et al.); here the distance matrices are built in row blocks so that 10,000 x 10,000
comparisons need ~100 MB instead of ~2.4 GB.
"""

from __future__ import annotations

import numpy as np

from genmodels.errors import DataError

_BLOCK = 1024  # rows of a distance block (block x N float64)


def _check(real, fake) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(real, dtype=np.float64)
    Y = np.asarray(fake, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise DataError(f"prdc: real and fake features must be (N, D) and (M, D), got {X.shape} and {Y.shape}")
    return X, Y


def _distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of A (a, D) and B (b, D) -> (a, b)."""
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.sqrt(np.maximum(d2, 0.0))


def knn_radii(X: np.ndarray, k: int | tuple[int, ...]) -> np.ndarray:
    """NND_k for each row of X (N, D): distance to the k-th nearest other point (the (k+1)-th
    smallest distance counting the point itself). k an int -> (N,); a tuple of S ks -> (S, N)."""
    ks = (k,) if isinstance(k, int) else tuple(k)
    if not all(1 <= kk < len(X) for kk in ks):
        raise DataError(f"prdc: k = {max(ks)} nearest neighbours needs more than {max(ks)} examples, got {len(X)}")
    radii = np.empty((len(ks), len(X)))
    for s in range(0, len(X), _BLOCK):
        d = np.partition(_distances(X[s : s + _BLOCK], X), ks, axis=1)  # one partition for every k
        radii[:, s : s + _BLOCK] = d[:, list(ks)].T
    return radii[0] if isinstance(k, int) else radii


def _prdc_many(X: np.ndarray, Y: np.ndarray, ks: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """prdc for several k with one pass over the real-fake distance blocks."""
    r_real = knn_radii(X, ks)  # (S, N): NND_k(X_i)
    r_fake = knn_radii(Y, ks)  # (S, M): NND_k(Y_j)
    S = len(ks)
    in_real_ball = np.zeros((S, len(Y)), dtype=bool)  # precision: Y_j inside some real ball
    count_real_balls = np.zeros((S, len(Y)))          # density: how many real balls hold Y_j
    recalled = np.empty((S, len(X)), dtype=bool)      # recall: X_i inside some fake ball
    covered = np.empty((S, len(X)), dtype=bool)       # coverage: nearest fake inside X_i's ball
    for s in range(0, len(X), _BLOCK):
        d = _distances(X[s : s + _BLOCK], Y)  # (b, M)
        d_min = d.min(axis=1)
        for i in range(S):
            inside = d < r_real[i, s : s + _BLOCK, None]
            in_real_ball[i] |= inside.any(axis=0)
            count_real_balls[i] += inside.sum(axis=0)
            recalled[i, s : s + _BLOCK] = (d < r_fake[i][None, :]).any(axis=1)
            covered[i, s : s + _BLOCK] = d_min < r_real[i, s : s + _BLOCK]
    return {
        k: {
            "precision": float(in_real_ball[i].mean()),
            "recall": float(recalled[i].mean()),
            "density": float(count_real_balls[i].mean() / k),
            "coverage": float(covered[i].mean()),
        }
        for i, k in enumerate(ks)
    }


def prdc(real, fake, k: int) -> dict[str, float]:
    """Precision, recall, density and coverage of fake (M, D) against real (N, D), all with the
    same k (what the `prdc` package's `compute_prdc(real, fake, nearest_k=k)` returns)."""
    X, Y = _check(real, fake)
    return _prdc_many(X, Y, (k,))[k]


def precision_recall_density_coverage(real, fake, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Precision and recall with k_pr neighbours (Kynkaanniemi et al. use 3), density and
    coverage with k_dc neighbours (Naeem et al. use 5), from one pass over the distances."""
    X, Y = _check(real, fake)
    r = _prdc_many(X, Y, tuple(sorted({k_pr, k_dc})))
    return {"precision": r[k_pr]["precision"], "recall": r[k_pr]["recall"],
            "density": r[k_dc]["density"], "coverage": r[k_dc]["coverage"]}
