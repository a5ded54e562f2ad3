"""The DDPM family's run config (`DDPMConfig`, the [model] table) and sampling options
(`DDPMSampleOptions`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from genmodels.config_fields import check_choices, param, require
from genmodels.data.dataset import DataSpec
from genmodels.diffusion.continuous import NoiseDensity, SNRWeighting
from genmodels.diffusion.gaussian import FixedVariance
from genmodels.diffusion.losses import LossType, Prediction
from genmodels.diffusion.samplers import (
    SPACINGS,
    SamplerName,
    SpacingSetting,
    describe_default_spacings,
    describe_default_steps,
    describe_samplers,
)
from genmodels.diffusion.schedule import Schedule
from genmodels.diffusion.t_sampler import TimestepSampler

MAX_T = 1_000_000  # diffusion steps; each schedule tensor holds T values (Ho et al.: 1000)
PredictionSetting = Literal["auto", Prediction]    # auto: v for images, eps for points (DDPMConfig.for_data)
Denoiser = Literal["auto", "unet", "mlp"]          # auto: U-Net for images, MLP for points


@dataclass
class DDPMConfig:
    """The diffusion process, the objective and the denoising network."""

    schedule: Schedule = param("linear", "noise schedule: linear (1e-4..0.02, Ho et al.) or cosine (Nichol & "
                               "Dhariwal)")
    T: int = param(1000, "number of diffusion steps T")
    variance: FixedVariance = param("beta", "reverse-process variance sigma_t^2 (seed Remark 7): beta = beta_t, "
                                    "beta_tilde = posterior variance (ignored with learn_sigma)")
    learn_sigma: bool = param(False, "the network also outputs v and learns Sigma = exp(v log beta_t + (1 - v) "
                              "log beta~_t) (Nichol & Dhariwal eq. 15); train it with loss = hybrid or vlb")
    loss: LossType = param("simple", "objective: simple (Algorithm 4.1), vlb (Theorem 8 bound), hybrid (Nichol & "
                           "Dhariwal's L_simple + lambda L_vlb, L_vlb training only the learned variance; needs "
                           "learn_sigma), simple+vlb (the same sum without their stop-gradient, so L_vlb also "
                           "trains the mean; what 'hybrid' meant before learn_sigma existed)")
    hybrid_lambda: float = param(0.001, "weight lambda of L_vlb in the hybrid and simple+vlb losses "
                                        "(Nichol & Dhariwal)")
    t_sampler: TimestepSampler = param("uniform", "how t is drawn in training: uniform (Algorithm 4.1) or "
                                       "importance (p_t proportional to sqrt(E[L_t^2]) over the last 10 values of "
                                       "each L_t, the loss reweighted by 1 / (T p_t); Nichol & Dhariwal sec. 3.3; "
                                       "needs a loss with L_vlb)")
    snr_gamma: float | None = param(None, "min-SNR-gamma weighting of the simple loss (Hang et al. 2023; 0 = off, "
                                    "Ho et al.'s uniform weighting; unset: 5 as in the paper for images, 0 "
                                    "for points and for prediction = edm, whose own weighting is unit weight "
                                    "on F)")
    snr_weighting: SNRWeighting = param("min", "how snr_gamma weights the x_0 error: min (min(SNR, gamma), Hang et "
                                        "al. 2023) or soft-min (SNR gamma / (SNR + gamma), Crowson et al. 2024)")
    noise_density: NoiseDensity = param("uniform", "density of the training noise levels: uniform (t ~ Unif{1..T}, "
                                        "Algorithm 4.1), lognormal (ln sigma ~ N(-1.2, 1.2^2), Karras et al. "
                                        "2022) or logit-normal (Esser et al. 2024's logit-normal(0, 1) time, "
                                        "which is ln sigma ~ N(0, 1)); the last two draw fractional steps and "
                                        "need loss = simple")
    density_mean: float | None = param(None, "mean of ln sigma for the lognormal / logit-normal density "
                                       "(unset: the paper's, -1.2 / 0)")
    density_std: float | None = param(None, "standard deviation of ln sigma for the lognormal / logit-normal "
                                      "density (unset: the paper's, 1.2 / 1)")
    prediction: PredictionSetting = param("auto", "what the network predicts: auto (v for images, eps for "
                                          "points), eps (Ho et al.), x0, v (Salimans & Ho), or edm (Karras et "
                                          "al. 2022's preconditioned F with c_skip, c_out, c_in; sigma_data)")
    sigma_data: float = param(0.5, "the data's standard deviation sigma_d in Karras et al.'s preconditioning "
                                   "(prediction = edm; 0.5 in the paper)")
    net: Denoiser = param("auto", "denoiser: auto (U-Net for images, MLP for points), unet, mlp")
    channels: int = param(16, "U-Net base channels (16 trains on a CPU in minutes; Ho et al. use 128)")
    channel_mults: list[int] = param([1, 2, 2], "U-Net channel multiplier per resolution level")
    num_res_blocks: int = param(1, "U-Net residual blocks per level")
    attention_resolutions: list[int] = param([7], "feature-map sizes with self-attention "
                                                  "(e.g. 7 for 28x28, 8 for 32x32)")
    attention_heads: int = param(1, "attention heads")
    dropout: float = param(0.0, "dropout in the denoiser's residual blocks (Ho et al.: 0.1 on CIFAR-10)")
    mlp_width: int = param(256, "MLP denoiser hidden width (points data)")
    mlp_depth: int = param(4, "MLP denoiser residual blocks (points data)")
    mlp_octaves: int = param(3, "Fourier features sin/cos(2^k pi x), k < octaves, of the MLP's input (0 = raw x; "
                             "more octaves roughen eps_theta's Jacobian, which the ODE likelihood integrates)")
    lr: float = param(0.0, "Adam learning rate (0 = 1e-3 for images and points; Ho et al. used 2e-4 for "
                      "35.7M parameters, recipe ddpm-ho2020)")
    class_conditional: bool = param(False, "condition on labels (classifier-free guidance, Ho & Salimans 2022)")
    p_uncond: float = param(0.1, "label dropout probability when class-conditional (trains the unconditional model)")

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field."""
        check_choices(self, "model")
        require(2 <= self.T <= MAX_T, f"model.T must be in 2..{MAX_T}, got {self.T}")
        require(self.hybrid_lambda >= 0, f"model.hybrid_lambda must be >= 0, got {self.hybrid_lambda}")
        require(self.snr_gamma is None or self.snr_gamma >= 0,
                f"model.snr_gamma must be >= 0 (0 = off), got {self.snr_gamma}")
        require(self.noise_density == "uniform" or (self.loss == "simple" and self.t_sampler == "uniform"),
                f"model.noise_density = {self.noise_density} draws fractional steps, which train L_simple only: "
                "it needs model.loss = simple and model.t_sampler = uniform")
        require(self.density_std is None or self.density_std > 0,
                f"model.density_std must be > 0, got {self.density_std}")
        require(self.density_mean is None or abs(self.density_mean) <= 10,
                f"model.density_mean must be in [-10, 10] (it is ln sigma), got {self.density_mean}")
        require(self.sigma_data > 0, f"model.sigma_data must be > 0, got {self.sigma_data}")
        require(self.loss != "hybrid" or self.learn_sigma,
                "model.loss = hybrid is Nichol & Dhariwal's L_hybrid, whose L_vlb term trains the learned variance: "
                "set model.learn_sigma = true, or use model.loss = simple+vlb for L_simple + lambda L_vlb with a "
                "fixed variance (what 'hybrid' meant before learn_sigma existed)")
        require(self.loss != "simple" or not self.learn_sigma,
                "model.learn_sigma with model.loss = simple leaves v untrained (L_simple does not depend on the "
                "variance); use model.loss = hybrid or vlb")
        require(self.t_sampler != "importance" or self.loss != "simple",
                "model.t_sampler = importance draws t from the history of the L_vlb terms; it needs model.loss = "
                "vlb, hybrid or simple+vlb")
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

    def for_data(self, spec: DataSpec) -> DDPMConfig:
        """A copy with the data-dependent defaults fixed for this kind of data (never its name).
        Images (retuned for time to quality on 28x28, docs/ddpm.md): v prediction with min-SNR-5
        weighting, Adam 1e-3. Points: eps prediction, uniform weighting, Adam 1e-3 (which with the
        trainer's cosine decay covers grid25's 25 modes, docs/ddpm.md)."""
        image = spec.kind == "image"
        prediction = self.prediction if self.prediction != "auto" else ("v" if image else "eps")
        gamma = 5.0 if image and prediction != "edm" else 0.0
        return replace(self, prediction=prediction, snr_gamma=self.snr_gamma if self.snr_gamma is not None else gamma,
                       lr=self.lr or 1e-3)

    @staticmethod
    def upgrade_saved(table: dict) -> tuple[dict, list[str]]:
        """A [model] table written by an older genmodels (a run's config.toml, a checkpoint), in
        today's names, and a note per change. Before learned variances (tables without
        learn_sigma), loss = "hybrid" was the fixed-variance L_simple + lambda L_vlb, now "simple+vlb";
        "hybrid" is Nichol & Dhariwal's L_hybrid, which needs learn_sigma."""
        if table.get("loss") == "hybrid" and "learn_sigma" not in table:
            return {**table, "loss": "simple+vlb"}, [
                "model.loss = 'hybrid' without model.learn_sigma was written before learned variances and is "
                "read as 'simple+vlb' (the fixed-variance L_simple + lambda L_vlb it meant then); 'hybrid' now "
                "means Nichol & Dhariwal's L_hybrid and needs model.learn_sigma = true"]
        return table, []


@dataclass
class DDPMSampleOptions:
    """Options of `genmodels sample` for a DDPM run. The samplers, their default steps and spacings
    are the registry's (`diffusion.samplers.SAMPLERS`), and so is the help that lists them."""

    sampler: SamplerName = param("ancestral", describe_samplers())
    steps: int = param(0, "visited noise levels, = network evaluations except for heun (Karras et al.'s N: 2N - 1 "
                       f"evaluations); 0 = the sampler's default: {describe_default_steps()}")
    eta: float = param(0.0, "DDIM eta (0 = deterministic, 1 = ancestral-like)")
    spacing: SpacingSetting = param("auto", f"visited steps: auto (the sampler's own: {describe_default_spacings()}), "
                                    f"{', '.join(SPACINGS)} (karras: Karras et al. eq. 5, rho = 7)")
    guidance: float = param(1.0, "classifier-free guidance scale w: eps_u + w (eps_c - eps_u); "
                                 "1 = plain conditional, 0 = unconditional")
    label: int = param(-1, "class to generate (class-conditional runs; -1 = cycle through all classes)")
    clip_x0: bool = param(True, "clip the predicted x_0 to [-1, 1] at each step (images only; ignored for points)")

    def validate(self) -> None:
        """Raise ConfigError naming the first out-of-range option."""
        require(self.steps >= 0, f"sample.steps must be >= 0 (0 = the sampler's default), got {self.steps}")
        require(0.0 <= self.eta <= 1.0, f"sample.eta must be in [0, 1], got {self.eta}")
        require(self.label >= -1, f"sample.label must be -1 (all classes) or a class index, got {self.label}")


