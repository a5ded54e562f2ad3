"""The VAE's configuration (`[model]` table, `genmodels train vae --<field>`) and sample options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genmodels.config_fields import check_choices, param, require
from genmodels.models.vae.decoders import DecoderName
from genmodels.nets.mlp import Activation

Net = Literal["mlp", "conv"]
Binarization = Literal["dynamic", "static", "none"]
Objective = Literal["elbo", "iwae"]


@dataclass
class VAEConfig:
    """Variational auto-encoder (Kingma & Welling 2013; docs/vae.md), beta-VAE (Higgins et al. 2017),
    importance-weighted training (IWAE, Burda et al. 2015)."""

    latent_dim: int = param(50, "dimension L of z (2 gives a latent-space map)")
    net: Net = param("mlp", "encoder/decoder networks")
    hidden: list[int] = param([500, 500], "MLP hidden widths (784-500-500-50 is Burda et al.'s VAE)")
    channels: int = param(32, "conv nets: channels of the first conv layer")
    conv_hidden: int = param(256, "conv nets: width of the fully connected layer")
    activation: Activation = param("relu", "hidden-layer activation")
    decoder: DecoderName = param("bernoulli", "likelihood p(x|z)")
    sigma: float = param(0.1, "std of the fixed-variance 'gaussian' decoder (data in [-1, 1])")
    binarize: Binarization = param("dynamic", "bernoulli decoder: resample {0,1} pixels from p=(x+1)/2 every batch "
                                   "(dynamic), threshold at 0.5 (static), or use grey levels as targets (none)")
    objective: Objective = param("elbo", "training loss: the ELBO, -(E_q[log p(x|z)] - beta KL) with the KL in "
                                 "closed form, or iwae, -L_k = -log (1/k) sum_j p(x, z_j) / q(z_j|x) (Burda et al. "
                                 "2015, eq. 8)")
    k: int = param(1, "importance samples per example during training (iwae: the k of L_k; elbo: the ELBO "
                      "averaged over k draws of z); costs k decoder passes per example")
    beta: float = param(1.0, "weight of the KL term (beta-VAE; 1 = the ELBO)")
    kl_warmup_steps: int = param(0, "linear warm-up of the KL weight from 0 to beta over this many steps (0 = off)")
    lr: float = param(1e-3, "Adam learning rate")
    eval_seed: int = param(0, "seed of the fixed binarisation of evaluation data (and of the IWAE samples when no "
                              "generator is given)")

    def validate(self) -> None:
        check_choices(self, "model")
        require(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        require(isinstance(self.hidden, (list, tuple)) and len(self.hidden) >= 1
                and all(isinstance(h, int) and h >= 1 for h in self.hidden),
                f"model.hidden must be a non-empty list of positive integers, got {self.hidden!r}")
        require(self.channels >= 1 and self.conv_hidden >= 1,
                f"model.channels and model.conv_hidden must be >= 1, got {self.channels}, {self.conv_hidden}")
        require(self.sigma > 0, f"model.sigma must be > 0, got {self.sigma}")
        require(self.beta >= 0, f"model.beta must be >= 0, got {self.beta}")
        require(self.kl_warmup_steps >= 0, f"model.kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")
        require(isinstance(self.k, int) and not isinstance(self.k, bool) and self.k >= 1,
                f"model.k must be an integer >= 1, got {self.k!r}")
        require(self.objective != "iwae" or (self.beta == 1 and self.kl_warmup_steps == 0),
                f"model.objective 'iwae' needs model.beta = 1 and model.kl_warmup_steps = 0, got beta = {self.beta}, "
                f"kl_warmup_steps = {self.kl_warmup_steps}: the IWAE bound has no separate KL term to weight")
        require(self.lr > 0, f"model.lr must be > 0, got {self.lr}")
        require(self.eval_seed >= 0, f"model.eval_seed must be >= 0, got {self.eval_seed}")


@dataclass
class VAESampleOptions:
    """Options of `genmodels sample` for a VAE run."""

    mean: bool = param(True, "return the decoder mean E[x|z] (e.g. Bernoulli probabilities) instead of a draw "
                             "from p(x|z)")
    temperature: float = param(1.0, "scale of the prior draw z ~ N(0, temperature^2 I)")

    def validate(self) -> None:
        require(self.temperature >= 0, f"sample.temperature must be >= 0, got {self.temperature}")


@dataclass
class VAEEvaluateOptions:
    """Options of `evaluate("nll")` for a VAE run (the IWAE bound's K is the shared `k`)."""

    chunk: int = param(1000, "IWAE importance samples drawn per decoder pass (memory, not the value)")

    def validate(self) -> None:
        require(self.chunk >= 1, f"chunk must be >= 1, got {self.chunk}")
