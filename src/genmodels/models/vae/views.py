"""Picture grids of a trained VAE: reconstructions, samples, latent interpolations and, for a
2-D latent, the latent-space map of Kingma & Welling 2013 (Fig. 4).

Every grid is returned as one image (1, C, H', W') in [-1, 1] (tiled by `viz.tile`), ready for
`viz.save_grid`.
"""

from __future__ import annotations

import torch

from genmodels.viz import tile


def reconstructions(model, x: torch.Tensor) -> torch.Tensor:
    """Inputs x (n, C, H, W) on the top row, their reconstructions E[x | z = mu_phi(x)] below."""
    mu, _ = model.encode(x)
    x_hat = model.decode(mu)
    return tile(torch.cat([x.to(x_hat.device), x_hat]), nrow=len(x))


def interpolations(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """One row per pair: decodes of z = (1 - t) mu(x_a) + t mu(x_b), t = 0 .. 1 in `steps` steps.
    x_a, x_b: (n, C, H, W). Returns a grid of n rows."""
    mu_a, _ = model.encode(x_a)
    mu_b, _ = model.encode(x_b)
    t = torch.linspace(0, 1, steps, device=mu_a.device).view(1, steps, 1)
    z = (1 - t) * mu_a[:, None] + t * mu_b[:, None]                    # (n, steps, L)
    return tile(model.decode(z.reshape(-1, z.shape[-1])), nrow=steps)


def latent_map(model, n: int = 20) -> torch.Tensor:
    """For L = 2: decodes of an n x n grid of z at the Gaussian quantiles of linspace(0.05, 0.95),
    so that equal areas of the map hold equal prior mass (Kingma & Welling 2013, Fig. 4)."""
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")            # z2 grows upwards
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)
    return tile(model.decode(z), nrow=n)


def all_views(model, generator: torch.Generator | None, x: torch.Tensor | None,
              n_samples: int = 64) -> dict[str, torch.Tensor]:
    """The family's report grids: samples always; reconstructions and interpolations when images
    x (at least 2) are given; the latent map when the latent is 2-D."""
    out = {"samples": tile(model.sample(n_samples, generator=generator), nrow=8)}
    if x is not None and len(x) >= 2:
        x = x[:16]
        out["reconstructions"] = reconstructions(model, x[:8])
        half = len(x) // 2
        out["interpolations"] = interpolations(model, x[:half], x[half:2 * half])
    if model.config.latent_dim == 2:
        out["latent_map"] = latent_map(model)
    return out
