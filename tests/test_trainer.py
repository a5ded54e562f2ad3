"""The trainer: run directory contents, EMA, the NaN guard, gradient clipping, data order, RNG hygiene."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from toy_models import install, toy_data

import genmodels.training as train_pkg
from genmodels.config import RunConfig
from genmodels.errors import ConfigError, TrainingDiverged
from genmodels.run import build_model
from genmodels.run.checkpoint import load_checkpoint
from genmodels.training import EMA, Trainer
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream


def make(tmp_path, monkeypatch, data="toy2d", out="run", **overrides):
    """(config, model, dataset) for a small toy run; overrides are 'section.key': value."""
    install(monkeypatch)
    dataset = toy_data(data)
    settings = {"trainer.steps": 30, "trainer.batch_size": 8, "trainer.progress": False, "trainer.sample_every": 0,
                "trainer.log_every": 10, "trainer.device": "cpu", **overrides}
    config = RunConfig.default("toy").with_overrides(
        [f"data.name={data}", f"out={tmp_path / out}", *[f"{k}={v}" for k, v in settings.items()]])
    return config, build_model(config, dataset.spec, torch.device("cpu")), dataset


def test_run_directory_contents(tmp_path, monkeypatch):
    config, model, data = make(tmp_path, monkeypatch, data="toyimg",
                               **{"trainer.sample_every": 15, "trainer.sample_n": 4, "trainer.keep_every": 25,
                                  "trainer.checkpoint_every": 10})
    result = Trainer(config).fit(model, data)
    run = tmp_path / "run"
    assert result.step == 30 and set(result.values) == {"nll", "aux"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(math.isfinite(r["nll"]) and "epoch" in r for r in records)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000015.png", "step_0000030.png"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.pt", "step_0000025.pt"]
    assert (run / "losses.png").stat().st_size > 0
    assert "[spec]" in (run / "config.toml").read_text()
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 30


def test_same_seed_same_weights_and_caller_rng_untouched(tmp_path, monkeypatch):
    torch.manual_seed(0)  # the test's own global RNG; fit must neither read nor change it
    before = torch.get_rng_state()
    config, model_a, data = make(tmp_path, monkeypatch, out="a")
    Trainer(config).fit(model_a, data)
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(5)  # moving the caller's RNG must not change the run
    config_b, model_b, _ = make(tmp_path, monkeypatch, out="b")
    Trainer(config_b).fit(model_b, data)
    for name, module in model_a.modules().items():
        for (k, v), w in zip(module.state_dict().items(), model_b.modules()[name].state_dict().values(), strict=True):
            assert torch.equal(v, w), f"{name}.{k}"
    config_c, model_c, _ = make(tmp_path, monkeypatch, out="c", seed=1)
    Trainer(config_c).fit(model_c, data)
    assert not torch.equal(model_a.density.mu, model_c.density.mu)


@pytest.mark.parametrize("target", ["loss", "weights"])
def test_nan_stops_with_training_diverged_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, target):
    config, model, data = make(tmp_path, monkeypatch, **{"model.nan_at_step": 17, "model.nan_target": target,
                                                          "trainer.checkpoint_every": 5})
    with pytest.raises(TrainingDiverged) as e:
        Trainer(config).fit(model, data)
    assert e.value.step == 17
    assert "step 17" in str(e.value) and "latest.pt" in str(e.value)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 15
    for state in ckpt["modules"].values():
        assert all(torch.isfinite(v).all() for v in state.values())
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10]


def test_existing_run_needs_resume_and_resume_extends(tmp_path, monkeypatch):
    config, model, data = make(tmp_path, monkeypatch)
    Trainer(config).fit(model, data)
    _, again, _ = make(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(config).fit(again, data)
    config_more, more, _ = make(tmp_path, monkeypatch, **{"trainer.steps": 40})
    assert Trainer(config_more, resume=True).fit(more, data).step == 40
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]


def test_epochs_set_the_number_of_steps(tmp_path, monkeypatch):
    config, model, data = make(tmp_path, monkeypatch, **{"trainer.epochs": 2, "trainer.batch_size": 10})
    assert Trainer(config).fit(model, data).step == 2 * (96 // 10)


def test_data_stream_epochs_are_permutations_and_resumable():
    data = toy_data("toy2d")
    data.x[:, 0] = torch.arange(96, dtype=torch.float32)
    stream = DataStream(data, 32, torch.Generator().manual_seed(0), torch.device("cpu"))
    first = torch.cat([stream.next()[0][:, 0] for _ in range(3)])
    assert sorted(first.long().tolist()) == list(range(96))
    stream.next()
    state = stream.state_dict()
    expected = [stream.next()[0] for _ in range(4)]
    copy = DataStream(data, 32, torch.Generator().manual_seed(99), torch.device("cpu"))
    copy.load_state_dict(state)
    assert all(torch.equal(a, copy.next()[0]) for a in expected)
    with pytest.raises(ConfigError, match="larger than the data set"):
        DataStream(data, 200, torch.Generator(), torch.device("cpu"))


def test_ema_follows_the_warmup_formula():
    net = torch.nn.Linear(2, 1)
    ema = EMA({"net": net}, decay=0.9, warmup=True)
    expected = net.weight.detach().clone()
    for n in range(5):
        with torch.no_grad():
            net.weight.add_(1.0)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * net.weight.detach()
        ema.update({"net": net})
    assert torch.allclose(ema.shadow["net"]["weight"], expected, atol=1e-6)
    with ema.swapped_in({"net": net}):
        assert torch.equal(net.weight, ema.shadow["net"]["weight"])
    assert not torch.equal(net.weight, ema.shadow["net"]["weight"])


def test_optimize_clips_and_refuses_nan_losses():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([w], lr=1.0)
    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator(), precision="fp32", grad_clip=0.5,
                       next_batch=lambda: None)
    ctx.optimize((w * torch.tensor([30.0, 40.0, 0.0])).sum(), opt)
    assert torch.allclose(w.detach().norm(), torch.tensor(0.5))  # |grad| = 50 clipped to 0.5, lr 1
    ctx.step = 7
    with pytest.raises(TrainingDiverged, match="step 7") as e:
        ctx.optimize(w.sum() * float("inf"), opt)
    assert e.value.step == 7
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        TrainContext(device=torch.device("cpu"), generator=torch.Generator(), precision="fp16", grad_clip=0,
                     next_batch=lambda: None)


def test_bf16_autocast_trains_on_cpu(tmp_path, monkeypatch):
    config, model, data = make(tmp_path, monkeypatch, **{"trainer.precision": "bf16", "trainer.steps": 5})
    result = Trainer(config).fit(model, data)
    assert result.step == 5 and all(math.isfinite(v) for v in result.values.values())


def test_trainer_has_no_model_specific_branches():
    folder = Path(train_pkg.__file__).parent
    families = re.compile(r"\b(ddpm|gan|infogan|vae|toy|diffusion|discriminator|generator_loss)\b", re.IGNORECASE)
    for path in folder.glob("*.py"):
        code = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        code = re.sub(r'"""[\s\S]*?"""', "", code)  # docstrings may cite papers
        assert not families.search(code), f"{path.name} mentions a model family"
