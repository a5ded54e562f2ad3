"""The figures of `genmodels theory` (matplotlib's object API with the Agg canvas: no global
backend switch). Each function writes `theory_<name>.png` under `plots_dir` and returns its path."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from genmodels.atomic import atomic_file


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is slow to import
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    fig = Figure(figsize=(width * ncols, height))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, plots_dir: str | os.PathLike, name: str) -> str:

    path = Path(plots_dir) / f"theory_{name}.png"
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return str(path)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t


def discriminator(plots_dir, x, p_data, p_g, d_star, d_net, region) -> str:
    """Proposition 2: the densities, D* = p_data / (p_data + p_g) and the trained D on a grid (n,)."""
    fig, (ax,) = _figure()
    ax.plot(_np(x), _np(p_data), color="0.2", lw=1, label="p_data")
    ax.plot(_np(x), _np(p_g), color="0.6", lw=1, ls="--", label="p_g")
    ax.plot(_np(x), _np(d_star), color="tab:red", lw=2.5, alpha=0.6, label="D* = p_data / (p_data + p_g)")
    ax.plot(_np(x), _np(d_net), color="tab:blue", lw=1, label="trained D (discriminator_loss)")
    xr = _np(x[region])
    ax.axvspan(xr[0], xr[-1], color="0.93", zorder=0, label="compared region")
    ax.set_xlim(float(xr[0]) - 1.0, float(xr[-1]) + 1.0)
    ax.set_xlabel("x")
    ax.set_title("Proposition 2: the optimal discriminator")
    ax.legend(fontsize=7)
    return _save(fig, plots_dir, "prop2_discriminator")


def theorem3(plots_dir, rows: Sequence[dict]) -> str:
    """Theorem 3: C(G) against JSD(p_data, p_g) for each pair, on the line -log 4 + 2 JSD."""
    fig, (ax,) = _figure()
    j = [r["JSD"] for r in rows]
    c = [r["C(G)"] for r in rows]
    top = max(j) * 1.1 + 0.01
    ax.plot([0, top], [-math.log(4), -math.log(4) + 2 * top], color="0.6", lw=1, label="-log 4 + 2 JSD")
    ax.scatter(j, c, color="tab:blue", zorder=3, label="C(G) = V(D*, G) by quadrature")
    same = [r["pair"] for r in rows if r["JSD"] < 1e-9]
    for r in rows:
        if r["JSD"] >= 1e-9:
            ax.annotate(r["pair"], (r["JSD"], r["C(G)"]), fontsize=6, xytext=(4, -8), textcoords="offset points")
    if same:
        ax.annotate("p_g = p_data: " + "; ".join(same), (0.0, -math.log(4)), fontsize=6, xytext=(6, 8),
                    textcoords="offset points")
    ax.axhline(-math.log(4), color="tab:red", lw=0.8, ls=":", label="-log 4")
    ax.set_xlabel("JSD(p_data, p_g) (nats)")
    ax.set_ylabel("C(G)")
    ax.set_title("Theorem 3: C(G) = -log 4 + 2 JSD")
    ax.legend(fontsize=7)
    return _save(fig, plots_dir, "thm3_jsd")


def criterion_curve(plots_dir, history: Sequence[float]) -> str:
    """Proposition 4: C(G) after each generator step, and C(G) + log 4 on a log scale."""
    fig, (ax, ax2) = _figure(2, width=5.0)
    ax.plot(range(len(history)), history, color="tab:blue", lw=1.5, label="C(G)")
    ax.axhline(-math.log(4), color="tab:red", lw=0.8, ls=":", label="-log 4")
    ax.set_xlabel("generator step")
    ax.set_title("Proposition 4: C(G) with D = D* each step")
    ax.legend(fontsize=7)
    gap = [max(h + math.log(4), 1e-18) for h in history]
    ax2.semilogy(range(len(gap)), gap, color="tab:blue", lw=1.5)
    ax2.set_xlabel("generator step")
    ax2.set_title("C(G) + log 4 = 2 JSD(p_data, p_g)")
    return _save(fig, plots_dir, "prop4_criterion")


def feller(plots_dir, betas: Sequence[float], kls: Sequence[float], examples: Sequence[dict]) -> str:
    """Theorem 5: KL(true reverse kernel || its moment-matched Gaussian) against beta, and the
    kernels q(x_{t-1} | x_t) at one x_t for a large and a small beta."""
    fig, axes = _figure(1 + len(examples), width=4.5)
    axes[0].loglog(betas, kls, "o-", color="tab:blue")
    axes[0].set_xlabel("beta")
    axes[0].set_ylabel("E_{x_t} KL(q(x_{t-1} | x_t) || Gaussian)")
    axes[0].set_title("Theorem 5: reverse kernel -> Gaussian")
    for ax, ex in zip(axes[1:], examples, strict=True):
        ax.plot(_np(ex["x"]), _np(ex["kernel"]), color="tab:blue", lw=1.5, label="q(x_{t-1} | x_t) (Bayes)")
        ax.plot(_np(ex["x"]), _np(ex["gaussian"]), color="tab:red", lw=1, ls="--", label="moment-matched Gaussian")
        ax.set_title(f"beta = {ex['beta']:g}, x_t = {ex['x_t']:.2f}")
        ax.set_xlabel("x_{t-1}")
        ax.legend(fontsize=7)
    return _save(fig, plots_dir, "thm5_feller")


def loglik_convergence(plots_dir, ks: Sequence[int], estimates: Sequence[float], stderrs: Sequence[float],
                       exact: float, bound: float) -> str:
    """Theorem 8 / eq. 4.8: the importance-sampling estimate of log p_theta(x_0) against the number
    of trajectories K, with the exact value and minus the bound L."""
    fig, (ax,) = _figure()
    ax.errorbar(ks, estimates, yerr=[2 * s for s in stderrs], fmt="o-", color="tab:blue", capsize=3,
                label="eq. 4.8 estimate (mean over x_0, +- 2 s.e.)")
    ax.axhline(exact, color="tab:red", lw=1, label="exact log p_theta(x_0)")
    ax.axhline(-bound, color="0.5", lw=1, ls="--", label="-L (eq. 4.10)")
    ax.set_xscale("log")
    ax.set_xlabel("trajectories K")
    ax.set_ylabel("nats per example")
    ax.set_title("eq. 4.8 converges to log p_theta(x_0)")
    ax.legend(fontsize=7)
    return _save(fig, plots_dir, "thm8_loglik")


def remark7(plots_dir, x, density, samples: dict[str, torch.Tensor]) -> str:
    """Remark 7: histograms of ancestral samples with sigma_t^2 = beta_t and beta~_t over q(x_0)."""
    fig, (ax,) = _figure()
    ax.plot(_np(x), _np(density), color="0.2", lw=1.5, label="q(x_0)")
    colors = {"beta": "tab:blue", "beta_tilde": "tab:orange"}
    for name, s in samples.items():
        ax.hist(_np(s.flatten()), bins=120, density=True, histtype="step", lw=1, color=colors.get(name),
                label=f"samples, sigma_t^2 = {name}")
    ax.set_xlabel("x_0")
    ax.set_title("Remark 7: both reverse variances")
    ax.legend(fontsize=7)
    return _save(fig, plots_dir, "remark7_samples")
