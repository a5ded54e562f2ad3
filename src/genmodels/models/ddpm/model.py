"""The DDPM model (Ho et al. 2020; seed section 4).

The maths lives in `genmodels.diffusion` (schedule, Gaussian kernels, losses, Theorem 8 bound,
samplers); the networks in `genmodels.nets` (U-Net for images, MLP denoiser for points). This
module wires them to the trainer's contract (`genmodels.models.base`): one training step of
Algorithm 4.1 (or L_vlb / L_hybrid, with learned variances and importance-sampled t as options),
sampling by Algorithm 4.2, DDIM, DPM-Solver++, Heun or Euler-ancestral with optional
classifier-free guidance, and three likelihood estimates as `evaluate("nll")`: the Theorem 8
bound, the eq. 4.8 importance-sampling estimate and the probability-flow ODE.
"""

from __future__ import annotations

import torch
from torch import nn

from genmodels.config_fields import validate_options
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.diffusion.conditioning import check_known, repaint, sdedit
from genmodels.diffusion.continuous import alpha_bar_at, draw_steps, net_input_scale
from genmodels.diffusion.losses import diffusion_loss, output_to_eps, output_to_eps_at, sample_training_inputs
from genmodels.diffusion.noise_levels import sigma_at
from genmodels.diffusion.samplers import get_spec
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.diffusion.t_sampler import ImportanceTimestepSampler
from genmodels.errors import ConfigError, DataError
from genmodels.models.base import VIEW_FRAMES, GenerativeModel
from genmodels.models.ddpm.config import DDPMConfig, DDPMSampleOptions
from genmodels.models.ddpm.likelihood import DDPMEvaluateOptions, TrainedDenoiser, nll
from genmodels.models.optim import adam
from genmodels.models.standardiser import Standardiser
from genmodels.nets.denoiser_mlp import DenoiserMLP
from genmodels.nets.unet import UNet

# FD-mnist at n = 1,000 (bench/ddpm_study.py, docs/ddpm.md "Quality per CPU-minute"): after 2, 5, 10 and 30
# CPU-minutes of the image defaults, Euler-ancestral at 50 steps measured 154.0, 76.4, 45.4 and 22.1 against
# DPM-Solver++(2M)-20's 177.5, 75.5, 50.1 and 28.1; at the same 50 evaluations DPM-Solver++ has converged to the
# probability-flow ODE (26.1 against Euler-ancestral's 20.1 on zoo:ddpm-mnist, docs/ddpm.md "Quality against
# cost"): the stochastic sampler corrects the network's errors (Karras et al. 2022, section 4).
RECOMMENDED_IMAGE_SAMPLING = {"sampler": "euler-ancestral", "steps": 50}


class DDPM(GenerativeModel):
    """A denoising diffusion probabilistic model over images (B, C, H, W) in [-1, 1] or points (B, D)."""

    sample_options = DDPMSampleOptions
    evaluate_options = DDPMEvaluateOptions
    metric_names = ("nll",)
    capabilities = ("inpaint", "img2img")        # RePaint and SDEdit, for image runs

    def __init__(self, config: DDPMConfig, spec: DataSpec, device: torch.device | str = "cpu"):
        config.validate()
        config = config.for_data(spec)          # prediction, loss weighting and learning rate by kind of data
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.sched = NoiseSchedule.named(config.schedule, config.T)
        self.is_image = spec.kind == "image"
        net_kind = config.net if config.net != "auto" else ("unet" if self.is_image else "mlp")
        if net_kind == "unet" and not self.is_image:
            raise ConfigError("model.net = unet needs image data; this data set holds points (use mlp or auto)")
        if net_kind == "mlp" and self.is_image:
            raise ConfigError(f"model.net = mlp needs points data; this data set holds images of shape "
                              f"{tuple(spec.shape)} (use unet or auto)")
        if config.class_conditional and spec.num_classes < 1:
            raise ConfigError("model.class_conditional needs labelled data; this data set has no classes")
        num_classes = spec.num_classes if config.class_conditional else 0
        # with learned variances the network outputs the prediction and v (Nichol & Dhariwal eq. 15)
        out_factor = 2 if config.learn_sigma else 1
        if net_kind == "unet":
            self.net: nn.Module = UNet(in_channels=spec.shape[0], channels=config.channels,
                                       channel_mults=config.channel_mults, num_res_blocks=config.num_res_blocks,
                                       attention_resolutions=config.attention_resolutions, dropout=config.dropout,
                                       num_classes=num_classes, heads=config.attention_heads,
                                       image_size=min(spec.shape[1:]), out_channels=out_factor * spec.shape[0])
        else:
            self.net = DenoiserMLP(dim=spec.dim, width=config.mlp_width, depth=config.mlp_depth,
                                   dropout=config.dropout if self.is_image else 0.0, num_classes=num_classes,
                                   octaves=config.mlp_octaves, out_dim=out_factor * spec.dim)
        self.net.to(self.device)
        self.variance = "learned" if config.learn_sigma else config.variance   # Remark 7 or N&D eq. 15
        self.standardiser = Standardiser(1 if self.is_image else spec.dim).to(self.device)
        self.t_sampler = (ImportanceTimestepSampler(config.T).to(self.device) if config.t_sampler == "importance"
                          else None)
        self.opt = adam(self.net.parameters(), lr=config.lr)
        self.decoder = "discretized" if self.is_image else "gaussian"

    # --- the contract -------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The denoiser, the points standardiser and (importance-sampled t) the L_t history."""
        out = {"denoiser": self.net, "standardiser": self.standardiser}
        if self.t_sampler is not None:              # the history of L_t, saved so that resume is exact
            out["t_sampler"] = self.t_sampler
        return out

    def ema_modules(self) -> dict[str, nn.Module]:
        """The denoiser (its EMA is what samples)."""
        return {"denoiser": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam over the denoiser."""
        return {"denoiser": self.opt}

    def _to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_image else (x - self.standardiser.shift) / self.standardiser.scale

    def _to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_image else x * self.standardiser.scale + self.standardiser.shift

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """One step of Algorithm 4.1 (or the L_vlb / L_hybrid objective) on a minibatch (x, y)."""
        x, y = batch
        x = x.to(self.device, torch.float32)
        gather = ctx.global_batch
        if not self.is_image and not self.standardiser.is_fitted():
            # fitted on the global batch so that it does not depend on the number of processes
            self.standardiser.fit(gather(x))
        x0 = self._to_model_space(x)
        self.net.train()
        t, t_weights = None, None
        c = self.config
        if self.t_sampler is not None:                                           # Nichol & Dhariwal sec. 3.3
            t, t_weights = self.t_sampler.sample(x0.shape[0], ctx.generator, self.device)
        elif c.noise_density != "uniform":                   # fractional steps (Karras et al.; Esser et al.)
            t = draw_steps(self.sched, x0.shape[0], c.noise_density, ctx.generator, self.device,
                           c.density_mean, c.density_std)
        t, eps, xt = sample_training_inputs(self.sched, x0, ctx.generator, t)    # Algorithm 4.1, steps 2-4
        labels = None
        if self.config.class_conditional:
            labels = y.to(self.device).long()
            drop = torch.rand(labels.shape, generator=ctx.generator, device=self.device) < self.config.p_uncond
            labels = torch.where(drop, torch.full_like(labels, -1), labels)    # label dropout (Ho & Salimans)
        with ctx.autocast():
            output = self._net(xt, t, labels)
        prediction, v = self._split(output.float())
        losses = diffusion_loss(self.sched, prediction, x0, xt, t, eps, loss=c.loss, prediction=c.prediction,
                                variance=self.variance, hybrid_lambda=c.hybrid_lambda, decoder=self.decoder,
                                snr_gamma=c.snr_gamma, v=v, t_weights=t_weights, snr_weighting=c.snr_weighting,
                                sigma_data=c.sigma_data)
        ctx.optimize(losses["loss"], self.opt, [self.net])                       # Algorithm 4.1, step 5
        vlb_terms = losses.pop("vlb_terms", None)
        if self.t_sampler is not None:      # the history grows from the global batch: the same on every rank
            self.t_sampler.update(gather(t), gather(vlb_terms))
        return {k: v.detach() for k, v in losses.items()}      # tensors: the trainer reads them when it logs

    def _net(self, xt: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
             alpha_bar: torch.Tensor | None = None) -> torch.Tensor:
        """The network at (x_t, t): with prediction = edm it reads c_in y = x_t c_in / sqrt(abar)
        (`continuous.net_input_scale`; abar from t unless given), otherwise x_t as it is."""
        c = self.config
        if c.prediction == "edm":
            abar = alpha_bar_at(self.sched, t) if alpha_bar is None else alpha_bar.reshape(-1)
            scale = net_input_scale(abar, c.prediction, c.sigma_data)
            assert scale is not None
            xt = xt * scale.to(xt.dtype).reshape(-1, *([1] * (xt.dim() - 1)))
        return self.net(xt, t.float(), labels)

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The network's output as (prediction (eps, x0 or v target), v of eq. 15 or None)."""
        if not self.config.learn_sigma:
            return out, None
        prediction, v = out.chunk(2, dim=1)
        return prediction, v

    def eps_fn(self, labels: torch.Tensor | None = None, guidance: float = 1.0):
        """The noise predictor denoise(x_t, t) -> eps_theta used by samplers and bounds, with
        classifier-free guidance eps_u + w (eps_c - eps_u) when w != 1 (Ho & Salimans 2022). With
        learned variances it returns (eps_theta, v) (`diffusion.gaussian.split_model_output`); a
        guided v is the conditional one."""
        c = self.config

        def answer(eps: torch.Tensor, v: torch.Tensor | None):
            return eps if v is None else (eps, v)

        def denoise(xt: torch.Tensor, t: torch.Tensor):
            if labels is None or guidance == 1.0:
                out, v = self._split(self._net(xt, t, labels).float())
                return answer(output_to_eps(self.sched, out, xt, t, c.prediction, c.sigma_data), v)
            if guidance == 0.0:
                out, v = self._split(self._net(xt, t, None).float())
                return answer(output_to_eps(self.sched, out, xt, t, c.prediction, c.sigma_data), v)
            both, v = self._split(self._net(torch.cat([xt, xt]), torch.cat([t, t]),
                                            torch.cat([labels, torch.full_like(labels, -1)])).float())
            eps_c, eps_u = output_to_eps(self.sched, both, torch.cat([xt, xt]), torch.cat([t, t]),
                                         c.prediction, c.sigma_data).chunk(2)
            return answer(eps_u + guidance * (eps_c - eps_u), None if v is None else v.chunk(2)[0])

        return denoise

    def ode_eps_fn(self):
        """eps_theta(x_t, t) at fractional steps t (float (B,), on the host) for the probability-flow ODE: the
        network reads t as it is (its time embedding is continuous) and an x_0 or v output is
        converted with abar(t) = 1 / (1 + sigma(t)^2) (`noise_levels.sigma_at`). Differentiable in x_t."""
        c = self.config

        def denoise(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            sigma = sigma_at(self.sched, t.cpu()).reshape(-1, *([1] * (xt.dim() - 1)))   # float64 on the host
            alpha_bar = (1.0 / (1.0 + sigma**2)).to(xt.device, xt.dtype)
            out, _ = self._split(self._net(xt, t.to(xt.device, torch.float32), None, alpha_bar).float())
            return output_to_eps_at(out, xt, alpha_bar, c.prediction, c.sigma_data)

        return denoise

    def _labels(self, n: int, label: int, guidance: float) -> torch.Tensor | None:
        if not self.config.class_conditional:
            if label != -1 or guidance != 1.0:
                raise ConfigError("--label and --guidance need a class-conditional run "
                                  "(model.class_conditional = true)")
            return None
        K = self.spec.num_classes
        if not -1 <= label < K:
            raise ConfigError(f"label must be -1 (all classes) or in 0..{K - 1}, got {label}")
        if label >= 0:
            return torch.full((n,), label, dtype=torch.long, device=self.device)
        return torch.arange(n, device=self.device) % K

    def preview_options(self) -> DDPMSampleOptions:
        """The trainer's periodic sample grids: DPM-Solver++(2M) with 20 steps instead of the T
        network evaluations of Algorithm 4.2."""
        return DDPMSampleOptions(sampler="dpm++", steps=20)

    def recommended_sample_options(self) -> dict:
        """A new image run's sampling defaults ([sample] in config.toml): RECOMMENDED_IMAGE_SAMPLING,
        the sampler and steps that measured best per network evaluation on MNIST (docs/ddpm.md, "Quality
        per CPU-minute"). Points keep Algorithm 4.2, with which the 2-D targets were measured; both stay
        available by name (`--sampler ancestral`)."""
        if not self.is_image:
            return {}
        steps = RECOMMENDED_IMAGE_SAMPLING.get("steps")
        return {**RECOMMENDED_IMAGE_SAMPLING, **({"steps": min(int(steps), self.sched.T)} if steps else {})}

    def sample(self, n: int, options: DDPMSampleOptions | None = None, *, generator: torch.Generator | None = None,
               callback=None) -> torch.Tensor:
        """n samples in data space: images (n, C, H, W) in [-1, 1] or points (n, D). options: a
        DDPMSampleOptions (None = the defaults); callback(i, t, x_t, x0_hat) sees each step."""
        opts, sampler, steps, extra = self._sampler_setup(options)
        labels = self._labels(n, opts.label, opts.guidance)
        self.net.eval()
        x_T = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)   # Algorithm 4.2, step 1
        x0 = sampler(self.eps_fn(labels, opts.guidance), x_T, self.sched, steps=steps, generator=generator,
                     clip_x0=opts.clip_x0 and self.is_image, callback=callback, **extra)
        return self._to_data_space(x0).clamp(-1, 1) if self.is_image else self._to_data_space(x0)

    def _sampler_setup(self, options: DDPMSampleOptions | None):
        """The sample options checked, as (DDPMSampleOptions, sampler function, steps, its keyword
        options): the registry's entry gives the default steps and spacing and names the extra
        options the sampler takes (eta from the options, the variance from the model)."""
        opts = self.options_of(options)
        validate_options(opts, "sample")        # an instance built by hand is checked as the flags are
        spec = get_spec(opts.sampler)
        steps, spacing = spec.resolve(opts.steps, opts.spacing)
        available = {"variance": self.variance, "eta": opts.eta}
        extra = {"spacing": spacing, **{name: available[name] for name in spec.extra}}
        return opts, spec.fn, steps, extra

    def _check_image_run(self, what: str) -> None:
        if not self.is_image:
            raise ConfigError(f"{what} needs a DDPM trained on images; this run's data are points {self.spec.shape}")

    @torch.no_grad()
    def inpaint(self, x_known: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None,
                jump_length: int = 10, resample: int = 10, callback=None,
                options: DDPMSampleOptions | None = None) -> torch.Tensor:
        """Fill the pixels where mask = 0 of x_known (B, C, H, W) in [-1, 1] by RePaint (Lugmayr et al.
        2022; `diffusion.conditioning.repaint`), keeping those where mask = 1 exactly. mask:
        (B or 1, 1 or C, H, W) of 0 / 1. jump_length j and resample r: their sec. 4.2 (10 and 10
        in the paper, with T = 250; about r x steps network calls). options: the
        ancestral DDPMSampleOptions (steps, spacing, guidance, label, clip_x0). Returns (B, C, H, W) in [-1, 1]."""
        self._check_image_run("inpainting")
        opts, _, steps, extra = self._sampler_setup(options)
        if opts.sampler != "ancestral":
            raise ConfigError(f"inpainting runs RePaint's ancestral steps; sampler {opts.sampler!r} does not apply")
        x_known, mask = check_known(x_known.to(self.device), mask.to(self.device), tuple(self.spec.shape))
        labels = self._labels(len(x_known), opts.label, opts.guidance)
        self.net.eval()
        x_T = torch.randn(x_known.shape, generator=generator, device=self.device)
        x0 = repaint(self.eps_fn(labels, opts.guidance), x_T, self.sched, x_known, mask, steps=steps,
                     generator=generator, clip_x0=opts.clip_x0, callback=callback, jump_length=jump_length,
                     resample=resample, **extra)
        return x0.clamp(-1, 1)

    @torch.no_grad()
    def img2img(self, x: torch.Tensor, strength: float, *, generator: torch.Generator | None = None,
                callback=None, options: DDPMSampleOptions | None = None) -> torch.Tensor:
        """SDEdit (Meng et al. 2022; `diffusion.conditioning.sdedit`): noise the images x (B, C, H, W) in
        [-1, 1] to t0 = round(strength T) with q(x_t0 | x_0), then run the sampler of `options` (a
        DDPMSampleOptions: sampler, steps (capped at t0), ...) from t0 to 0. strength 0
        returns x; 1 starts from q(x_T | x_0). Returns (B, C, H, W) in [-1, 1]."""
        self._check_image_run("image-to-image")
        opts, sampler, steps, extra = self._sampler_setup(options)
        C, H, W = self.spec.shape
        if x.dim() != 4 or tuple(x.shape[1:]) != (C, H, W):
            raise DataError(f"image-to-image: the images must have shape (B, {C}, {H}, {W}), got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        if not bool(torch.isfinite(x).all()) or float(x.abs().max()) > 1.0:
            raise DataError("image-to-image: the images must be finite and in [-1, 1]")
        labels = self._labels(len(x), opts.label, opts.guidance)
        self.net.eval()
        x0 = sdedit(sampler, self.eps_fn(labels, opts.guidance), x, self.sched, strength, steps=steps,
                    generator=generator, clip_x0=opts.clip_x0, callback=callback, **extra)
        return x0.clamp(-1, 1)

    @torch.no_grad()
    def evaluate(self, metric: str, data: Dataset, options: DDPMEvaluateOptions | None = None, *,
                 n: int | None = None, batch_size: int | None = None, k: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False) -> dict[str, float]:
        """metric "nll": the likelihood estimates of `likelihood.nll` (its docstring lists them) on the
        first n examples (None: 256) in batches of batch_size (None: 128), eq. 4.8 with k trajectories
        (None: 100), as `options` (a DDPMEvaluateOptions) chooses. No progress bar."""
        self.check_metric(metric)
        opts = self.options_of(options, "evaluate")
        validate_options(opts, "evaluate")
        self.net.eval()
        log_scale = 0.0 if self.is_image else float(torch.log(self.standardiser.scale).sum())
        trained = TrainedDenoiser(self.eps_fn(), self.ode_eps_fn(), self.sched, self.variance, self.decoder,
                                  self.is_image, self._to_model_space, log_scale, self.device)
        return nll(trained, data, n=256 if n is None else n, batch_size=batch_size or 128,
                   num_timesteps=opts.num_timesteps or None, generator=generator, estimates=opts.nll_estimates,
                   k=100 if k is None else k, ode_trace=opts.ode_trace, ode_probes=opts.ode_probes,
                   ode_probe=opts.ode_probe, ode_rtol=opts.ode_rtol, ode_atol=opts.ode_atol)

    @torch.no_grad()
    def views(self, generator: torch.Generator | None = None, data: Dataset | None = None, n: int = 8,
              frames: int = VIEW_FRAMES) -> dict[str, torch.Tensor]:
        """A denoising strip for images: n rows of x_t at `frames` times from x_T to x_0 by
        DDIM-50 (or T steps if fewer), as an (n * frames, C, H, W) batch (rows are samples); it
        draws from the model alone (`data` is not used). Points data: {}."""
        if not self.is_image:
            return {}
        snaps: list[torch.Tensor] = []
        steps = min(50, self.sched.T)
        keep = set(torch.linspace(steps, 1, frames - 1).round().long().tolist())

        def record(i, t, xt, x0_hat):
            if i in keep:
                snaps.append(xt.clamp(-1, 1))

        label = -1
        x0 = self.sample(n, DDPMSampleOptions(sampler="ddim", steps=steps, label=label), generator=generator,
                         callback=record)
        strip = torch.stack(snaps[: frames - 1] + [x0], dim=1)                  # (n, frames, C, H, W)
        return {"denoising": strip.reshape(-1, *strip.shape[2:])}
