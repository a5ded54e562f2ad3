"""Mode coverage on 2-D Gaussian mixtures (ring of 8, grid of 25), as in VEEGAN (Srivastava et
al. 2017) and PacGAN (Lin et al. 2018).

The rule, for samples (N, 2), mode centres (M, 2) and the components' standard deviation std:
- each sample is assigned to its nearest mode centre;
- a sample is *high quality* if that distance is at most `threshold` * std (3 standard deviations);
- a mode is *captured* if at least `min_count` high-quality samples are assigned to it. PacGAN
  uses 20 of 2,500 samples (0.8%); the default scales that to the number of samples given:
  min_count = max(1, round(0.008 * N)).
- reverse_kl is KL(p_samples || uniform) of the mode histogram of the high-quality samples
  (PacGAN's "reverse KL"): 0 when all M modes get equal shares, log M when one mode gets all
  (and, by convention, when no sample is high quality).
"""

from __future__ import annotations

import math

import torch

PACGAN_MIN_SHARE = 20 / 2500   # PacGAN: a mode counts with >= 20 high-quality samples of 2,500


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, std: float, threshold: float = 3.0,
                  min_count: int | None = None) -> dict[str, float]:
    """Modes captured and share of high-quality samples.

    samples: (N, 2) generated points; modes: (M, 2) true mode centres; std: the standard deviation
    of each mixture component. Returns {"modes_captured", "num_modes", "high_quality" (fraction of
    the N samples within threshold * std of their nearest mode), "reverse_kl", "min_count"}.
    """
    samples = torch.as_tensor(samples, dtype=torch.float64)
    modes = torch.as_tensor(modes, dtype=torch.float64)
    if samples.dim() != 2 or modes.dim() != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"mode_coverage needs samples (N, D) and modes (M, D) of the same D, got "
                         f"{tuple(samples.shape)} and {tuple(modes.shape)}")
    if len(samples) == 0 or len(modes) == 0:
        raise ValueError("mode_coverage needs at least one sample and one mode")
    if not std > 0:
        raise ValueError(f"mode_coverage: std must be > 0, got {std}")
    n, m = len(samples), len(modes)
    if min_count is None:
        min_count = max(1, round(PACGAN_MIN_SHARE * n))
    dist = torch.cdist(samples, modes)                     # (N, M)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= threshold * std
    counts = torch.bincount(nearest[good], minlength=m)    # high-quality samples per mode
    captured = int((counts >= min_count).sum())
    total = int(counts.sum())
    if total:
        p = counts.double() / total
        nz = p > 0
        reverse_kl = float((p[nz] * (p[nz] * m).log()).sum())
    else:
        reverse_kl = math.log(m)
    return {"modes_captured": float(captured), "num_modes": float(m), "high_quality": total / n,
            "reverse_kl": reverse_kl, "min_count": float(min_count)}
