"""InfoGAN configuration. The defaults are the paper's MNIST set-up (Chen et al. 2016, section 7.1
and appendix C.1): one Cat(10) and two Uniform(-1, 1) codes next to 62-d noise, lambda = 1 for
the categorical code and 0.1 for the continuous ones, unit-variance Gaussian Q for the continuous
codes, Adam with learning rates 2e-4 (D and Q) and 1e-3 (G)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genmodels.config_fields import check_choices, param, require
from genmodels.models.gan.config import AdamBetas, Noise
from genmodels.models.infogan.codes import CodeSpec

Arch = Literal["auto", "conv", "mlp"]
GANLoss = Literal["nonsaturating", "minimax", "hinge"]   # the GAN losses that need no gradient penalty


@dataclass
class InfoGANConfig:
    """[model] table for `name = "infogan"`."""

    categorical: list[int] = param([10], "K of each categorical code c_i ~ Cat(K) (comma-separated; [] for none)")
    continuous: int = param(2, "number of continuous codes c_j ~ Uniform(-1, 1)")
    z_dim: int = param(62, "dimension of the incompressible noise z")
    noise: Noise = param("uniform", "prior of z: uniform U(-1, 1) (the paper's code) or normal N(0, I)")
    lambda_cat: float = param(1.0, "weight lambda of L_I for the categorical codes (Chen et al. eq. 6)")
    lambda_cont: float = param(1.0, "weight lambda of L_I for the continuous codes (1 as in the authors' MNIST "
                               "code; the paper suggests smaller values when the scales differ, e.g. 0.1)")
    learn_var: bool = param(False, "Q outputs a log-variance for each continuous code (else unit variance)")
    loss: GANLoss = param("nonsaturating", "the GAN part V(D, G): nonsaturating (seed Remark 1), minimax (seed "
                          "eq. 2.3) or hinge")
    k: int = param(1, "discriminator steps per generator step (Algorithm 2.1)")
    arch: Arch = param("auto", "networks: auto (the paper's conv nets for 28x28/32x32 images, else MLPs), conv, "
                       "or mlp")
    width: int = param(64, "channels of the first conv layer of D (G's last hidden up-conv); the paper: 64")
    hidden: int = param(1024, "width of the fully connected layer of G and of D's body; the paper: 1024")
    q_hidden: int = param(128, "width of Q's own hidden layer; the paper: 128")
    mlp_width: int = param(256, "hidden width of the MLP nets (arch = mlp)")
    mlp_depth: int = param(2, "hidden layers of the MLP nets (arch = mlp)")
    lr_g: float = param(1e-3, "Adam learning rate of G")
    lr_d: float = param(2e-4, "Adam learning rate of D and Q (which share D's body)")
    betas: AdamBetas = param("dcgan", "Adam betas: dcgan (0.5, 0.999), pytorch (0.9, 0.999) or wgan-gp (0.0, 0.9)")
    ema: bool = param(False, "ask the trainer to keep an exponential moving average of G's weights")

    def code_spec(self) -> CodeSpec:
        return CodeSpec(categorical=tuple(self.categorical), continuous=self.continuous)

    def validate(self) -> None:
        check_choices(self, "model")
        require(all(k >= 2 for k in self.categorical),
                f"model.categorical: every categorical code needs K >= 2 values, got {list(self.categorical)}")
        require(self.continuous >= 0, f"model.continuous must be >= 0, got {self.continuous}")
        require(len(self.categorical) + self.continuous >= 1,
                "model.categorical and model.continuous: InfoGAN needs at least one code")
        require(self.z_dim >= 0, f"model.z_dim must be >= 0, got {self.z_dim}")
        require(self.lambda_cat >= 0 and self.lambda_cont >= 0,
                f"model.lambda_cat and model.lambda_cont must be >= 0, got {self.lambda_cat}, {self.lambda_cont}")
        require(self.k >= 1, f"model.k must be >= 1 (discriminator steps per generator step), got {self.k}")
        for name in ("width", "hidden", "q_hidden", "mlp_width", "mlp_depth"):
            require(getattr(self, name) >= 1, f"model.{name} must be >= 1, got {getattr(self, name)}")
        require(self.lr_g > 0 and self.lr_d > 0, f"model.lr_g and model.lr_d must be > 0, got {self.lr_g}, {self.lr_d}")


@dataclass
class InfoGANSampleOptions:
    """Options of `genmodels sample` for an InfoGAN."""

    code_value: int = param(-1, "value of the first categorical code for every sample (-1: drawn from p(c))")
    traverse: bool = param(False, "latent traversal: rows = the values of a categorical code, columns = a "
                           "continuous code swept from -limit to limit, noise and other codes fixed per grid; "
                           "images come row-major, tile them with traverse_steps per row")
    traverse_code: int = param(0, "which continuous code the columns sweep")
    traverse_cat: int = param(0, "which categorical code the rows enumerate")
    traverse_steps: int = param(10, "columns of a traversal grid (values of the swept code)")
    traverse_limit: float = param(2.0, "the swept code runs from -limit to limit (the paper: 2, beyond the prior's 1)")

    def validate(self) -> None:
        require(self.traverse_steps >= 1, f"traverse_steps must be >= 1, got {self.traverse_steps}")
        require(self.code_value >= -1, f"code_value must be -1 (drawn) or a value of the code, got {self.code_value}")
        require(self.traverse_code >= 0 and self.traverse_cat >= 0,
                f"traverse_code and traverse_cat must be >= 0, got {self.traverse_code}, {self.traverse_cat}")
        require(self.traverse_limit > 0, f"traverse_limit must be > 0, got {self.traverse_limit}")


@dataclass
class InfoGANEvaluateOptions:
    """Options of `evaluate("code-accuracy")` for an InfoGAN."""

    code: int = param(0, "which categorical code of Q classifies the examples")

    def validate(self) -> None:
        require(self.code >= 0, f"code must be >= 0, got {self.code}")
