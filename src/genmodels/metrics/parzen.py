"""Gaussian Parzen-window log-likelihood, with the protocol of Goodfellow et al. 2014 (section 5;
their `parzen_ll.py`): fit an isotropic Gaussian kernel density to samples of G,

    p_hat(x) = (1/N) sum_i N(x; s_i, sigma^2 I),
    log p_hat(x) = logmeanexp_i( -||x - s_i||^2 / (2 sigma^2) ) - D log(sigma sqrt(2 pi)),

choose sigma from logspace(-1, 0, 10) by the mean log-likelihood of validation images, and report
the mean and standard error (std / sqrt(T)) of log p_hat over the test images. Pixels are in
[0, 1] and flattened; the paper used N = 10,000 samples and 1,000 validation images and reports
225 +- 2 on MNIST. Theis et al. 2016 show this is a poor estimate of the log-likelihood in high
dimensions: report it to compare with the paper, not as a main score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genmodels.errors import DataError

GOODFELLOW_SIGMAS = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))


def images_to_unit(images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] (the library's convention) -> flattened (N, C*H*W) in [0, 1]."""
    return ((images.detach().double().clamp(-1, 1) + 1) / 2).flatten(1)


def _check(name: str, x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    x = torch.as_tensor(x).double()
    if x.dim() != 2 or len(x) == 0:
        raise DataError(f"Parzen window: {name} must be a non-empty (N, D) array of flattened pixels, "
                        f"got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise DataError(f"Parzen window: {name} has {x.shape[1]} dimensions but the samples have {dim}")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise DataError(f"Parzen window: {name} must have pixels in [0, 1] (Goodfellow et al.'s protocol), "
                        f"got values in [{lo:.3g}, {hi:.3g}]; convert images in [-1, 1] with images_to_unit")
    return x


def parzen_log_density(x: torch.Tensor, samples: torch.Tensor, sigmas: Sequence[float],
                       batch_size: int = 500) -> torch.Tensor:
    """log p_hat(x) under the Parzen window on `samples` for every sigma: (T, S) float64.

    x: (T, D); samples: (N, D); sigmas: S kernel widths. Works on `batch_size` rows of x at a time
    (memory batch_size x N), computing the squared distances once for all sigmas.
    """
    s = samples.double()
    n, d = s.shape
    sig = torch.as_tensor(list(sigmas), dtype=torch.float64, device=s.device)       # (S,)
    s_sq = (s * s).sum(1)                                                           # (N,)
    log_norm = math.log(n) + d * torch.log(sig * math.sqrt(2 * math.pi))            # (S,)
    out = []
    for xb in x.double().to(s.device).split(batch_size):
        d2 = ((xb * xb).sum(1, keepdim=True) + s_sq[None] - 2 * xb @ s.T).clamp_min_(0)  # (b, N) ||x - s_i||^2
        lse = torch.stack([torch.logsumexp(-d2 / (2 * sg * sg), dim=1) for sg in sig.tolist()], dim=1)  # (b, S)
        out.append(lse - log_norm[None])
    return torch.cat(out)


def parzen_log_likelihood(samples: torch.Tensor, test: torch.Tensor, validation: torch.Tensor | None = None,
                          sigmas: Sequence[float] | None = None, batch_size: int = 500) -> dict[str, float]:
    """Goodfellow et al.'s Parzen-window estimate of the test log-likelihood (nats per example).

    samples: (N, D) generated examples; test: (T, D) test examples; validation: (V, D) held-out
    examples used to choose sigma (the paper: 1,000); all flattened with pixels in [0, 1].
    sigmas: candidate kernel widths (default logspace(-1, 0, 10)); with a single sigma no
    validation set is needed. Returns {"mean", "stderr" (std / sqrt(T)), "sigma", "validation_mean"}.
    """
    samples = _check("samples", samples)
    test = _check("test", test, samples.shape[1])
    sigmas = list(GOODFELLOW_SIGMAS if sigmas is None else sigmas)
    if not sigmas or min(sigmas) <= 0:
        raise DataError(f"Parzen window: sigmas must be a non-empty list of positive widths, got {sigmas}")
    if len(sigmas) == 1:
        sigma, val_mean = sigmas[0], float("nan")
        if validation is not None:
            val_mean = float(parzen_log_density(_check("validation", validation, samples.shape[1]),
                                                samples, sigmas, batch_size).mean())
    else:
        if validation is None:
            raise DataError("Parzen window: choosing sigma among several needs a validation set "
                            "(Goodfellow et al. use 1,000 held-out images)")
        validation = _check("validation", validation, samples.shape[1])
        val = parzen_log_density(validation, samples, sigmas, batch_size).mean(0)       # (S,)
        best = int(val.argmax())
        sigma, val_mean = sigmas[best], float(val[best])
    ll = parzen_log_density(test, samples, [sigma], batch_size)[:, 0]                   # (T,)
    return {"mean": float(ll.mean()), "stderr": float(ll.std(unbiased=False) / math.sqrt(len(ll))),
            "sigma": float(sigma), "validation_mean": val_mean}
