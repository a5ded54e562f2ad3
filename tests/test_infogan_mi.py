"""InfoGAN's codes and the mutual-information bound L_I as pure functions (Chen et al. 2016, eq. 5)."""

import math

import pytest
import torch
import torch.nn.functional as F

from genmodels.models.infogan.codes import CodeSpec, sample_codes
from genmodels.models.infogan.mi import (
    QOutput,
    categorical_log_q,
    gaussian_log_q,
    info_loss,
    info_terms,
    q_output_dim,
    split_q,
)


def test_entropy_of_the_priors():
    H = CodeSpec(categorical=(10, 3), continuous=2).entropy()
    assert H == pytest.approx({"cat0": math.log(10), "cat1": math.log(3), "cont0": math.log(2), "cont1": math.log(2)})


def test_sampled_codes_follow_their_priors_and_the_generator():
    spec = CodeSpec(categorical=(10,), continuous=2)
    c = sample_codes(spec, 20000, torch.Generator().manual_seed(0))
    counts = torch.bincount(c.cat[0], minlength=10).float() / 20000
    assert (counts - 0.1).abs().max() < 0.01
    assert c.cont.min() >= -1 and c.cont.max() <= 1
    assert c.cont.mean(0).abs().max() < 0.02 and (c.cont.var(0) - 1 / 3).abs().max() < 0.01   # Var U(-1,1) = 1/3
    again = sample_codes(spec, 20000, torch.Generator().manual_seed(0))
    assert torch.equal(c.cat[0], again.cat[0]) and torch.equal(c.cont, again.cont)
    g_input = c.to_input(spec)
    assert g_input.shape == (20000, spec.input_dim) == (20000, 12)
    assert torch.equal(g_input[:, :10].argmax(1), c.cat[0]) and torch.equal(g_input[:, 10:], c.cont)


def test_bad_code_spec():
    with pytest.raises(ValueError, match="K >= 2"):
        CodeSpec(categorical=(1,))


def test_categorical_log_q_is_log_softmax_and_stable():
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    c = torch.tensor([0, 1, 2, 3, 4, 0])
    expected = torch.log(torch.softmax(logits, 1))[torch.arange(6), c]
    assert torch.allclose(categorical_log_q(logits, c), expected, atol=1e-6)
    huge = torch.tensor([[1e4, -1e4, 0.0]])
    assert categorical_log_q(huge, torch.tensor([1])).item() == pytest.approx(-2e4)   # softmax then log gives -inf


def test_gaussian_log_q_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    c, mu, log_var = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    normal = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    assert torch.allclose(gaussian_log_q(c, mu, log_var), normal.log_prob(c), atol=1e-5)
    assert torch.allclose(gaussian_log_q(c, mu), torch.distributions.Normal(mu, 1.0).log_prob(c), atol=1e-6)


def test_split_q_layout():
    spec = CodeSpec(categorical=(10, 4), continuous=2)
    assert q_output_dim(spec, False) == 16 and q_output_dim(spec, True) == 18
    q = torch.arange(18.0).repeat(3, 1)
    out = split_q(q, spec, learn_var=True)
    assert [t.shape for t in out.cat_logits] == [(3, 10), (3, 4)]
    assert out.mean[0].tolist() == [14, 15] and out.log_var[0].tolist() == [16, 17]
    assert split_q(q[:, :16], spec, learn_var=False).log_var is None
    with pytest.raises(ValueError, match="width 18"):
        split_q(q, spec, learn_var=False)


def _q_for(codes, spec, confidence: float, noise: float = 0.0) -> QOutput:
    logits = [confidence * F.one_hot(c, k).float() for c, k in zip(codes.cat, spec.categorical, strict=True)]
    return QOutput(cat_logits=logits, mean=codes.cont + noise, log_var=None)


def test_L_I_reaches_H_for_a_perfect_Q_and_is_lower_otherwise():
    spec = CodeSpec(categorical=(10,), continuous=1)
    codes = sample_codes(spec, 512, torch.Generator().manual_seed(3))
    H = spec.entropy()
    perfect = info_terms(_q_for(codes, spec, confidence=50.0), codes, spec)
    assert perfect["cat0"].item() == pytest.approx(H["cat0"], abs=1e-6)           # L_I <= I(c; x) <= H(c)
    ignorant = info_terms(_q_for(codes, spec, confidence=0.0), codes, spec)
    assert ignorant["cat0"].item() == pytest.approx(0.0, abs=1e-6)                # uniform Q: log(1/K) + log K
    # continuous: a unit-variance Gaussian centred on c gives log N(0; 0, 1) + log 2
    assert perfect["cont0"].item() == pytest.approx(-0.5 * math.log(2 * math.pi) + math.log(2), abs=1e-6)
    off = info_terms(_q_for(codes, spec, confidence=50.0, noise=0.5), codes, spec)
    assert off["cont0"].item() == pytest.approx(perfect["cont0"].item() - 0.125, abs=1e-6)


def test_info_loss_weights_each_code_type():
    terms = {"cat0": torch.tensor(2.0), "cat1": torch.tensor(1.0), "cont0": torch.tensor(-0.5)}
    assert info_loss(terms, 1.0, 0.1).item() == pytest.approx(-(2.0 + 1.0 + 0.1 * -0.5))
    assert info_loss(terms, 0.0, 0.0).item() == 0.0
    with pytest.raises(ValueError):
        info_loss({}, 1.0, 0.1)
