"""InfoGAN's latent codes c (Chen et al. 2016, section 4; docs/infogan.md).

The generator's input is (z, c): z the incompressible noise, c = (c_1, ..., c_L) the codes meant
to be disentangled, each drawn independently from its prior p(c) = prod_i p(c_i):
  - categorical codes c_i ~ Cat(K_i) (uniform over K_i values), fed to G one-hot;
  - continuous codes  c_j ~ Uniform(-1, 1), fed to G as they are.
For MNIST the paper uses one Cat(10) and two Uniform(-1, 1) codes next to 62-d noise.

H(c) = sum_i H(c_i) is the constant in L_I = E[log Q(c | x)] + H(c) (Chen et al. eq. 5):
log K_i nats for a uniform categorical code (the most L_I can reach for it, since L_I <= I <= H),
and the differential entropy log 2 for Uniform(-1, 1) (no upper bound on L_I: a differential
entropy bounds nothing when G is deterministic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

UNIFORM_LOW, UNIFORM_HIGH = -1.0, 1.0   # support of a continuous code's prior


@dataclass(frozen=True)
class CodeSpec:
    """The codes' layout: `categorical` holds K_i for each categorical code, `continuous` the number
    of Uniform(-1, 1) codes."""

    categorical: tuple[int, ...] = (10,)
    continuous: int = 2

    def __post_init__(self) -> None:
        if any(k < 2 for k in self.categorical):
            raise ValueError(f"every categorical code needs K >= 2 values, got {list(self.categorical)}")
        if self.continuous < 0:
            raise ValueError(f"the number of continuous codes must be >= 0, got {self.continuous}")

    @property
    def input_dim(self) -> int:
        """Width of c as fed to G: one-hot blocks of the categorical codes, then the continuous codes."""
        return sum(self.categorical) + self.continuous

    def names(self) -> list[str]:
        """Log names of the codes, in order: cat0, cat1, ..., cont0, cont1, ..."""
        return [f"cat{i}" for i in range(len(self.categorical))] + [f"cont{j}" for j in range(self.continuous)]

    def entropy(self) -> dict[str, float]:
        """H(c_i) in nats per code: log K for Cat(K), log(high - low) = log 2 for Uniform(-1, 1)."""
        h = {f"cat{i}": math.log(k) for i, k in enumerate(self.categorical)}
        h.update({f"cont{j}": math.log(UNIFORM_HIGH - UNIFORM_LOW) for j in range(self.continuous)})
        return h


@dataclass
class Codes:
    """A minibatch of codes: `cat` a list of (m,) int64 values (one tensor per categorical code),
    `cont` (m, continuous) floats in [-1, 1]."""

    cat: list[torch.Tensor]
    cont: torch.Tensor

    def __len__(self) -> int:
        return len(self.cont)

    def to_input(self, spec: CodeSpec) -> torch.Tensor:
        """c as G's input: (m, spec.input_dim) = [one_hot(c_cat_0), ..., c_cont]."""
        parts = [F.one_hot(c, k).to(self.cont.dtype) for c, k in zip(self.cat, spec.categorical, strict=True)]
        return torch.cat(parts + [self.cont], dim=1)


def sample_codes(spec: CodeSpec, m: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> Codes:
    """m draws of c ~ p(c) from the explicit `generator`: each categorical code uniform over its K
    values, each continuous code Uniform(-1, 1)."""
    cat = [torch.randint(k, (m,), generator=generator, device=device) for k in spec.categorical]
    u = torch.rand(m, spec.continuous, generator=generator, device=device)
    return Codes(cat=cat, cont=UNIFORM_LOW + (UNIFORM_HIGH - UNIFORM_LOW) * u)
