"""A tiny model family and tiny data sets for testing the trainer, checkpoints and CLI.

`Toy` fits a diagonal Gaussian N(mu, diag(sigma^2)) to the data by maximum likelihood and, to
exercise everything a real family uses, also trains an auxiliary regressor with dropout (torch's
global RNG), a second optimiser, `ctx.next_batch()` and noise from `ctx.generator`.

Run as a script it is the `genmodels` CLI with the toy family and toy data registered:
    python tests/toy_models.py train toy --data toy2d --out RUN ...
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genmodels.config_fields import check_choices, param, require
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.models.base import GenerativeModel


@dataclass
class ToyConfig:
    hidden: int = param(8, "width of the auxiliary regressor")
    lr: float = param(0.05, "Adam learning rate of both optimisers")
    dropout: float = param(0.25, "dropout in the auxiliary regressor (draws from torch's global RNG)")
    delay: float = param(0.0, "seconds to sleep in each step (makes a run slow enough to kill)")
    nan_at_step: int = param(-1, "corrupt the run at this step (-1 = never)")
    nan_target: str = param("loss", "what becomes NaN at nan_at_step", choices=("loss", "weights"))

    def validate(self) -> None:
        check_choices(self, "model")
        require(self.hidden > 0, f"model.hidden must be positive, got {self.hidden}")


@dataclass
class ToySampleOptions:
    temperature: float = param(1.0, "scale of the sampling noise")
    clip: bool = param(True, "clip image samples to [-1, 1]")


class DiagonalGaussian(nn.Module):
    """N(mu, diag(exp(log_sigma))^2) over examples of `shape`."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(shape))
        self.log_sigma = nn.Parameter(torch.zeros(shape))

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log N(x; mu, sigma^2) per example, (B, *shape) -> (B,)."""
        z = (x - self.mu) * torch.exp(-self.log_sigma)
        per_dim = 0.5 * z ** 2 + self.log_sigma + 0.5 * math.log(2 * math.pi)
        return per_dim.flatten(1).sum(1)


class Toy(GenerativeModel):
    """The toy family: a diagonal Gaussian, plus an auxiliary regressor that exercises the context."""

    sample_options = ToySampleOptions

    def __init__(self, config: ToyConfig, spec: DataSpec, device):
        self.config, self.spec, self.device = config, spec, torch.device(device)
        self.density = DiagonalGaussian(spec.shape).to(self.device)
        self.aux = nn.Sequential(nn.Linear(spec.dim, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                                 nn.Linear(config.hidden, 1)).to(self.device)
        self.opt = torch.optim.Adam(self.density.parameters(), lr=config.lr)
        self.aux_opt = torch.optim.Adam(self.aux.parameters(), lr=config.lr)

    def train_step(self, batch, ctx) -> dict[str, float]:
        x, _ = batch
        if self.config.delay:
            time.sleep(self.config.delay)
        with ctx.autocast():
            nll = self.density.nll(x).mean()
        if ctx.step == self.config.nan_at_step:
            if self.config.nan_target == "loss":
                nll = nll * float("nan")
            else:
                with torch.no_grad():
                    self.density.mu.fill_(float("nan"))
        ctx.optimize(nll, self.opt)
        x2, _ = ctx.next_batch()
        noise = torch.randn(x2.shape, generator=ctx.generator, device=ctx.device)
        target = (x2.flatten(1) ** 2).sum(1, keepdim=True)
        with ctx.autocast():
            aux = ((self.aux((x2 + 0.1 * noise).flatten(1)).float() - target) ** 2).mean()
        ctx.optimize(aux, self.aux_opt)
        return {"nll": nll.item(), "aux": aux.item()}

    @torch.no_grad()
    def sample(self, n: int, options: ToySampleOptions | None = None, *, generator=None) -> torch.Tensor:
        opts = self.options_of(options)
        eps = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)
        x = self.density.mu + opts.temperature * torch.exp(self.density.log_sigma) * eps
        return x.clamp(-1, 1) if (opts.clip and self.spec.kind == "image") else x

    def modules(self) -> dict[str, nn.Module]:
        return {"density": self.density, "aux": self.aux}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"density": self.opt, "aux": self.aux_opt}

    def ema_modules(self) -> dict[str, nn.Module]:
        return {"density": self.density}


def toy_data(name: str) -> Dataset:
    """toy2d: 96 points of a 2-D Gaussian; toyimg: 32 random 1x6x6 images in [-1, 1]."""
    g = torch.Generator().manual_seed(1234)
    if name == "toy2d":
        x = torch.randn(96, 2, generator=g) * torch.tensor([0.5, 2.0]) + torch.tensor([1.0, -1.0])
        return Dataset(x=x, name=name, kind="points", modes=torch.tensor([[1.0, -1.0]]), mode_std=1.0)
    if name == "toyimg":
        x = torch.rand(32, 1, 6, 6, generator=g) * 2 - 1
        y = torch.arange(32) % 4
        return Dataset(x=x, y=y, name=name, kind="image", num_classes=4)
    from genmodels.errors import DataError

    raise DataError(f"unknown toy data set {name!r}; valid: toy2d, toyimg")


def _load_toy_data(cfg, seed: int) -> Dataset:
    data = toy_data(cfg.name)
    return data if cfg.limit == 0 else Dataset(x=data.x[:cfg.limit], name=data.name, kind=data.kind)


def install(monkeypatch=None) -> None:
    """Register the toy family as `toy` and the toy data sets with the CLI (in-process with pytest's
    monkeypatch, or for the rest of the process when run as a script)."""
    from genmodels.cli import train as cli_train
    from genmodels.models import registry

    entry = registry.ModelEntry("toy", "diagonal Gaussian fitted by maximum likelihood (tests)",
                                lambda: (Toy, ToyConfig, ToySampleOptions))
    if monkeypatch is not None:
        monkeypatch.setitem(registry.MODELS, "toy", entry)
        monkeypatch.setattr(cli_train, "load_data", _load_toy_data)
    else:
        registry.MODELS["toy"] = entry
        cli_train.load_data = _load_toy_data


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    install()
    from genmodels.cli import main

    raise SystemExit(main(sys.argv[1:]))
