"""A model family written outside genmodels (docs/extending.md): one defined in this file and
registered with `genmodels.register_model` keeps the contract (tests/test_model_contract.py) and
trains, samples and evaluates through the command line and the Python API; the page's own file
does the same through its documented commands, and an installed package's `genmodels.models` entry
point makes the plain `genmodels` command know its family in a fresh process."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_model_contract import check_contract, image_data, point_data
from torch import nn

import genmodels
from genmodels.cli import main
from genmodels.config_fields import param, require
from genmodels.errors import ConfigError
from genmodels.models import registry
from genmodels.models.base import GenerativeModel

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "extending.md"
QUICK = ["--threads", "1", "--device", "cpu", "--no-progress", "--set", "trainer.sample_every=0",
         "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]


# ---------------------------------------------------------------------------------------------
# A family in this file: a factorised Laplace distribution fitted by maximum likelihood


@dataclasses.dataclass
class LaplaceConfig:
    lr: float = param(0.05, "Adam learning rate")
    min_scale: float = param(1e-3, "floor of every scale b")

    def validate(self) -> None:
        require(self.lr > 0, f"model.lr must be > 0, got {self.lr}")


@dataclasses.dataclass
class LaplaceSampleOptions:
    temperature: float = param(1.0, "scale of the noise")


class LaplaceParameters(nn.Module):
    def __init__(self, dim: int, min_scale: float):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.min_scale = min_scale

    def scale(self) -> torch.Tensor:
        return torch.exp(self.log_scale) + self.min_scale

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log prod_d Laplace(x_d; loc_d, b_d) of x (B, D): (B,)."""
        b = self.scale()
        return ((x - self.loc).abs() / b + torch.log(2 * b)).sum(1)


class Laplace(GenerativeModel):
    """Factorised Laplace distribution, maximum likelihood by Adam (a family written in a test)."""

    sample_options = LaplaceSampleOptions
    metric_names = ("nll",)

    def __init__(self, config: LaplaceConfig, spec, device="cpu"):
        config.validate()
        self.config, self.spec, self.device = config, spec, device
        self.net = LaplaceParameters(math.prod(spec.shape), config.min_scale).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)

    def train_step(self, batch, ctx):
        nll = self.net.nll(batch[0].to(self.device).flatten(1)).mean()
        ctx.optimize(nll, self.opt, [self.net])
        return {"nll": nll.item()}

    @torch.no_grad()
    def sample(self, n, options=None, *, generator=None):
        temperature = self.options_of(options).temperature
        u = torch.rand(n, self.net.loc.shape[0], generator=generator, device=self.device) - 0.5
        x = self.net.loc - temperature * self.net.scale() * torch.sign(u) * torch.log1p(-2 * u.abs())   # inverse CDF
        x = x.reshape(n, *self.spec.shape)
        return x.clamp(-1, 1) if self.spec.kind == "image" else x

    def modules(self):
        return {"laplace": self.net}

    def optimizers(self):
        return {"adam": self.opt}

    @torch.no_grad()
    def evaluate(self, metric, data, options=None, **budget):
        self.check_metric(metric)
        return {"nll": self.net.nll(data.x.to(self.device).flatten(1)).mean().item()}


@pytest.fixture
def registered(monkeypatch):
    """The registry as it is, plus whatever a test registers (undone after the test)."""
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    return registry.MODELS


def test_a_family_defined_here_keeps_the_contract(registered):
    entry = genmodels.register_model("laplace", Laplace, LaplaceConfig)
    assert entry.load() == (Laplace, LaplaceConfig, LaplaceSampleOptions)
    assert registry.get_model("laplace") == entry.load()
    assert genmodels.register_model("laplace", Laplace, LaplaceConfig) is entry     # again: a no-op
    check_contract(Laplace, LaplaceConfig, LaplaceSampleOptions, LaplaceConfig(), point_data())
    check_contract(Laplace, LaplaceConfig, LaplaceSampleOptions, LaplaceConfig(), image_data())


def test_a_registered_family_trains_samples_and_evaluates_through_the_cli_and_the_api(registered, tmp_path, capsys):
    genmodels.register_model("laplace", Laplace, LaplaceConfig)
    run = tmp_path / "run"
    assert main(["train", "laplace", "--data", "ring8", "--out", str(run), "--steps", "20", "--batch-size", "64",
                 "--lr", "0.1", *QUICK]) == 0
    config = (run / "config.toml").read_text()
    assert 'name = "laplace"' in config and "lr = 0.1" in config
    assert main(["sample", str(run), "--n", "32", "--temperature", "0.5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (32, 2)
    assert main(["evaluate", str(run), "--metrics", "nll", "--n", "100", "--no-progress", "--json"]) == 0
    assert '"nll"' in capsys.readouterr().out
    loaded = genmodels.load(run)
    assert isinstance(loaded, Laplace) and loaded.net.loc.abs().sum() > 0       # trained weights
    model = genmodels.train("laplace", data="ring8", steps=5, out=tmp_path / "api", batch_size=32, min_scale=0.01,
                            threads=1, progress=False, sample_every=0, report=False, tensorboard=False)
    assert isinstance(model, Laplace) and model.config.min_scale == 0.01
    assert model.sample(8, generator=torch.Generator().manual_seed(0)).shape == (8, 2)


def test_register_model_refuses_what_breaks_the_contract(registered):
    class NotAModel:
        sample_options = LaplaceSampleOptions

    @dataclasses.dataclass
    class Named:
        name: str = param("x", "a field the [model] table needs for the family")

        def validate(self) -> None:
            pass

    @dataclasses.dataclass
    class NoValidate:
        lr: float = param(0.1, "lr")

    with pytest.raises(ConfigError, match="not a subclass of genmodels.models.base.GenerativeModel"):
        genmodels.register_model("broken", NotAModel, LaplaceConfig)
    with pytest.raises(ConfigError, match="field called 'name'"):
        genmodels.register_model("broken", Laplace, Named)
    with pytest.raises(ConfigError, match="validate"):
        genmodels.register_model("broken", Laplace, NoValidate)
    with pytest.raises(ConfigError, match="sample_options = "):
        genmodels.register_model("broken", Laplace, LaplaceConfig, LaplaceConfig)
    with pytest.raises(ConfigError, match="lower-case"):
        genmodels.register_model("Bad Name", Laplace, LaplaceConfig)
    with pytest.raises(ConfigError, match="already registered"):
        genmodels.register_model("ddpm", Laplace, LaplaceConfig)
    assert "broken" not in registry.MODELS


# ---------------------------------------------------------------------------------------------
# The page's family, run as the page says


def page_file(tmp_path: Path) -> Path:
    """docs/extending.md's one python block, saved as the file it tells the reader to write."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1, "docs/extending.md should hold exactly one python block: the family's file"
    path = tmp_path / "my_gaussian.py"
    path.write_text(blocks[0], encoding="utf-8")
    return path


def shortened(argv: list[str]) -> list[str]:
    """The page's command with test-sized settings (as tests/test_docs_commands.py does for genmodels lines)."""
    out, limits = list(argv), {"--steps": 20, "--n": 200}
    for i, token in enumerate(out[:-1]):
        if token in limits:
            out[i + 1] = str(min(int(out[i + 1]), limits[token]))
    if out[0] == "train":
        out += ["--batch-size", "64", *QUICK]
    if out[0] == "evaluate":
        out += ["--no-progress"]
    return out


def environment(*paths: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout}\n{done.stderr}"


def test_the_pages_family_keeps_the_contract(tmp_path, registered, monkeypatch):
    page_file(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_gaussian", raising=False)
    import my_gaussian as g  # registers "gaussian", in the registry copy of this test

    assert registry.get_model("gaussian") == g.family()
    check_contract(*g.family(), g.GaussianConfig(), point_data())
    check_contract(*g.family(), g.GaussianConfig(), image_data())


def test_the_pages_commands_run_through_its_file(tmp_path):
    path = page_file(tmp_path)
    text = PAGE.read_text(encoding="utf-8")
    commands = [shlex.split(line) for line in re.findall(r"^python my_gaussian\.py .*$", text, flags=re.M)]
    assert [c[2] for c in commands] == ["train", "sample", "evaluate", "report"]
    for argv in commands:
        run([path.name, *shortened(argv[2:])], tmp_path, environment())
    assert (tmp_path / "gaussian.png").is_file() and (tmp_path / "runs" / "gaussian" / "report.html").is_file()


def test_an_installed_entry_point_makes_genmodels_know_the_family(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    page_file(site)
    info = site / "my_gaussian-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-gaussian\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text('[genmodels.models]\ngaussian = my_gaussian:family\n')
    driver = ("import sys; from genmodels.cli import main; "
              "sys.exit(main(sys.argv[1:sys.argv.index('--then')]) or main(sys.argv[sys.argv.index('--then') + 1:]))")
    train = ["train", "gaussian", "--data", "ring8", "--out", "runs/g", "--steps", "10", "--batch-size", "64", *QUICK]
    sample = ["sample", "runs/g", "--n", "16", "--temperature", "0.5", "--out", "g.npy"]
    run(["-c", driver, *train, "--then", *sample], tmp_path, environment(site))
    assert np.load(tmp_path / "g.npy").shape == (16, 2)
