"""Code-to-class accuracy under the best one-to-one (Hungarian) matching."""

import itertools

import numpy as np
import pytest
import torch

from genmodels.errors import DataError
from genmodels.metrics.clustering import code_accuracy, contingency


def brute_force_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Best accuracy over every injective assignment of codes to classes (small cases only)."""
    codes, classes = np.unique(pred), np.unique(true)
    best = 0
    for perm in itertools.permutations(classes, min(len(codes), len(classes))):
        for chosen in itertools.combinations(codes, len(perm)):
            mapping = dict(zip(chosen, perm, strict=True))
            best = max(best, sum(mapping.get(p) == t for p, t in zip(pred, true, strict=True)))
    return best / len(pred)


def test_relabelled_codes_score_one():
    labels = torch.arange(10).repeat(7)
    codes = (labels * 3 + 1) % 10              # a permutation of the classes
    result = code_accuracy(codes, labels)
    assert result["accuracy"] == 1.0
    assert result["mapping"] == {int((c * 3 + 1) % 10): c for c in range(10)}
    assert result["n"] == 70


def test_one_to_one_matching_beats_majority_vote():
    # codes 0 and 1 both mostly hold class 0; only one of them may take it
    pred = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    true = np.array([0, 0, 1, 0, 0, 2, 2, 2])
    result = code_accuracy(pred, true)
    assert result["accuracy"] == pytest.approx(brute_force_accuracy(pred, true))
    # giving class 0 to code 0 leaves at most 4 matches; the best is 0->1, 1->0, 2->2 (1 + 2 + 2)
    assert result["accuracy"] == pytest.approx(5 / 8)
    assert result["mapping"] == {0: 1, 1: 0, 2: 2}
    assert result["purity"] == pytest.approx(6 / 8)
    assert result["purity"] >= result["accuracy"]


@pytest.mark.parametrize("n_codes,n_classes", [(4, 4), (5, 3), (3, 5)])
def test_matches_brute_force(n_codes, n_classes):
    rng = np.random.default_rng(n_codes * 10 + n_classes)
    for _ in range(5):
        true = rng.integers(0, n_classes, 40)
        pred = np.where(rng.random(40) < 0.6, true % n_codes, rng.integers(0, n_codes, 40))
        assert code_accuracy(pred, true)["accuracy"] == pytest.approx(brute_force_accuracy(pred, true))


def test_contingency_counts():
    counts, codes, classes = contingency([1, 1, 5], [7, 8, 8])
    assert codes.tolist() == [1, 5] and classes.tolist() == [7, 8]
    assert counts.tolist() == [[1, 1], [0, 1]]


def test_bad_input_is_a_data_error():
    with pytest.raises(DataError, match="3 predicted codes but 2 labels"):
        code_accuracy([0, 1, 2], [0, 1])
    with pytest.raises(DataError, match="no examples"):
        code_accuracy([], [])
