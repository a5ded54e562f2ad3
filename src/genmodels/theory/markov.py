"""Proposition 6 on a discrete-state chain, by exact enumeration: the reverse of a Markov
forward process is Markov, q(x_{t-1} | x_t, x_{t+1}, ..., x_T) = q(x_{t-1} | x_t).

The joint q(x_{0:T}) of a chain with S states is a tensor with S^(T+1) entries (seed's proof:
q(x_{i:T}) = q(x_i) prod_j q(x_j | x_{j-1})); every conditional is a ratio of its marginals.
"""

from __future__ import annotations

import torch

from genmodels.theory.check import Check


def random_chain(states: int, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """q(x_0) (S,) and forward kernels Q_t[x_{t-1}, x_t] = q(x_t | x_{t-1}) (S, S), t = 1..T, with
    Dirichlet(1) rows (all entries positive)."""
    def dirichlet(*shape):
        e = -torch.log(torch.rand(*shape, generator=generator, dtype=torch.float64))
        return e / e.sum(-1, keepdim=True)

    return dirichlet(states), [dirichlet(states, states) for _ in range(steps)]


def markov_joint(q0: torch.Tensor, kernels: list[torch.Tensor]) -> torch.Tensor:
    """q(x_{0:T}) = q(x_0) prod_{t=1}^T q(x_t | x_{t-1}): a tensor of shape (S,) * (T + 1)."""
    joint = q0
    for Q in kernels:
        joint = joint.unsqueeze(-1) * Q.reshape((1,) * (joint.dim() - 1) + Q.shape)
    return joint


def second_order_joint(q0: torch.Tensor, kernels: list[torch.Tensor]) -> torch.Tensor:
    """A forward process that is NOT Markov (x_t depends on x_{t-1} and x_{t-2}):
    q(x_t | x_{t-1}, x_{t-2}) proportional to Q_t[x_{t-1}, x_t] Q_t[x_{t-2}, x_t]. For tests: the
    reverse process then fails to be Markov."""
    joint = q0.unsqueeze(-1) * kernels[0]
    for Q in kernels[1:]:
        k = Q.unsqueeze(0) * Q.unsqueeze(1)                    # [x_{t-2}, x_{t-1}, x_t]
        k = k / k.sum(-1, keepdim=True)
        joint = joint.unsqueeze(-1) * k.reshape((1,) * (joint.dim() - 2) + k.shape)
    return joint


def reverse_markov_gap(joint: torch.Tensor) -> tuple[float, float]:
    """For t = 1..T-1: max |q(x_{t-1} | x_{t:T}) - q(x_{t-1} | x_t)| over all states (the claim),
    and max |q(x_{t-1} | x_t) - q(x_{t-1}) q(x_t | x_{t-1}) / q(x_t)| (Bayes, seed eq. 4.1)."""
    T = joint.dim() - 1
    gap, bayes = 0.0, 0.0
    for t in range(1, T):
        tail = joint.sum(dim=tuple(range(t - 1))) if t > 1 else joint   # q(x_{t-1:T}), dims t-1..T
        cond_all = tail / tail.sum(0, keepdim=True)                     # q(x_{t-1} | x_{t:T})
        pair = tail.sum(dim=tuple(range(2, tail.dim())))                # q(x_{t-1}, x_t)
        cond_pair = pair / pair.sum(0, keepdim=True)                    # q(x_{t-1} | x_t)
        shape = pair.shape + (1,) * (tail.dim() - 2)
        gap = max(gap, float((cond_all - cond_pair.reshape(shape)).abs().max()))
        prev = pair.sum(1)                                              # q(x_{t-1})
        fwd = pair / prev.unsqueeze(1)                                  # q(x_t | x_{t-1})
        bayes_form = prev.unsqueeze(1) * fwd / pair.sum(0, keepdim=True)
        bayes = max(bayes, float((cond_pair - bayes_form).abs().max()))
    return gap, bayes


def check_prop6(joint_fn=markov_joint, *, states: int = 5, steps: int = 5, chains: int = 5, seed: int = 0,
                tol: float = 1e-12) -> Check:
    """Proposition 6: for `chains` random chains with `states` states and `steps` = T steps, the
    largest |q(x_{t-1} | x_t, ..., x_T) - q(x_{t-1} | x_t)| over t, states and chains (exactly 0
    up to rounding)."""
    g = torch.Generator().manual_seed(seed)
    gaps, bayes = [], []
    for _ in range(chains):
        q0, kernels = random_chain(states, steps, g)
        a, b = reverse_markov_gap(joint_fn(q0, kernels))
        gaps.append(a)
        bayes.append(b)
    value = max(gaps)
    return Check("Proposition 6, reverse process is Markov",
                 f"max |q(x_(t-1)|x_t..x_T) - q(x_(t-1)|x_t)| by enumeration, {chains} random "
                 f"{states}-state chains, T = {steps}",
                 value, "0", tol, value <= tol and max(bayes) <= tol,
                 details={"max gap per chain": gaps, "max Bayes (eq. 4.1) deviation": max(bayes)})
