"""The flow family's run config (`FlowConfig`, the [model] table), sampling options (`FlowSampleOptions`)
and evaluation options (`FlowEvaluateOptions`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from genmodels.config_fields import check_choices, param, require
from genmodels.data.dataset import DataSpec
from genmodels.diffusion.flow import U_SHAPE_A, Coupling, FlowLoss, TimeDensity
from genmodels.diffusion.flow_samplers import FlowSamplerName, describe_flow_samplers
from genmodels.diffusion.ode_likelihood import Probe, Trace

TimeDensitySetting = Literal["auto", TimeDensity]   # auto: logit-normal for images, uniform for points
VelocityNet = Literal["auto", "unet", "mlp"]         # auto: U-Net for images, MLP for points
MAX_REFLOW_PAIRS = 10_000_000


@dataclass
class FlowConfig:
    """The path, the coupling, the time density, the velocity network and reflow."""

    time_density: TimeDensitySetting = param("auto", "density of the training times t: auto (logit-normal for "
                                             "images, uniform for points), uniform, logit-normal (t = sigmoid(u), "
                                             "u ~ N(density_mean, density_std^2); Esser et al. 2024), or u-shaped "
                                             "(p(t) proportional to cosh(density_a (t - 1/2)); Lee et al. 2024, for "
                                             "reflow)")
    density_mean: float = param(0.0, "logit-normal location m (Esser et al.: 0)")
    density_std: float = param(1.0, "logit-normal scale s (Esser et al.: 1)")
    density_a: float = param(U_SHAPE_A, "u-shaped: a, the weight of the ends (Lee et al.: 4)")
    loss: FlowLoss = param("mse", "training loss: mse (squared error to the velocity target), or pseudo-huber "
                           "(sqrt(||v - u||^2 + c^2) - c; Song & Dhariwal 2023, for reflow Lee et al. 2024)")
    huber_c: float = param(0.0, "pseudo-huber: c (0 = 0.00054 sqrt(D) for D data dimensions; Song & Dhariwal)")
    coupling: Coupling = param("independent", "how noise is paired with data in a minibatch: independent, or ot "
                               "(exact minibatch optimal transport on squared distances; Tong et al. 2023)")
    net: VelocityNet = param("auto", "velocity network: auto (U-Net for images, MLP for points), unet, mlp")
    channels: int = param(16, "U-Net base channels")
    channel_mults: list[int] = param([1, 2, 2], "U-Net channel multiplier per resolution level")
    num_res_blocks: int = param(1, "U-Net residual blocks per level")
    attention_resolutions: list[int] = param([7], "feature-map sizes with self-attention")
    attention_heads: int = param(1, "attention heads")
    dropout: float = param(0.0, "dropout in the velocity network's residual blocks")
    mlp_width: int = param(256, "MLP hidden width (points data)")
    mlp_depth: int = param(4, "MLP residual blocks (points data)")
    mlp_octaves: int = param(3, "Fourier-feature octaves of the MLP's input (0 = raw x)")
    lr: float = param(0.0, "Adam learning rate (0 = 1e-3)")
    class_conditional: bool = param(False, "condition on labels (classifier-free guidance, Ho & Salimans 2022)")
    p_uncond: float = param(0.1, "label dropout probability when class-conditional")
    reflow_from: str = param("", "reflow (Liu et al. 2023): the previous flow (run directory or zoo:NAME) whose "
                             "(noise, sample) pairs this run trains on, starting from its weights (\"\" = train on "
                             "the data)")
    reflow_pairs: int = param(10000, "reflow: number of (noise, sample) pairs, drawn once from reflow_seed")
    reflow_seed: int = param(0, "reflow: the seed of the pairs' noise (pair i is a function of this seed and i)")
    reflow_sampler: FlowSamplerName = param("rk45", "reflow: the previous flow's sampler for the pairs")
    reflow_steps: int = param(0, "reflow: its steps (0 = the sampler's default)")
    reflow_pairs_from: str = param("", "reflow: an earlier reflow run directory whose pairs this run takes instead of "
                                   "drawing them again (it must have drawn them with the same reflow_from, "
                                   "reflow_pairs, reflow_seed, reflow_sampler, reflow_steps and "
                                   "class_conditional); \"\" = draw them")

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        check_choices(self, "model")
        require(self.density_std > 0, f"model.density_std must be > 0, got {self.density_std}")
        require(0 < self.density_a <= 50, f"model.density_a must be in (0, 50], got {self.density_a}")
        require(self.huber_c >= 0, f"model.huber_c must be >= 0 (0 = 0.00054 sqrt(D)), got {self.huber_c}")
        require(not self.reflow_pairs_from or bool(self.reflow_from),
                "model.reflow_pairs_from takes the pairs of a reflow: set model.reflow_from (the previous flow) too")
        require(abs(self.density_mean) <= 10, f"model.density_mean must be in [-10, 10], got {self.density_mean}")
        for name in ("channels", "num_res_blocks", "attention_heads", "mlp_width", "mlp_depth"):
            require(getattr(self, name) >= 1, f"model.{name} must be >= 1, got {getattr(self, name)}")
        require(bool(self.channel_mults) and min(self.channel_mults) >= 1,
                f"model.channel_mults must be positive, got {self.channel_mults}")
        require(self.channels % self.attention_heads == 0,
                f"model.attention_heads ({self.attention_heads}) must divide model.channels ({self.channels})")
        for name, low, high in (("dropout", 0.0, 1.0), ("p_uncond", 0.0, 1.0)):
            require(low <= getattr(self, name) < high, f"model.{name} must be in [{low:g}, {high:g}), got "
                                                       f"{getattr(self, name)}")
        require(0 <= self.mlp_octaves <= 16 and self.lr >= 0,
                f"model.mlp_octaves must be in 0..16 and model.lr >= 0, got {self.mlp_octaves}, {self.lr}")
        require(1 <= self.reflow_pairs <= MAX_REFLOW_PAIRS,
                f"model.reflow_pairs must be in 1..{MAX_REFLOW_PAIRS}, got {self.reflow_pairs}")
        require(self.reflow_seed >= 0, f"model.reflow_seed must be >= 0, got {self.reflow_seed}")
        require(self.reflow_steps >= 0, f"model.reflow_steps must be >= 0 (0 = default), got {self.reflow_steps}")

    def for_data(self, spec: DataSpec) -> FlowConfig:
        """A copy with the data-dependent defaults fixed for this kind of data (never its name):
        images train on logit-normal times (Esser et al. 2024's best for images), points on uniform
        ones (Liu et al. 2023, Lipman et al. 2023); Adam 1e-3 for both."""
        density = self.time_density
        if density == "auto":
            density = "logit-normal" if spec.kind == "image" else "uniform"
        return replace(self, time_density=density, lr=self.lr or 1e-3)


@dataclass
class FlowSampleOptions:
    """Options of `genmodels sample` for a flow run; the samplers and their default steps are the
    registry's (`diffusion.flow_samplers.FLOW_SAMPLERS`)."""

    sampler: FlowSamplerName = param("rk45", describe_flow_samplers())
    steps: int = param(0, "uniform time steps from t = 1 to 0 (euler: = network evaluations; heun: 2 per step; "
                       "ignored by rk45); 0 = the sampler's default")
    guidance: float = param(1.0, "classifier-free guidance scale w: v_u + w (v_c - v_u); 1 = plain conditional, "
                                 "0 = unconditional")
    label: int = param(-1, "class to generate (class-conditional runs; -1 = cycle through all classes)")
    rtol: float = param(1e-5, "rk45: relative tolerance")
    atol: float = param(1e-5, "rk45: absolute tolerance")

    def validate(self) -> None:
        """Raise ConfigError naming the first out-of-range option."""
        require(self.steps >= 0, f"sample.steps must be >= 0 (0 = the sampler's default), got {self.steps}")
        require(self.label >= -1, f"sample.label must be -1 (all classes) or a class index, got {self.label}")
        require(self.rtol > 0 and self.atol > 0, f"sample.rtol and sample.atol must be > 0, got {self.rtol}, "
                                                 f"{self.atol}")


@dataclass
class FlowEvaluateOptions:
    """Options of the flow's own metrics (`genmodels evaluate FLOW_RUN --metrics nll,straightness`)."""

    ode_trace: Trace = param("auto", "likelihood: divergence exact (D backward passes), hutchinson, or auto "
                             "(exact up to 16 dimensions)")
    ode_probes: int = param(1, "likelihood: Hutchinson probes, fixed along the path")
    ode_probe: Probe = param("rademacher", "likelihood: probe distribution")
    straightness_steps: int = param(100, "straightness: Euler steps of the trajectories it is measured on")
    ode_rtol: float = param(1e-5, "likelihood: relative tolerance of the RK45 solver")
    ode_atol: float = param(1e-5, "likelihood: absolute tolerance of the RK45 solver")

    def validate(self) -> None:
        """Raise ConfigError naming the first out-of-range option."""
        require(min(self.ode_probes, self.straightness_steps) >= 1,
                f"ode_probes and straightness_steps must be >= 1, got {self.ode_probes}, {self.straightness_steps}")
        require(min(self.ode_rtol, self.ode_atol) > 0,
                f"ode_rtol and ode_atol must be > 0, got {self.ode_rtol}, {self.ode_atol}")
