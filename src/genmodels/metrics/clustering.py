"""Code-to-class accuracy: how well an unsupervised code (InfoGAN's categorical c, a cluster id)
matches the labels under the best one-to-one matching of codes to classes (the Hungarian
algorithm, scipy's linear_sum_assignment), the protocol behind InfoGAN's "5% error" on MNIST
(Chen et al. 2016, section 7.1)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from genmodels.errors import DataError


def contingency(pred_codes, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts (n_codes, n_classes), code values, class values): counts[i, j] = #{pred = code i, label = class j}."""
    pred = np.asarray(pred_codes.cpu() if isinstance(pred_codes, torch.Tensor) else pred_codes).reshape(-1)
    true = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if pred.shape != true.shape:
        raise DataError(f"code_accuracy: {pred.size} predicted codes but {true.size} labels")
    if pred.size == 0:
        raise DataError("code_accuracy: no examples")
    codes, pred_idx = np.unique(pred, return_inverse=True)
    classes, true_idx = np.unique(true, return_inverse=True)
    counts = np.zeros((len(codes), len(classes)), dtype=np.int64)
    np.add.at(counts, (pred_idx, true_idx), 1)
    return counts, codes, classes


def code_accuracy(pred_codes, labels) -> dict:
    """Accuracy of `pred_codes` (N,) against `labels` (N,) under the one-to-one matching of codes to
    classes that maximises the matches. Codes or classes left unmatched (when their numbers
    differ) count as errors.

    Returns {"accuracy": float, "n": int, "mapping": {code: class}, "counts": (n_codes, n_classes)
    array, "purity": float} where purity lets several codes share a class (each code votes for its
    majority class), an upper bound on the one-to-one accuracy.
    """
    counts, codes, classes = contingency(pred_codes, labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    n = int(counts.sum())
    return {
        "accuracy": float(counts[rows, cols].sum() / n),
        "n": n,
        "mapping": {codes[r].item(): classes[c].item() for r, c in zip(rows, cols, strict=True)},
        "counts": counts,
        "purity": float(counts.max(axis=1).sum() / n),
    }
