"""Learning-rate schedules: warm-up and decay values at given steps, applied to every optimiser of
a model, carried in the optimiser state (so resume recomputes the same rates)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genmodels.errors import ConfigError
from genmodels.training.lr_schedule import lr_factor, set_learning_rates


def test_warmup_is_linear_from_one_over_warmup_to_one():
    assert [lr_factor(s, 1000, 4, "constant") for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(0, 1000, 0, "constant") == 1.0


def test_cosine_and_linear_decay_values():
    # total 110, warm-up 10: p = (step - 10) / 100
    assert lr_factor(10, 110, 10, "cosine") == 1.0
    assert lr_factor(60, 110, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(35, 110, 10, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lr_factor(109, 110, 10, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))
    assert lr_factor(60, 110, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(109, 110, 10, "linear") == pytest.approx(0.01)
    assert lr_factor(5, 110, 10, "linear") == pytest.approx(0.6)      # still warming up
    # monotone decay after the warm-up
    values = [lr_factor(s, 110, 10, "cosine") for s in range(10, 110)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_unknown_schedule_lists_the_choices():
    with pytest.raises(ConfigError, match="constant, cosine, linear"):
        lr_factor(0, 10, 0, "step")


def test_every_optimiser_and_group_is_scaled_from_its_own_base_rate():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt_g = torch.optim.Adam(a.parameters(), lr=1e-3)
    opt_d = torch.optim.SGD([{"params": [b.weight], "lr": 0.1}, {"params": [b.bias], "lr": 0.01}])
    set_learning_rates({"G": opt_g, "D": opt_d}, 0.5)
    set_learning_rates({"G": opt_g, "D": opt_d}, 0.25)         # from base_lr, not compounded
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2.5e-4)
    assert [g["lr"] for g in opt_d.param_groups] == pytest.approx([0.025, 0.0025])
    # the base rate travels in the state dict, so a restored optimiser recomputes the same rate
    fresh = torch.optim.SGD([{"params": [b.weight], "lr": 9.0}, {"params": [b.bias], "lr": 9.0}])
    fresh.load_state_dict(opt_d.state_dict())
    set_learning_rates({"D": fresh}, 1.0)
    assert [g["lr"] for g in fresh.param_groups] == pytest.approx([0.1, 0.01])


def test_trainer_applies_the_schedule(tmp_path, one_thread):
    """A 20-step toy run with warm-up 5 and linear decay logs lr_factor per step as lr_factor()."""
    from genmodels.config import RunConfig
    from genmodels.data import load
    from genmodels.run import build_model
    from genmodels.training import Trainer
    from genmodels.training.logging import read_metrics

    data = load("moons", split="train", seed=0)
    config = RunConfig.default("ddpm").merge({
        "out": str(tmp_path / "run"), "data": {"name": "moons"},
        "trainer": {"steps": 20, "batch_size": 32, "log_every": 1, "sample_every": 0, "report": False,
                    "progress": False, "tensorboard": False, "lr_schedule": "linear", "warmup_steps": 5},
        "model": {"mlp_width": 16, "mlp_depth": 1, "T": 20}}, "test")
    model = build_model(config, data.spec, torch.device("cpu"))
    Trainer(config).fit(model, data)
    logged = [r["lr_factor"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert logged == pytest.approx([lr_factor(s, 20, 5, "linear") for s in range(20)], abs=1e-6)
    assert model.opt.param_groups[0]["lr"] == pytest.approx(1e-3 * lr_factor(19, 20, 5, "linear"))
