"""GAN configuration. The defaults are Algorithm 2.1 of the seed: k = 1 discriminator step per
generator step, the non-saturating generator loss (Remark 1), plain cross-entropy (no label
smoothing, no spectral norm, no gradient penalty). Everything else is an option.

Some defaults depend on the kind of data, never on its name, and are fixed by `for_data` when the
model is built (config.toml records the resolved values):
  points  z in R^2, an MLP G with batch norm in its hidden layers (as the 2-D generators of PacGAN
          and VEEGAN), 4 x 400 units, Adam 1e-4 with beta_1 = 0.5: the settings that cover all
          modes of ring8 (docs/gan.md), where a 100-d z without batch norm collapses;
  images  z in R^100, 2 x 1024 MLPs or the DCGAN nets, Adam 2e-4 (0.9, 0.999).
Algorithm 2.1 is the same for both; only the networks and hyper-parameters differ. With
arch = "goodfellow2014" (the paper's own MNIST networks, images only) the MLP G is 2 x 1200 and D
has the paper's dropout (0.2 on its input, 0.5 on its hidden layers) unless these are set."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from genmodels.config_fields import check_choices, param, require
from genmodels.models.gan.losses import LossKind

Arch = Literal["auto", "mlp", "dcgan", "goodfellow2014"]
Optimizer = Literal["adam", "sgd"]
AdamBetas = Literal["pytorch", "dcgan", "wgan-gp"]                  # the names of BETAS
BETAS: dict[AdamBetas, tuple[float, float]] = {"pytorch": (0.9, 0.999), "dcgan": (0.5, 0.999), "wgan-gp": (0.0, 0.9)}
BetasSetting = Literal["auto", AdamBetas]                          # auto: dcgan for points, pytorch for images
Noise = Literal["normal", "uniform", "uniform-sqrt3"]               # the prior p_z (also InfoGAN's)
BatchNormSetting = Literal["auto", "on", "off"]


@dataclass
class GANConfig:
    """[model] table for `name = "gan"`."""

    loss: LossKind = param("nonsaturating", "generator/discriminator objective: nonsaturating (-log D(G(z)), "
                           "seed Remark 1), minimax (log(1 - D(G(z))), seed eq. 2.3), hinge, or wasserstein "
                           "(WGAN-GP)")
    k: int = param(1, "discriminator steps per generator step (Algorithm 2.1); each sees fresh noise and a "
                   "fresh data minibatch. WGAN-GP recommends 5")
    z_dim: int = param(0, "dimension of the noise z ~ p_z (0: 2 for points, 100 for images)")
    noise: Noise = param("normal", "noise prior p_z: normal N(0, I), uniform U(-1, 1), or uniform-sqrt3 "
                         "U(-sqrt 3, sqrt 3), unit variance (the 'uniform' of Goodfellow et al.'s code)")
    arch: Arch = param("auto", "networks: auto (MLP for points and other image sizes, DCGAN for 28x28/32x32 "
                      "images), mlp (paper-style MLPs, images flattened), dcgan, or goodfellow2014 (the paper's "
                      "MNIST nets, images flattened: ReLU G with sigmoid output, maxout D with dropout)")
    mlp_width: int = param(0, "hidden width of the MLP G and D (0: 400 for points with g_batchnorm, 256 without, "
                           "1024 for images; 1200 for G with goodfellow2014)")
    mlp_depth: int = param(0, "hidden layers of the MLP G and D (0: 4 for points with g_batchnorm, 3 without, "
                           "2 for images and goodfellow2014)")
    g_batchnorm: bool | None = param(None, "batch norm in every hidden layer of the MLP generator (the 2-D "
                                     "generators of PacGAN / VEEGAN; unset: on for points, off for images)")
    dcgan_width: int = param(64, "base number of channels w of the DCGAN nets")
    d_dropout: float | None = param(None, "dropout probability in the hidden layers of the mlp and goodfellow2014 "
                                    "discriminators (unset: 0.5 for goodfellow2014, as the paper's MNIST D, else 0)")
    d_input_dropout: float | None = param(None, "dropout probability on the input of the mlp and goodfellow2014 "
                                          "discriminators (unset: 0.2 for goodfellow2014, as the paper's, else 0)")
    maxout_units: int = param(240, "units of each maxout layer of the goodfellow2014 D (the paper: 240)")
    maxout_pieces: int = param(5, "pieces (affine maps maximised over) of each maxout unit of the goodfellow2014 "
                               "D (the paper: 5)")
    d_batchnorm: BatchNormSetting = param("auto", "batch norm in the DCGAN discriminator: auto (on, except with "
                                          "wasserstein or spectral_norm), on, off")
    label_smoothing: float = param(0.0, "one-sided label smoothing s: real targets 1 - s (Salimans et al. 2016); "
                                   "cross-entropy losses only")
    spectral_norm: bool = param(False, "spectral normalisation of every D layer (Miyato et al. 2018)")
    gp_weight: float = param(10.0, "lambda of the WGAN-GP gradient penalty (loss = wasserstein only)")
    optimizer: Optimizer = param("adam", "optimiser for G and D (the seed allows any gradient-based rule): adam or "
                                 "sgd (with momentum, as in Goodfellow et al.)")
    lr_g: float = param(0.0, "learning rate of G (0: 1e-4 for points, 2e-4 for images)")
    lr_d: float = param(0.0, "learning rate of D (0: 1e-4 for points, 2e-4 for images)")
    betas: BetasSetting = param("auto", "Adam betas: auto (dcgan for points, pytorch for images), pytorch (0.9, "
                                "0.999), dcgan (0.5, 0.999; Radford et al.) or wgan-gp (0.0, 0.9; Gulrajani et al.)")
    momentum: float = param(0.5, "momentum of the sgd optimiser")
    ema: bool = param(False, "ask the trainer to keep an exponential moving average of G's weights")
    pack: int = param(1, "PacGAN packing (Lin et al. 2018): D judges packs of this many samples (all real or "
                       "all generated) concatenated, which penalises mode collapse; 1 = the plain D of Algorithm 2.1")
    conditional: bool = param(False, "class-conditional GAN: labels go into G (one-hot next to z) and D "
                              "(projection); needs labelled data")

    def for_data(self, spec) -> GANConfig:
        """A copy with the data-dependent defaults (z_dim 0, mlp_width/depth 0, g_batchnorm unset,
        lr 0, betas auto) fixed for this kind of data (`spec`: the DataSpec), and the unset dropout
        probabilities fixed for the arch (the paper's for goodfellow2014, none otherwise)."""
        points = spec.kind == "points"
        paper = self.arch == "goodfellow2014"
        bn = self.g_batchnorm if self.g_batchnorm is not None else points
        width, depth = (400, 4) if points and bn else (256, 3) if points else (1200, 2) if paper else (1024, 2)
        lr = 1e-4 if points else 2e-4
        drop = (0.5, 0.2) if paper else (0.0, 0.0)
        return replace(self, z_dim=self.z_dim or (2 if points else 100), g_batchnorm=bn,
                       mlp_width=self.mlp_width or width, mlp_depth=self.mlp_depth or depth,
                       d_dropout=drop[0] if self.d_dropout is None else self.d_dropout,
                       d_input_dropout=drop[1] if self.d_input_dropout is None else self.d_input_dropout,
                       lr_g=self.lr_g or lr, lr_d=self.lr_d or lr,
                       betas=self.betas if self.betas != "auto" else ("dcgan" if points else "pytorch"))

    def validate(self) -> None:
        check_choices(self, "model")
        require(self.k >= 1, f"model.k must be >= 1 (discriminator steps per generator step), got {self.k}")
        require(self.z_dim >= 0, f"model.z_dim must be >= 1 (0 = automatic), got {self.z_dim}")
        require(self.mlp_width >= 0, f"model.mlp_width must be >= 0 (0 = automatic), got {self.mlp_width}")
        require(self.mlp_depth >= 0, f"model.mlp_depth must be >= 0 (0 = automatic), got {self.mlp_depth}")
        require(self.dcgan_width >= 1, f"model.dcgan_width must be >= 1, got {self.dcgan_width}")
        for name in ("d_dropout", "d_input_dropout"):
            value = getattr(self, name)
            require(value is None or 0.0 <= value < 1.0, f"model.{name} must be in [0, 1) (unset = automatic), "
                    f"got {value}")
        require(self.maxout_units >= 1, f"model.maxout_units must be >= 1, got {self.maxout_units}")
        require(self.maxout_pieces >= 1, f"model.maxout_pieces must be >= 1 (1 = a linear layer), got "
                f"{self.maxout_pieces}")
        require(0.0 <= self.label_smoothing < 1.0,
                f"model.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        require(self.label_smoothing == 0.0 or self.loss in ("minimax", "nonsaturating"),
                f"model.label_smoothing applies to the cross-entropy losses only, not loss={self.loss!r}")
        require(self.gp_weight >= 0.0, f"model.gp_weight must be >= 0, got {self.gp_weight}")
        require(self.lr_g >= 0 and self.lr_d >= 0,
                f"model.lr_g and model.lr_d must be > 0 (0 = automatic), got {self.lr_g}, {self.lr_d}")
        require(self.pack >= 1, f"model.pack must be >= 1 (samples per discriminator input), got {self.pack}")
        require(self.pack == 1 or not self.conditional, "model.pack > 1 cannot be combined with model.conditional")
        require(0.0 <= self.momentum < 1.0, f"model.momentum must be in [0, 1), got {self.momentum}")


@dataclass
class GANSampleOptions:
    """Options of `genmodels sample` for a GAN."""

    label: int = param(-1, "class to generate with a conditional GAN (-1: the classes in turn)")

    def validate(self) -> None:
        require(self.label >= -1, f"sample.label must be -1 (the classes in turn) or a class index, got {self.label}")
