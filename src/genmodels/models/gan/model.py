"""The GAN model: Algorithm 2.1 of the seed (Goodfellow et al. 2014) in `train_step`.

    for each training iteration:                                   (Algorithm 2.1, step 1)
        for k steps:                                               (step 2)
            z^(1..m) ~ p_z; x^(1..m) ~ p_data (a fresh minibatch)  (steps 3-4)
            ascend  (1/m) sum [log D(x) + log(1 - D(G(z)))]        (step 5, seed eq. 2.1)
        z^(1..m) ~ p_z                                             (step 7)
        descend (1/m) sum -log D(G(z))   [or log(1 - D(G(z)))]     (step 8, Remark 1 / eq. 2.3)

D is represented by its logit; the losses are in `losses.py`. The networks come from
`genmodels.nets` (paper-style MLPs, the paper's own MNIST nets with a maxout D, or DCGAN convnets)
and know nothing of the game.
"""

from __future__ import annotations

import torch
from torch import nn

from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError, DataError
from genmodels.models.base import GenerativeModel, eval_mode
from genmodels.models.gan import views as gan_views
from genmodels.models.gan.config import BETAS, GANConfig, GANSampleOptions
from genmodels.models.gan.losses import BCE_KINDS, generator_loss, gradient_penalty
from genmodels.models.gan.step import discriminator_step, fresh_minibatches, mean_statistics
from genmodels.models.optim import adam, sgd
from genmodels.nets.dcgan import SIZES, DCGANDiscriminator, DCGANGenerator
from genmodels.nets.gan_mlp import MaxoutDiscriminator, MLPDiscriminator, MLPGenerator, goodfellow2014_generator
from genmodels.viz import draw_decision_surface, image_to_tensor

REFERENCE_POINTS = 2000   # real 2-D points kept (from the first minibatches) to draw under the samples


def sample_z(m: int, z_dim: int, kind: str, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """m draws of the noise prior p_z (Algorithm 2.1, steps 3 and 7): (m, z_dim), Uniform(-1, 1)
    for kind "uniform", Uniform(-sqrt 3, sqrt 3) (unit variance, the "uniform" noise of Goodfellow
    et al.'s code) for "uniform-sqrt3", else N(0, I)."""
    if kind == "uniform":
        return torch.rand(m, z_dim, generator=generator, device=device) * 2 - 1
    if kind == "uniform-sqrt3":
        return (torch.rand(m, z_dim, generator=generator, device=device) * 2 - 1) * 3 ** 0.5
    return torch.randn(m, z_dim, generator=generator, device=device)


def resolve_arch(config: GANConfig, spec: DataSpec) -> str:
    """"mlp", "dcgan" or "goodfellow2014" for this data: auto picks DCGAN for square 28x28 / 32x32
    images, else MLP; goodfellow2014 (the paper's MNIST nets) needs images, of any shape."""
    square = spec.kind == "image" and len(spec.shape) == 3 and spec.shape[1] == spec.shape[2] in SIZES
    if config.arch == "auto":
        return "dcgan" if square else "mlp"
    if config.arch == "dcgan" and not square:
        raise ConfigError(f"model.arch='dcgan' needs 28x28 or 32x32 images, but the data has {spec.kind} "
                          f"examples of shape {tuple(spec.shape)}; use arch='mlp' or 'auto'")
    if config.arch == "goodfellow2014" and spec.kind != "image":
        raise ConfigError(f"model.arch='goodfellow2014' is the paper's image networks (pixels in [-1, 1] from a "
                          f"sigmoid output), but the data has {spec.kind} examples; use arch='mlp' or 'auto'")
    return config.arch


def build_networks(config: GANConfig, spec: DataSpec, num_classes: int) -> tuple[nn.Module, nn.Module, str]:
    """(G, D, arch) for the data described by `spec` (see GANConfig for the choices)."""
    arch = resolve_arch(config, spec)
    # PacGAN: D sees `pack` examples concatenated along the channel (images) or feature (points) axis
    d_shape = (spec.shape[0] * config.pack, *spec.shape[1:])
    if arch == "dcgan":
        if config.g_batchnorm:
            raise ConfigError("model.g_batchnorm applies to the MLP generator; the DCGAN generator always has "
                              "batch norm (drop g_batchnorm or use arch='mlp')")
        if config.d_dropout or config.d_input_dropout:
            raise ConfigError("model.d_dropout and model.d_input_dropout apply to the mlp and goodfellow2014 "
                              "discriminators; the DCGAN discriminator has no dropout (set them to 0 or change arch)")
        channels, size = spec.shape[0], spec.shape[1]
        batchnorm = {"on": True, "off": False}.get(config.d_batchnorm,
                                                    config.loss != "wasserstein" and not config.spectral_norm)
        G = DCGANGenerator(config.z_dim, channels, size, config.dcgan_width, num_classes)
        D = DCGANDiscriminator(channels * config.pack, size, config.dcgan_width, num_classes, batchnorm=batchnorm,
                               spectral_norm=config.spectral_norm)
        return G, D, arch
    points = spec.kind == "points"
    width = config.mlp_width or (256 if points else 1024)
    depth = config.mlp_depth or (3 if points else 2)
    if arch == "goodfellow2014":
        if config.g_batchnorm:
            raise ConfigError("model.g_batchnorm: the goodfellow2014 generator has no batch norm (the paper's "
                              "MNIST G); drop g_batchnorm or use arch='mlp'")
        G = goodfellow2014_generator(config.z_dim, spec.shape, [width] * depth, num_classes=num_classes)
        D = MaxoutDiscriminator(d_shape, [config.maxout_units] * depth, config.maxout_pieces, num_classes=num_classes,
                                input_dropout=config.d_input_dropout, dropout=config.d_dropout,
                                spectral_norm=config.spectral_norm)
        return G, D, arch
    G = MLPGenerator(config.z_dim, spec.shape, [width] * depth, output="identity" if points else "tanh",
                     num_classes=num_classes, batchnorm=config.g_batchnorm)
    D = MLPDiscriminator(d_shape, [width] * depth, num_classes=num_classes, dropout=config.d_dropout,
                         input_dropout=config.d_input_dropout, spectral_norm=config.spectral_norm)
    return G, D, arch


class GAN(GenerativeModel):
    """Generator G and discriminator D trained by Algorithm 2.1 (see the module docstring).

    config: GANConfig; spec: the data's DataSpec; device: where the networks live.
    """

    sample_options = GANSampleOptions

    def __init__(self, config: GANConfig, spec: DataSpec, device: torch.device | str = "cpu"):
        config.validate()
        config = config.for_data(spec)          # the data-dependent defaults (z_dim, nets, lr, betas)
        if config.conditional and spec.num_classes < 2:
            raise ConfigError(f"model.conditional needs labelled data with at least 2 classes; this data has "
                              f"num_classes={spec.num_classes}")
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.num_classes = spec.num_classes if config.conditional else 0
        G, D, self.arch = build_networks(config, spec, self.num_classes)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.opt_G = self._optimizer(self.G, config.lr_g)
        self.opt_D = self._optimizer(self.D, config.lr_d)
        self._reference: torch.Tensor | None = None

    def _optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "sgd":
            return sgd(net.parameters(), lr=lr, momentum=self.config.momentum)
        return adam(net.parameters(), lr=lr, betas=BETAS[self.config.betas])

    # ----------------------------------------------------------------- the contract
    def modules(self) -> dict[str, nn.Module]:
        """The generator G and the discriminator D."""
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser for each player."""
        return {"G": self.opt_G, "D": self.opt_D}

    def ema_modules(self) -> dict[str, nn.Module]:
        """G, when model.ema asks for an EMA of the generator (what then samples)."""
        return {"G": self.G} if self.config.ema else {}

    def sampling_modules(self) -> list[str]:
        """G alone: samples are G(z) (a kept EMA is loaded into G itself) and the family has no
        model-specific metrics; D serves training and the report's decision surface only."""
        return ["G"]

    def noise(self, m: int, generator: torch.Generator | None) -> torch.Tensor:
        """m draws of z ~ p_z: (m, z_dim)."""
        return sample_z(m, self.config.z_dim, self.config.noise, generator, self.device)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D's logits l(x): (m,) for x (m, ...), or (m // pack,) with PacGAN packing, where pack j
        holds examples j*pack .. j*pack + pack - 1 concatenated along dimension 1."""
        p = self.config.pack
        if p > 1:
            m = x.shape[0] - x.shape[0] % p
            x = x[:m].reshape(m // p, p * x.shape[1], *x.shape[2:])
        return self.D(x, y)

    def _labels(self, y: torch.Tensor) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        y = y.to(self.device)
        if (y < 0).any() or (y >= self.num_classes).any():
            raise DataError(f"conditional GAN: labels must lie in [0, {self.num_classes}); this minibatch has "
                            f"labels in [{int(y.min())}, {int(y.max())}] (-1 means unlabelled)")
        return y

    def _random_labels(self, m: int, generator: torch.Generator | None) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (m,), generator=generator, device=self.device)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx) -> dict[str, torch.Tensor]:
        """One iteration of Algorithm 2.1: k discriminator steps, each on fresh noise and a fresh
        data minibatch (`batch` for the first, `ctx.next_batch()` for the others), then one
        generator step on fresh noise. Returns loss_D, D_x, D_G_z (means over the k steps),
        loss_G, and gp for WGAN-GP. D_x and D_G_z are mean D(x) = sigmoid(l(x)) for the
        cross-entropy losses, and the mean critic value l(x) for hinge / wasserstein."""
        cfg = self.config
        self.G.train()
        self.D.train()
        d_steps = []
        for x, y in fresh_minibatches(batch, ctx, cfg.k):                   # steps 2 and 4
            x = x.to(self.device, non_blocking=True)
            if self._reference is None or len(self._reference) < REFERENCE_POINTS:
                self._remember(x)
            m = x.shape[0]
            y_real = self._labels(y)
            z = self.noise(m, ctx.generator)                                 # step 3: fresh noise

            def scores(x=x, y_real=y_real, z=z):
                with torch.no_grad():
                    x_fake = self.G(z, y_real)
                real_logits, fake_logits = self.discriminate(x, y_real), self.discriminate(x_fake, y_real)
                penalties = {}
                if cfg.loss == "wasserstein" and cfg.gp_weight > 0:         # WGAN-GP
                    gp = gradient_penalty(lambda t: self.discriminate(t, y_real), x, x_fake, ctx.generator)
                    penalties["gp"] = (cfg.gp_weight, gp)
                return real_logits, fake_logits, penalties

            d_steps.append(discriminator_step(ctx, self.opt_D, [self.D], scores, cfg.loss,      # step 5
                                              cfg.label_smoothing))

        z = self.noise(m, ctx.generator)                                     # step 7
        y_fake = self._random_labels(m, ctx.generator)
        with ctx.autocast():
            fake_logits = self.discriminate(self.G(z, y_fake), y_fake)
            loss_G = generator_loss(fake_logits, cfg.loss)                   # step 8 (Remark 1 or eq. 2.3)
        ctx.optimize(loss_G, self.opt_G, [self.G])
        return {**mean_statistics(d_steps), "loss_G": loss_G.detach().float()}

    def _remember(self, x: torch.Tensor) -> None:
        """Keep the first real 2-D points seen, to draw the data under the decision surface."""
        if self.spec.kind != "points" or self.spec.dim != 2:
            return
        pts = x.detach().float().cpu()
        self._reference = pts if self._reference is None else torch.cat([self._reference, pts])[:REFERENCE_POINTS]

    @torch.no_grad()
    def sample(self, n: int, options: GANSampleOptions | None = None, *, generator: torch.Generator | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """n samples G(z), z ~ p_z: images (n, C, H, W) in [-1, 1] or points (n, D), drawn batch_size at a time.

        options.label: for a conditional GAN, the class to draw; -1 cycles through the classes.
        """
        label = self.options_of(options).label
        if n < 0:
            raise ConfigError(f"number of samples must be >= 0, got {n}")
        if self.num_classes:
            if not -1 <= label < self.num_classes:
                raise ConfigError(f"label must be -1 or a class in [0, {self.num_classes}), got {label}")
            y_all = (torch.arange(n, device=self.device) % self.num_classes if label < 0
                     else torch.full((n,), label, device=self.device, dtype=torch.long))
        elif label >= 0:
            raise ConfigError(f"label={label} needs a conditional GAN (model.conditional = true)")
        with eval_mode(self.G):
            out = []
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                y = y_all[start:start + m] if self.num_classes else None
                out.append(self.G(self.noise(m, generator), y).float())
            return torch.cat(out) if out else torch.empty(0, *self.spec.shape, device=self.device)

    @torch.no_grad()
    def decision_surface(self, generator: torch.Generator | None = None,
                         data: Dataset | None = None) -> gan_views.DecisionSurface | None:
        """For 2-D points: D over the plane with 1,000 samples over real points (compare D*_G of seed
        Proposition 2): the first REFERENCE_POINTS of `data` when given (e.g. a reloaded run's test
        split), else the points seen in training. None for other data and for a conditional GAN."""
        if self.spec.kind != "points" or self.spec.dim != 2 or self.num_classes:
            return None
        reference = self._reference
        if data is not None and len(data) and tuple(data.x.shape[1:]) == tuple(self.spec.shape):
            reference = data.x[:REFERENCE_POINTS].float()
        samples = self.sample(1000, generator=generator)
        with eval_mode(self.D):
            pack = self.config.pack                       # a packed D judges `pack` copies of each point
            return gan_views.decision_surface(lambda p: self.discriminate(p.repeat_interleave(pack, 0)), samples,
                                              reference, probability=self.config.loss in BCE_KINDS,
                                              device=self.device)

    def views(self, generator: torch.Generator | None = None, data: Dataset | None = None) -> dict[str, torch.Tensor]:
        """For 2-D points: {"decision_surface": (1, 3, H, W) in [-1, 1]}, the picture of
        `decision_surface(generator, data)` (drawn by `genmodels.viz`). Other data: {}."""
        surface = self.decision_surface(generator, data)
        if surface is None:
            return {}
        image = draw_decision_surface(surface, title=f"GAN ({self.config.loss}): D over the data")
        return {"decision_surface": image_to_tensor(image)}
