"""DDPM (Ho et al. 2020; seed section 4): the model family registered as "ddpm".

The maths lives in `genmodels.diffusion` (schedule, Gaussian kernels, losses, Theorem 8 bound,
samplers); the networks in `genmodels.nets` (U-Net for images, MLP denoiser for points). This
module wires them to the trainer's contract (`genmodels.models.base`): one training step of
Algorithm 4.1 (or L_vlb / hybrid), sampling by Algorithm 4.2, DDIM or DPM-Solver++ with
optional classifier-free guidance, and the bits/dim bound of Theorem 8 as `evaluate("nll")`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genmodels.config_fields import check_choices, param, require
from genmodels.data.dataset import DataSpec, Dataset
from genmodels.diffusion.bound import bits_per_dim, bound_terms
from genmodels.diffusion.losses import diffusion_loss, output_to_eps, sample_training_inputs
from genmodels.diffusion.samplers import get_sampler
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, choice_error
from genmodels.nets.denoiser_mlp import DenoiserMLP
from genmodels.nets.unet import UNet


@dataclass
class DDPMConfig:
    """The diffusion process, the objective and the denoising network."""

    schedule: str = param("linear", "noise schedule: linear (1e-4..0.02, Ho et al.) or cosine (Nichol & Dhariwal)",
                          choices=("linear", "cosine"))
    T: int = param(1000, "number of diffusion steps T")
    variance: str = param("beta", "reverse-process variance sigma_t^2 (seed Remark 7): beta = beta_t, "
                          "beta_tilde = posterior variance", choices=("beta", "beta_tilde"))
    loss: str = param("simple", "objective: simple (Algorithm 4.1), vlb (Theorem 8 bound), hybrid (simple + lambda vlb)",
                      choices=("simple", "vlb", "hybrid"))
    hybrid_lambda: float = param(0.001, "weight lambda of L_vlb in the hybrid loss (Nichol & Dhariwal)")
    prediction: str = param("eps", "what the network predicts: eps (Ho et al.), x0, or v (Salimans & Ho)",
                            choices=("eps", "x0", "v"))
    net: str = param("auto", "denoiser: auto (U-Net for images, MLP for points), unet, mlp",
                     choices=("auto", "unet", "mlp"))
    channels: int = param(16, "U-Net base channels (16 trains on a CPU in minutes; Ho et al. use 128)")
    channel_mults: list[int] = param([1, 2, 2], "U-Net channel multiplier per resolution level")
    num_res_blocks: int = param(1, "U-Net residual blocks per level")
    attention_resolutions: list[int] = param([7], "feature-map sizes with self-attention (e.g. 7 for 28x28, 8 for 32x32)")
    attention_heads: int = param(1, "attention heads")
    dropout: float = param(0.0, "dropout in the denoiser's residual blocks (Ho et al.: 0.1 on CIFAR-10)")
    mlp_width: int = param(256, "MLP denoiser hidden width (points data)")
    mlp_depth: int = param(4, "MLP denoiser residual blocks (points data)")
    mlp_octaves: int = param(6, "Fourier features sin/cos(2^k pi x), k < octaves, of the MLP's input (0 = raw x)")
    lr: float = param(0.0, "Adam learning rate (0 = 2e-4 for images as in Ho et al., 1e-3 for points)")
    class_conditional: bool = param(False, "condition on labels (classifier-free guidance, Ho & Salimans 2022)")
    p_uncond: float = param(0.1, "label dropout probability when class-conditional (trains the unconditional model)")

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        check_choices(self, "model")
        require(self.T >= 2, f"model.T must be >= 2, got {self.T}")
        require(self.hybrid_lambda >= 0, f"model.hybrid_lambda must be >= 0, got {self.hybrid_lambda}")
        require(self.channels > 0 and len(self.channel_mults) > 0 and all(m > 0 for m in self.channel_mults),
                f"model.channels and model.channel_mults must be positive, got {self.channels}, {self.channel_mults}")
        require(self.num_res_blocks >= 1, f"model.num_res_blocks must be >= 1, got {self.num_res_blocks}")
        require(self.attention_heads >= 1 and self.channels % self.attention_heads == 0,
                f"model.attention_heads must divide model.channels, got {self.attention_heads}")
        require(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1), got {self.dropout}")
        require(self.mlp_width > 0 and self.mlp_depth >= 1, "model.mlp_width and model.mlp_depth must be positive")
        require(0 <= self.mlp_octaves <= 16, f"model.mlp_octaves must be in 0..16, got {self.mlp_octaves}")
        require(self.lr >= 0, f"model.lr must be >= 0, got {self.lr}")
        require(0.0 <= self.p_uncond < 1.0, f"model.p_uncond must be in [0, 1), got {self.p_uncond}")


@dataclass
class DDPMSampleOptions:
    """Options of `genmodels sample` for a DDPM run."""

    sampler: str = param("ancestral", "ancestral (Algorithm 4.2), ddim (Song et al.), dpm++ (DPM-Solver++(2M))",
                         choices=("ancestral", "ddim", "dpm++"))
    steps: int = param(0, "network evaluations (0 = the sampler's default: T for ancestral, 50 for ddim, 20 for dpm++)")
    eta: float = param(0.0, "DDIM eta (0 = deterministic, 1 = ancestral-like)")
    spacing: str = param("auto", "visited steps: auto (uniform for ancestral/ddim, logsnr for dpm++), uniform, logsnr",
                         choices=("auto", "uniform", "logsnr"))
    guidance: float = param(1.0, "classifier-free guidance scale w: eps_u + w (eps_c - eps_u); 1 = plain conditional, 0 = unconditional")
    label: int = param(-1, "class to generate (class-conditional runs; -1 = cycle through all classes)")
    clip_x0: bool = param(True, "clip the predicted x_0 to [-1, 1] at each step (images only; ignored for points)")


DEFAULT_STEPS = {"ancestral": 0, "ddim": 50, "dpm++": 20}


class _Standardiser(nn.Module):
    """Per-dimension shift and scale of points data, fixed from the first training batch so
    that the data has roughly unit variance for the N(0, I) prior. Images pass through."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:  # noqa: D102
        if not bool(self.fitted) and x.shape[0] > 1:
            self.shift.copy_(x.mean(0))
            self.scale.copy_(x.std(0).clamp(min=1e-6))
            self.fitted.fill_(True)


class DDPM:
    """A denoising diffusion probabilistic model over images (B, C, H, W) in [-1, 1] or points (B, D)."""

    metric_names = ("nll",)

    def __init__(self, config: DDPMConfig, spec: DataSpec, device: torch.device | str = "cpu"):
        config.validate()
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.sched = NoiseSchedule.named(config.schedule, config.T)
        self.is_image = spec.kind == "image"
        net_kind = config.net if config.net != "auto" else ("unet" if self.is_image else "mlp")
        if net_kind == "unet" and not self.is_image:
            raise ConfigError("model.net = unet needs image data; this data set holds points (use mlp or auto)")
        if config.class_conditional and spec.num_classes < 1:
            raise ConfigError("model.class_conditional needs labelled data; this data set has no classes")
        num_classes = spec.num_classes if config.class_conditional else 0
        if net_kind == "unet":
            self.net: nn.Module = UNet(in_channels=spec.shape[0], channels=config.channels,
                                       channel_mults=config.channel_mults, num_res_blocks=config.num_res_blocks,
                                       attention_resolutions=config.attention_resolutions, dropout=config.dropout,
                                       num_classes=num_classes, heads=config.attention_heads,
                                       image_size=min(spec.shape[1:]))
        else:
            self.net = DenoiserMLP(dim=spec.dim, width=config.mlp_width, depth=config.mlp_depth,
                                   dropout=config.dropout if self.is_image else 0.0, num_classes=num_classes,
                                   octaves=config.mlp_octaves)
        self.net.to(self.device)
        self.standardiser = _Standardiser(1 if self.is_image else spec.dim).to(self.device)
        lr = config.lr or (2e-4 if self.is_image else 1e-3)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.decoder = "discretized" if self.is_image else "gaussian"

    # --- the contract -------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:  # noqa: D102
        return {"denoiser": self.net, "standardiser": self.standardiser}

    def ema_modules(self) -> dict[str, nn.Module]:  # noqa: D102
        return {"denoiser": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:  # noqa: D102
        return {"denoiser": self.opt}

    def _to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_image else (x - self.standardiser.shift) / self.standardiser.scale

    def _to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_image else x * self.standardiser.scale + self.standardiser.shift

    def train_step(self, batch, ctx) -> dict[str, float]:
        """One step of Algorithm 4.1 (or the L_vlb / hybrid objective) on a minibatch (x, y)."""
        x, y = batch
        x = x.to(self.device, torch.float32)
        if not self.is_image:
            # fitted on the global batch so that it does not depend on the number of processes
            self.standardiser.fit(ctx.global_batch(x) if hasattr(ctx, "global_batch") else x)
        x0 = self._to_model_space(x)
        self.net.train()
        t, eps, xt = sample_training_inputs(self.sched, x0, ctx.generator)       # Algorithm 4.1, steps 2-4
        labels = None
        if self.config.class_conditional:
            labels = y.to(self.device).long()
            drop = torch.rand(labels.shape, generator=ctx.generator, device=self.device) < self.config.p_uncond
            labels = torch.where(drop, torch.full_like(labels, -1), labels)    # label dropout (Ho & Salimans)
        with ctx.autocast():
            output = self.net(xt, t.float(), labels)
        c = self.config
        losses = diffusion_loss(self.sched, output.float(), x0, xt, t, eps, loss=c.loss, prediction=c.prediction,
                                variance=c.variance, hybrid_lambda=c.hybrid_lambda, decoder=self.decoder)
        ctx.optimize(losses["loss"], self.opt, [self.net])                       # Algorithm 4.1, step 5
        return {k: float(v.detach()) for k, v in losses.items()}

    def eps_fn(self, labels: torch.Tensor | None = None, guidance: float = 1.0):
        """The noise predictor denoise(x_t, t) -> eps_theta used by samplers and bounds, with
        classifier-free guidance eps_u + w (eps_c - eps_u) when w != 1 (Ho & Salimans 2022)."""
        c = self.config

        def denoise(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if labels is None or guidance == 1.0:
                out = self.net(xt, t.float(), labels)
                return output_to_eps(self.sched, out.float(), xt, t, c.prediction)
            if guidance == 0.0:
                out = self.net(xt, t.float(), None)
                return output_to_eps(self.sched, out.float(), xt, t, c.prediction)
            both = self.net(torch.cat([xt, xt]), torch.cat([t, t]).float(), torch.cat([labels, torch.full_like(labels, -1)]))
            eps_c, eps_u = output_to_eps(self.sched, both.float(), torch.cat([xt, xt]), torch.cat([t, t]), c.prediction).chunk(2)
            return eps_u + guidance * (eps_c - eps_u)

        return denoise

    def _labels(self, n: int, label: int, guidance: float) -> torch.Tensor | None:
        if not self.config.class_conditional:
            if label != -1 or guidance != 1.0:
                raise ConfigError("--label and --guidance need a class-conditional run (model.class_conditional = true)")
            return None
        K = self.spec.num_classes
        if not -1 <= label < K:
            raise ConfigError(f"label must be -1 (all classes) or in 0..{K - 1}, got {label}")
        if label >= 0:
            return torch.full((n,), label, dtype=torch.long, device=self.device)
        return torch.arange(n, device=self.device) % K

    @torch.no_grad()
    def preview_options(self) -> dict:
        """Sampler settings for the trainer's periodic sample grids: DPM-Solver++(2M) with 20 steps
        instead of the T network evaluations of Algorithm 4.2 (`genmodels sample` defaults stay
        ancestral)."""
        return {"sampler": "dpm++", "steps": 20}

    def sample(self, n: int, *, generator: torch.Generator | None = None, callback=None, **options) -> torch.Tensor:
        """n samples in data space: images (n, C, H, W) in [-1, 1] or points (n, D).
        options: the fields of DDPMSampleOptions."""
        unknown = set(options) - set(DDPMSampleOptions.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown DDPM sample option(s) {sorted(unknown)}; valid: "
                              f"{', '.join(DDPMSampleOptions.__dataclass_fields__)}")
        opts = DDPMSampleOptions(**options)
        check_choices(opts, "sample")
        steps = opts.steps or DEFAULT_STEPS[opts.sampler] or None
        sampler = get_sampler(opts.sampler)
        extra = {"variance": self.config.variance} if opts.sampler == "ancestral" else {}
        if opts.sampler == "ddim":
            extra["eta"] = opts.eta
        if opts.spacing != "auto":
            extra["spacing"] = opts.spacing
        labels = self._labels(n, opts.label, opts.guidance)
        self.net.eval()
        x_T = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)   # Algorithm 4.2, step 1
        x0 = sampler(self.eps_fn(labels, opts.guidance), x_T, self.sched, steps=steps, generator=generator,
                     clip_x0=opts.clip_x0 and self.is_image, callback=callback, **extra)
        return self._to_data_space(x0).clamp(-1, 1) if self.is_image else self._to_data_space(x0)

    @torch.no_grad()
    def evaluate(self, metric: str, data: Dataset, *, n: int = 256, batch_size: int = 128,
                 num_timesteps: int | None = None, generator: torch.Generator | None = None, **_) -> dict[str, float]:
        """metric "nll": the Theorem 8 bound (seed eq. 4.10) on the first n examples of `data`,
        per term and in total: keys bpd_L_T, bpd_L_1:T-1, bpd_L_0, bpd_total (images) or
        nats_per_dim_* (points), and n. Costs T network calls per batch of `batch_size`. Images: bits/dim with the discretised decoder (data must be on the
        8-bit grid). Points: nats/dim with a continuous Gaussian decoder, in data coordinates.
        num_timesteps: None uses all T - 1 KL terms; k draws k of them (unbiased, faster)."""
        if metric not in self.metric_names:
            raise choice_error("DDPM metric", metric, self.metric_names)
        self.net.eval()
        x = data.x[:n]
        D = self.spec.dim
        sums: dict[str, float] = {}
        for i in range(0, len(x), batch_size):
            x0 = self._to_model_space(x[i:i + batch_size].to(self.device, torch.float32))
            terms = bound_terms(self.eps_fn(), self.sched, x0, variance=self.config.variance, decoder=self.decoder,
                                generator=generator, num_timesteps=num_timesteps)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
        count = len(x)
        if self.is_image:
            out = {f"bpd_{k}": float(bits_per_dim(v / count, D)) for k, v in sums.items()}
        else:
            log_scale = float(torch.log(self.standardiser.scale).sum())      # change of variables to data space
            sums["total"] += log_scale
            sums["L_0"] += log_scale
            out = {f"nats_per_dim_{k}": v / count / D for k, v in sums.items()}
        out["n"] = float(count)
        return out

    @torch.no_grad()
    def views(self, generator: torch.Generator | None = None, n: int = 8, frames: int = 10) -> dict[str, torch.Tensor]:
        """A denoising strip for images: n rows of x_t at `frames` times from x_T to x_0 by
        DDIM-50 (or T steps if fewer), as an (n * frames, C, H, W) batch (rows are samples). Points data: {}."""
        if not self.is_image:
            return {}
        snaps: list[torch.Tensor] = []
        steps = min(50, self.sched.T)
        keep = set(torch.linspace(steps, 1, frames - 1).round().long().tolist())

        def record(i, t, xt, x0_hat):
            if i in keep:
                snaps.append(xt.clamp(-1, 1))

        label = -1
        x0 = self.sample(n, generator=generator, sampler="ddim", steps=steps, callback=record, label=label)
        strip = torch.stack(snaps[: frames - 1] + [x0], dim=1)                  # (n, frames, C, H, W)
        return {"denoising": strip.reshape(-1, *strip.shape[2:])}
