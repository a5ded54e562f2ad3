"""Likelihood estimates of a trained DDPM (`evaluate("nll")`): the Theorem 8 bound (seed eq. 4.10),
the eq. 4.8 importance-sampling estimate and the probability-flow ODE."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from genmodels.config_fields import param, require
from genmodels.data.dataset import Dataset
from genmodels.diffusion.bound import bits_per_dim, bound_terms
from genmodels.diffusion.loglik import log_likelihood_is
from genmodels.diffusion.ode_likelihood import Probe, Trace, dequantise, ode_log_likelihood
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, choice_error

NLL_ESTIMATES = ("bound", "is", "ode")   # Theorem 8 bound, seed eq. 4.8, probability-flow ODE


@dataclass
class DDPMEvaluateOptions:
    """Options of `evaluate("nll")` for a DDPM run (`genmodels evaluate DDPM_RUN --nll-estimates ...`);
    k, the eq. 4.8 trajectories, is the `k` every family's likelihood takes."""

    nll_estimates: str = param("bound,is,ode", "which likelihood estimates to report, comma-separated: bound "
                               "(Theorem 8), is (eq. 4.8 with k trajectories), ode (probability-flow ODE)")
    num_timesteps: int = param(0, "Theorem 8 bound: KL terms drawn at random (unbiased, faster; 0 = all T - 1)")
    ode_trace: Trace = param("auto", "ODE likelihood: divergence exact (D backward passes), hutchinson, or auto "
                             "(exact up to 16 dimensions)")
    ode_probes: int = param(1, "ODE likelihood: Hutchinson probes, fixed along the path")
    ode_probe: Probe = param("rademacher", "ODE likelihood: probe distribution")
    ode_rtol: float = param(1e-5, "ODE likelihood: relative tolerance of the RK45 solver (Song et al.: 1e-5)")
    ode_atol: float = param(1e-5, "ODE likelihood: absolute tolerance of the RK45 solver (Song et al.: 1e-5)")

    def validate(self) -> None:
        require(self.num_timesteps >= 0, f"num_timesteps must be >= 0 (0 = all), got {self.num_timesteps}")
        require(self.ode_probes >= 1, f"ode_probes must be >= 1, got {self.ode_probes}")
        require(self.ode_rtol > 0 and self.ode_atol > 0,
                f"ode_rtol and ode_atol must be > 0, got {self.ode_rtol}, {self.ode_atol}")


@dataclass
class TrainedDenoiser:
    """What the estimates need of a trained DDPM (built by `DDPM.evaluate`; this module does not
    know the model class): eps_theta at integer steps and at fractional ones (the ODE), the schedule,
    the reverse variance and decoder, the map into the model's space and, for points, the log-volume
    of the standardiser, sum_d log scale_d (0 for images)."""

    eps_fn: Callable
    ode_eps_fn: Callable
    sched: NoiseSchedule
    variance: str
    decoder: str
    is_image: bool
    to_model_space: Callable[[torch.Tensor], torch.Tensor]
    log_scale: float
    device: torch.device


@torch.no_grad()
def nll(model: TrainedDenoiser, data: Dataset, *, n: int = 256, batch_size: int = 128,
        num_timesteps: int | None = None, generator: torch.Generator | None = None,
        estimates: str = "bound,is,ode", k: int = 100, ode_trace: str = "auto", ode_probes: int = 1,
        ode_probe: str = "rademacher", ode_rtol: float = 1e-5, ode_atol: float = 1e-5) -> dict[str, float]:
    """Likelihood estimates on the first n examples of `data`, averaged over them,
    each named in `estimates` (comma-separated; each runs over all batches of `batch_size`
    before the next, so that one's numbers do not depend on which others run):

    bound: the Theorem 8 bound (seed eq. 4.10) per term and in total: bpd_L_T, bpd_L_1:T-1,
           bpd_L_0, bpd_total. T network calls per batch; num_timesteps: None uses all T - 1 KL
           terms, k' < T - 1 draws k' of them (unbiased, faster).
    is:    seed eq. 4.8 with k forward trajectories per example (`log_likelihood_is`): bpd_is, and
           is_k = k. In expectation an upper bound on -log p_theta(x_0) that tightens with k
           (k = 1 is the bound). T k network calls per example.
    ode:   the probability-flow ODE (`ode_likelihood.py`): bpd_ode, and ode_nfe, the solver's
           drift evaluations per batch (averaged); images are dequantised uniformly within their
           8-bit bins. ode_trace (auto / exact / hutchinson), ode_probes and ode_probe
           (rademacher / gaussian) choose the divergence estimate, ode_rtol / ode_atol the
           solver's tolerances (Song et al.: 1e-5).
    Images: bits/dim (the discretised decoder for the bound and eq. 4.8; the data must be on the
    8-bit grid). Points: nats/dim (nats_per_dim_* keys; continuous Gaussian decoder, in data
    coordinates). With learned variances, the bound and eq. 4.8 use Sigma_theta. Also n."""

    names = [e.strip() for e in estimates.split(",") if e.strip()]
    for e in names:
        if e not in NLL_ESTIMATES:
            raise choice_error("DDPM likelihood estimate", e, NLL_ESTIMATES)
    if not names:
        raise ConfigError(f"name at least one likelihood estimate of {', '.join(NLL_ESTIMATES)}")
    if k < 1:
        raise ConfigError(f"k (eq. 4.8 trajectories) must be >= 1, got {k}")
    x = data.x[:n]
    D = x[0].numel()
    batches = [model.to_model_space(x[i:i + batch_size].to(model.device, torch.float32))
               for i in range(0, len(x), batch_size)]
    sums: dict[str, float] = {}                          # nats summed over examples, in model space
    extra: dict[str, float] = {}
    if "bound" in names:
        sums.update(_bound_nats(model, batches, generator, num_timesteps))
    if "is" in names:
        sums["is"] = _is_nats(model, batches, generator, k, batch_size)
        extra["is_k"] = float(k)
    if "ode" in names:
        sums["ode"], nfe = _ode_nats(model, batches, generator, D, trace=ode_trace, probes=ode_probes,
                                     probe=ode_probe, rtol=ode_rtol, atol=ode_atol)
        extra["ode_nfe"] = nfe / len(batches)
    count = len(x)
    if model.is_image:
        out = {f"bpd_{key}": float(bits_per_dim(v / count, D)) for key, v in sums.items()}
    else:
        for key in ("total", "L_0", "is", "ode"):              # change of variables to data space
            if key in sums:
                sums[key] += model.log_scale * count
        out = {f"nats_per_dim_{key}": v / count / D for key, v in sums.items()}
    out.update(extra)
    out["n"] = float(count)
    return out


def _bound_nats(model: TrainedDenoiser, batches: list[torch.Tensor], generator: torch.Generator | None,
                num_timesteps: int | None) -> dict[str, float]:
    """The Theorem 8 bound's terms (seed eq. 4.10), nats summed over the examples of `batches` (model space)."""
    sums: dict[str, float] = {}
    for x0 in batches:
        terms = bound_terms(model.eps_fn, model.sched, x0, variance=model.variance, decoder=model.decoder,
                            generator=generator, num_timesteps=num_timesteps)       # seed eq. 4.10
        for key, v in terms.items():
            sums[key] = sums.get(key, 0.0) + float(v.sum())
    return sums


def _is_nats(model: TrainedDenoiser, batches: list[torch.Tensor], generator: torch.Generator | None, k: int,
             batch_size: int) -> float:
    """-log p_theta(x_0) by seed eq. 4.8 with k trajectories per example, nats summed over `batches`."""
    total = 0.0
    for x0 in batches:
        log_p = log_likelihood_is(model.eps_fn, model.sched, x0, num_trajectories=k, variance=model.variance,
                                  decoder=model.decoder, generator=generator,
                                  chunk=max(1, batch_size // len(x0)))              # seed eq. 4.8
        total = total - float(log_p.sum())
    return total


def _ode_nats(model: TrainedDenoiser, batches: list[torch.Tensor], generator: torch.Generator | None, D: int, *,
              trace: str, probes: int, probe: str, rtol: float, atol: float) -> tuple[float, int]:
    """(-log p_theta(x_0) by the probability-flow ODE, nats summed over `batches`; the solver's drift
    evaluations, summed over the batches). Images (D values each) are dequantised uniformly within
    their 8-bit bins."""
    total, nfe = 0.0, 0
    for x0 in batches:
        xq = dequantise(x0, generator) if model.is_image else x0
        result = ode_log_likelihood(model.ode_eps_fn, model.sched, xq, trace=trace, probes=probes,
                                    probe=probe, rtol=rtol, atol=atol, generator=generator)
        dequant = D * math.log(2.0 / 255.0) if model.is_image else 0.0          # + D log w (bin width)
        total = total - float((result.log_p + dequant).sum())
        nfe += result.nfe
    return total, nfe

