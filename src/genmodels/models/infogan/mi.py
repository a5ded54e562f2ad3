"""The variational lower bound L_I of the mutual information I(c; G(z, c)) (Chen et al. 2016,
Lemma 5.1 and eq. 5; docs/infogan.md, "The objective"), as pure functions of Q's outputs and the
codes drawn.

    L_I(G, Q) = E_{c ~ p(c), x ~ G(z, c)}[log Q(c | x)] + H(c)  <=  I(c; G(z, c))

Q(c | x) factorises over the codes, so L_I is a sum of one term per code:
  - categorical c_i: Q(c_i | x) = softmax(logits_i(x)); log Q(c_i | x) = -cross_entropy(logits_i, c_i),
    computed on the logits (log-softmax inside cross_entropy), never softmax then log;
  - continuous c_j:  Q(c_j | x) = N(mu_j(x), sigma_j^2(x)), sigma_j = 1 unless Q also outputs
    log sigma_j^2 (a factored Gaussian).
The objective is min_{G,Q} max_D V(D, G) - sum_i lambda_i L_I_i (Chen et al. eq. 6), with
lambda = 1 for categorical codes and smaller (0.1) for continuous ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genmodels.models.infogan.codes import Codes, CodeSpec

LOG_2PI = math.log(2 * math.pi)


@dataclass
class QOutput:
    """Q's parameters for a minibatch of m images: `cat_logits` one (m, K_i) tensor per categorical
    code, `mean` (m, L) the Gaussian means of the continuous codes, `log_var` (m, L) their
    log-variances, or None for unit variance."""

    cat_logits: list[torch.Tensor]
    mean: torch.Tensor
    log_var: torch.Tensor | None


def q_output_dim(spec: CodeSpec, learn_var: bool) -> int:
    """Width of Q's head: sum K_i logits, L means, and L log-variances when learned."""
    return sum(spec.categorical) + spec.continuous * (2 if learn_var else 1)


def split_q(q: torch.Tensor, spec: CodeSpec, learn_var: bool) -> QOutput:
    """Cut Q's raw head output (m, q_output_dim) into logits, means and log-variances."""
    if q.shape[1] != q_output_dim(spec, learn_var):
        raise ValueError(f"Q's output has width {q.shape[1]}, the codes need {q_output_dim(spec, learn_var)}")
    parts = list(torch.split(q, [*spec.categorical, spec.continuous, spec.continuous if learn_var else 0], dim=1))
    return QOutput(cat_logits=parts[:len(spec.categorical)], mean=parts[-2], log_var=parts[-1] if learn_var else None)


def categorical_log_q(logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """log Q(c | x) = log softmax(logits)[c] for logits (m, K) and values c (m,) -> (m,).
    Computed as -cross_entropy on the logits (numerically stable)."""
    return -F.cross_entropy(logits, c, reduction="none")


def gaussian_log_q(c: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor | None = None) -> torch.Tensor:
    """log N(c; mean, exp(log_var)) elementwise for (m, L) tensors -> (m, L); unit variance when
    log_var is None:  -1/2 [log 2 pi + log sigma^2 + (c - mu)^2 / sigma^2]."""
    if log_var is None:
        return -0.5 * (LOG_2PI + (c - mean) ** 2)
    return -0.5 * (LOG_2PI + log_var + (c - mean) ** 2 * torch.exp(-log_var))


def info_terms(q: QOutput, codes: Codes, spec: CodeSpec) -> dict[str, torch.Tensor]:
    """L_I per code, {"cat0": ..., "cont0": ...}: the minibatch mean of log Q(c_i | x) plus H(c_i)
    (Chen et al. eq. 5), each a scalar that keeps the graph to Q and, through x = G(z, c), to G."""
    H = spec.entropy()
    terms = {}
    for i, (logits, c) in enumerate(zip(q.cat_logits, codes.cat, strict=True)):
        terms[f"cat{i}"] = categorical_log_q(logits, c).mean() + H[f"cat{i}"]
    if spec.continuous:
        log_q = gaussian_log_q(codes.cont, q.mean, q.log_var).mean(0)        # (L,)
        for j in range(spec.continuous):
            terms[f"cont{j}"] = log_q[j] + H[f"cont{j}"]
    return terms


def info_loss(terms: dict[str, torch.Tensor], lambda_cat: float, lambda_cont: float) -> torch.Tensor:
    """-sum_i lambda_i L_I_i: the term the G and Q players descend (Chen et al. eq. 6)."""
    if not terms:
        raise ValueError("info_loss needs at least one code's L_I term")
    return -torch.stack([(lambda_cat if name.startswith("cat") else lambda_cont) * L_I
                         for name, L_I in terms.items()]).sum()
