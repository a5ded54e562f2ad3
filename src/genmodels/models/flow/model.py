"""The flow model: flow matching on the linear path (Lipman et al. 2023; Liu et al. 2023, rectified flow).

The maths lives in `genmodels.diffusion.flow` (path, target, times, OT coupling, likelihood) and
`genmodels.diffusion.flow_samplers` (Euler, Heun, RK45, straightness); the networks are the DDPM's
(U-Net for images, MLP for points), reading the time as 1000 t. This module wires them to the
trainer's contract (`genmodels.models.base`): a training step of conditional flow matching, on the
data or on the reflow pairs of a previous flow (`reflow.py`), sampling with optional
classifier-free guidance, and `evaluate("nll")` (exact, by the instantaneous change of variables)
and `evaluate("straightness")` (Liu et al.'s S).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genmodels.config_fields import validate_options
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.diffusion.flow import (
    TIME_SCALE,
    couple,
    draw_times,
    flow_log_likelihood,
    flow_matching_loss,
    path_point,
    pseudo_huber_c,
    pseudo_huber_loss,
)
from genmodels.diffusion.flow_samplers import euler, get_flow_sampler, straightness
from genmodels.diffusion.ode_likelihood import dequantise, dequantised_bits_per_dim
from genmodels.errors import ConfigError
from genmodels.models.base import VIEW_FRAMES, GenerativeModel, eval_mode
from genmodels.models.flow.config import FlowConfig, FlowEvaluateOptions, FlowSampleOptions
from genmodels.models.flow.reflow import ReflowPairs, draw_pairs, pair_labels
from genmodels.models.optim import adam
from genmodels.models.standardiser import Standardiser
from genmodels.nets.denoiser_mlp import DenoiserMLP
from genmodels.nets.unet import UNet

ARCHITECTURE = ("net", "channels", "channel_mults", "num_res_blocks", "attention_resolutions", "attention_heads",
                "mlp_width", "mlp_depth", "mlp_octaves", "class_conditional")   # what reflow's weight copy needs equal


def velocity_net(config: FlowConfig, spec: DataSpec) -> nn.Module:
    """v_theta: the U-Net (images) or the residual MLP (points), with a label embedding when class-conditional."""
    image = spec.kind == "image"
    kind = config.net if config.net != "auto" else ("unet" if image else "mlp")
    if kind == "unet" and not image:
        raise ConfigError("model.net = unet needs image data; this data set holds points (use mlp or auto)")
    classes = spec.num_classes if config.class_conditional else 0
    if kind == "unet":
        return UNet(in_channels=spec.shape[0], channels=config.channels, channel_mults=config.channel_mults,
                    num_res_blocks=config.num_res_blocks, attention_resolutions=config.attention_resolutions,
                    dropout=config.dropout, num_classes=classes, heads=config.attention_heads,
                    image_size=min(spec.shape[1:]))
    return DenoiserMLP(dim=spec.dim, width=config.mlp_width, depth=config.mlp_depth, num_classes=classes,
                       octaves=config.mlp_octaves, dropout=config.dropout if image else 0.0)


class Flow(GenerativeModel):
    """Flow matching / rectified flow over images (B, C, H, W) in [-1, 1] or points (B, D)."""

    sample_options = FlowSampleOptions
    evaluate_options = FlowEvaluateOptions
    metric_names = ("nll", "straightness")

    def __init__(self, config: FlowConfig, spec: DataSpec, device: torch.device | str = "cpu"):
        config.validate()
        config = config.for_data(spec)
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.is_image = spec.kind == "image"
        if config.class_conditional and spec.num_classes < 1:
            raise ConfigError("model.class_conditional needs labelled data; this data set has no classes")
        self.net = velocity_net(config, spec).to(self.device)
        self.standardiser = Standardiser(1 if self.is_image else spec.dim).to(self.device)
        self.pairs = (ReflowPairs(config.reflow_pairs, tuple(spec.shape), config.reflow_seed).to(self.device)
                      if config.reflow_from else None)
        self.opt = adam(self.net.parameters(), lr=config.lr)

    # --- the contract -------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The velocity network, the points standardiser and, for reflow, the pairs (buffers)."""
        out = {"velocity": self.net, "standardiser": self.standardiser}
        if self.pairs is not None:
            out["reflow_pairs"] = self.pairs
        return out

    def ema_modules(self) -> dict[str, nn.Module]:
        """The velocity network (its EMA is what samples)."""
        return {"velocity": self.net}

    def sampling_modules(self) -> list[str]:
        """Sampling needs the network and the standardiser, not the reflow pairs."""
        return ["velocity", "standardiser"]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam over the velocity network."""
        return {"velocity": self.opt}

    def _to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_image else (x - self.standardiser.shift) / self.standardiser.scale

    def _to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.is_image else x * self.standardiser.scale + self.standardiser.shift

    def _training_pairs(self, batch, ctx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x_0, x_1, labels or None) of one step: the data with fresh noise, coupled as configured, or,
        for reflow, B pairs of the previous flow drawn with replacement."""
        x, y = batch
        c = self.config
        if self.pairs is not None:
            index = torch.randint(len(self.pairs.x0), (x.shape[0],), generator=ctx.generator, device=self.device)
            x0, eps, labels = self.pairs.batch(index)
            return x0, eps, labels if c.class_conditional else None
        x = x.to(self.device, torch.float32)
        if not self.is_image and not self.standardiser.is_fitted():
            self.standardiser.fit(ctx.global_batch(x))      # the global batch: independent of the processes
        x0 = self._to_model_space(x)
        eps = torch.randn(x0.shape, generator=ctx.generator, device=self.device)
        return x0, couple(x0, eps, c.coupling), y.to(self.device).long() if c.class_conditional else None

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """One step of conditional flow matching: x_t = (1 - t) x_0 + t x_1 (x_1 the noise),
        loss ||v_theta(x_t, t) - (x_1 - x_0)||^2 (`diffusion.flow`, eq. 1), or its pseudo-Huber form."""
        c = self.config
        x0, eps, labels = self._training_pairs(batch, ctx)
        t = draw_times(x0.shape[0], c.time_density, ctx.generator, self.device, c.density_mean, c.density_std,
                       c.density_a)
        if labels is not None:                                  # label dropout (Ho & Salimans 2022)
            drop = torch.rand(labels.shape, generator=ctx.generator, device=self.device) < c.p_uncond
            labels = torch.where(drop, torch.full_like(labels, -1), labels)
        self.net.train()
        with ctx.autocast():
            v = self.net(path_point(x0, eps, t), t * TIME_SCALE, labels)
        loss = self.loss_per_example(v, x0, eps).mean()
        ctx.optimize(loss, self.opt, [self.net])
        return {"loss": loss.detach()}

    def loss_per_example(self, v: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The configured loss of each example (B,): mse, or pseudo-huber with model.huber_c (0: 0.00054 sqrt(D))."""
        c = self.config
        if c.loss == "pseudo-huber":
            return pseudo_huber_loss(v, x0, eps, c.huber_c or pseudo_huber_c(x0[0].numel()))
        return flow_matching_loss(v, x0, eps)

    def velocity_fn(self, labels: torch.Tensor | None = None, guidance: float = 1.0):
        """v(x_t, t) for samplers and the likelihood, t (B,) in [0, 1]; with labels and w != 1 the
        classifier-free guided v_u + w (v_c - v_u) (Ho & Salimans 2022, on velocities)."""

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            s = t.float() * TIME_SCALE
            if labels is None or guidance == 1.0:
                return self.net(x, s, labels).float()
            if guidance == 0.0:
                return self.net(x, s, None).float()
            v_c, v_u = self.net(torch.cat([x, x]), torch.cat([s, s]),
                                torch.cat([labels, torch.full_like(labels, -1)])).float().chunk(2)
            return v_u + guidance * (v_c - v_u)

        return velocity

    def _labels(self, n: int, label: int, guidance: float) -> torch.Tensor | None:
        """The labels of n samples (label, or 0..K-1 cycled for -1); None for an unconditional run."""
        if not self.config.class_conditional:
            if label != -1 or guidance != 1.0:
                raise ConfigError("--label and --guidance need a class-conditional run (model.class_conditional = "
                                  "true)")
            return None
        if not -1 <= label < self.spec.num_classes:
            raise ConfigError(f"label must be -1 (all classes) or in 0..{self.spec.num_classes - 1}, got {label}")
        return pair_labels(n, self.spec.num_classes, self.device) if label < 0 else \
            torch.full((n,), label, dtype=torch.long, device=self.device)

    def preview_options(self) -> FlowSampleOptions:
        """The trainer's sample grids: Heun with 10 steps (20 network evaluations)."""
        return FlowSampleOptions(sampler="heun", steps=10)

    def _solve(self, x_1: torch.Tensor, options: FlowSampleOptions, labels: torch.Tensor | None,
               callback=None) -> torch.Tensor:
        """The ODE from x_1 (model space, t = 1) to t = 0 with the options' sampler."""
        spec = get_flow_sampler(options.sampler)
        extra = {name: getattr(options, name) for name in spec.extra}    # the options it takes (rtol, atol)
        with eval_mode(self.net):
            return spec.fn(self.velocity_fn(labels, options.guidance), x_1, steps=options.steps or spec.steps,
                           callback=callback, **extra)

    @torch.no_grad()
    def sample(self, n: int, options: FlowSampleOptions | None = None, *, generator: torch.Generator | None = None,
               callback=None) -> torch.Tensor:
        """n samples in data space: images (n, C, H, W) in [-1, 1] or points (n, D), from x_1 ~ N(0, I)
        by the options' sampler; callback(i, t, x_t, v) sees each step of euler and heun."""
        opts = self.options_of(options)
        validate_options(opts, "sample")
        labels = self._labels(n, opts.label, opts.guidance)
        x_1 = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)
        x0 = self._to_data_space(self._solve(x_1, opts, labels, callback))
        return x0.clamp(-1, 1) if self.is_image else x0

    # --- reflow -------------------------------------------------------------------------
    def start_reflow(self, previous: Flow, *, progress: bool = False, pairs: ReflowPairs | None = None) -> None:
        """Begin a reflow run from the previous flow (Liu et al. 2023, Algorithm 1): copy its network and
        standardiser (the new flow starts from its weights, as theirs does) and draw the pairs
        (x_1 from reflow_seed, x_0 its ODE solution with reflow_sampler / reflow_steps), or copy
        `pairs`, drawn so by an earlier reflow run (`sources.reflow_pairs_of` checks that). ConfigError
        when the networks differ or this model takes no pairs (model.reflow_from unset). `progress`: a
        progress bar over the pairs."""
        if self.pairs is None:
            raise ConfigError("reflow needs model.reflow_from (the previous flow)")
        differ = [f"model.{k}: {getattr(previous.config, k)!r} there vs {getattr(self.config, k)!r} here"
                  for k in ARCHITECTURE if getattr(previous.config, k) != getattr(self.config, k)]
        if differ:
            raise ConfigError(f"reflow from {self.config.reflow_from}: the velocity network differs from the "
                              f"previous flow's ({'; '.join(differ)})")
        self.net.load_state_dict(previous.net.state_dict())
        self.standardiser.load_state_dict(previous.standardiser.state_dict())
        if pairs is not None:
            if pairs.x0.shape != self.pairs.x0.shape:
                raise ConfigError(f"reflow pairs of shape {tuple(pairs.x0.shape)}; this run takes "
                                  f"{tuple(self.pairs.x0.shape)}")
            self.pairs.fill(pairs.x0.to(self.device), pairs.labels.to(self.device))
            return
        options = FlowSampleOptions(sampler=self.config.reflow_sampler, steps=self.config.reflow_steps)
        labels = pair_labels(len(self.pairs.x0), self.spec.num_classes if self.config.class_conditional else 0,
                             self.device)

        def solve(x_1: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return previous._solve(x_1, options, y if self.config.class_conditional else None)

        with torch.no_grad():
            self.pairs.fill(draw_pairs(solve, self.pairs.noise(), labels, progress=progress), labels)

    # --- the family's metrics -----------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, metric: str, data: Dataset, options: FlowEvaluateOptions | None = None, *,
                 n: int | None = None, batch_size: int | None = None, k: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False) -> dict[str, float]:
        """"nll": the exact negative log-likelihood of the first n test examples (None: 256), in batches
        of batch_size (None: 128), by the instantaneous change of variables (`flow.flow_log_likelihood`):
        bpd_ode in bits/dim for images (uniformly dequantised within the 8-bit bins, as the DDPM's ODE
        estimate), nats_per_dim_ode for points (in data coordinates); ode_nfe, the solver's
        evaluations per batch. "straightness": Liu et al.'s S per dimension over n trajectories (None:
        1000) from `generator`'s noise. k (importance samples) does not apply; no progress bar."""
        self.check_metric(metric)
        opts = self.options_of(options, "evaluate")
        validate_options(opts, "evaluate")
        with eval_mode(self.net):
            if metric == "straightness":
                return self._straightness(1000 if n is None else n, batch_size or 500, opts, generator)
            return self._nll(data, 256 if n is None else n, batch_size or 128, opts, generator)

    def _straightness(self, n: int, batch_size: int, opts: FlowEvaluateOptions,
                      generator: torch.Generator | None) -> dict[str, float]:
        total = 0.0
        for start in range(0, n, batch_size):
            x_1 = torch.randn((min(batch_size, n - start), *self.spec.shape), generator=generator, device=self.device)
            total += float(straightness(self.velocity_fn(), x_1, opts.straightness_steps).sum())
        return {"straightness": total / n, "straightness_steps": float(opts.straightness_steps), "n": float(n)}

    def _nll(self, data: Dataset, n: int, batch_size: int, opts: FlowEvaluateOptions,
             generator: torch.Generator | None) -> dict[str, float]:
        x = data.x[:n]
        D = math.prod(x.shape[1:])
        nll, nfe, batches = 0.0, 0, 0
        for start in range(0, len(x), batch_size):
            x0 = self._to_model_space(x[start:start + batch_size].to(self.device, torch.float32))
            xq = dequantise(x0, generator) if self.is_image else x0
            result = flow_log_likelihood(self.velocity_fn(), xq, trace=opts.ode_trace, probes=opts.ode_probes,
                                         probe=opts.ode_probe, rtol=opts.ode_rtol, atol=opts.ode_atol,
                                         generator=generator)
            if self.is_image:      # bits/dim of the discrete data (an upper bound in expectation over u)
                nll += float(dequantised_bits_per_dim(result.log_p, D).sum())
            else:                  # -log p in data coordinates: + sum_d log scale_d of the standardiser
                nll += float((float(torch.log(self.standardiser.scale).sum()) - result.log_p).sum()) / D
            nfe, batches = nfe + result.nfe, batches + 1
        key = "bpd_ode" if self.is_image else "nats_per_dim_ode"
        return {key: nll / len(x), "ode_nfe": nfe / max(batches, 1), "n": float(len(x))}

    @torch.no_grad()
    def views(self, generator: torch.Generator | None = None, data: Dataset | None = None, n: int = 8,
              frames: int = VIEW_FRAMES) -> dict[str, torch.Tensor]:
        """Images: n rows of x_t at `frames` times from t = 1 to 0 along 50 Euler steps, as an
        (n * frames, C, H, W) batch; it draws from the model alone. Points data: {}."""
        if not self.is_image:
            return {}
        steps = 50
        keep = set(torch.linspace(steps, 1, frames - 1).round().long().tolist())
        snaps: list[torch.Tensor] = []
        x_1 = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)
        with eval_mode(self.net):
            x0 = euler(self.velocity_fn(), x_1, steps=steps,
                       callback=lambda i, t, x, v: snaps.append(x.clamp(-1, 1)) if i in keep else None)
        strip = torch.stack(snaps[: frames - 1] + [x0.clamp(-1, 1)], dim=1)
        return {"trajectory": strip.reshape(-1, *strip.shape[2:])}
