"""The training loop's hot path reads nothing back from the device: values are read (and the NaN
guard checked) only at the read points (log, samples, checkpoint, stop, end). Counted here on the
CPU by a TorchFunctionMode that sees every Tensor.item / tolist / float / bool / ... call (each a
device synchronisation on CUDA). A non-finite loss is never applied, and the error names its step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_noise_contract import FAMILIES as NOISE_CASES
from test_trainer import make
from torch.overrides import TorchFunctionMode
from toy_models import Toy

from genmodels.config import RunConfig
from genmodels.data import load
from genmodels.errors import TrainingDiverged
from genmodels.run.checkpoint import load_checkpoint
from genmodels.run.load import build_model
from genmodels.run.seeds import make_generator
from genmodels.training import Trainer
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream
from genmodels.training.health import Health

HOST_READS = {"item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__format__", "__array__"}


class HostReads(TorchFunctionMode):
    """Counts the calls that copy a tensor's value to the host."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_READS:
            self.count += 1
        return func(*args, **(kwargs or {}))


class QuietToy(Toy):
    """The toy family's Gaussian fitted with a step that reads nothing back (its values stay tensors),
    a NaN loss at config.nan_at_step, and a trace of the weights each step starts from."""

    def train_step(self, batch, ctx):
        self.trace.append(self.density.mu.detach().clone())
        nll = self.density.nll(batch[0]).mean()
        if ctx.step == self.config.nan_at_step:
            nll = nll * float("nan")
        ctx.optimize(nll, self.opt)
        return {"nll": nll.detach()}


def quiet(tmp_path, monkeypatch, out: str, fused: bool = True, **overrides):
    config, _, data = make(tmp_path, monkeypatch, out=out, **{"trainer.report": False, "trainer.tensorboard": False,
                                                              "trainer.ema_decay": 0.9, **overrides})
    model = QuietToy(config.model, data.spec, torch.device("cpu"))
    model.opt = torch.optim.Adam(model.density.parameters(), lr=model.config.lr, fused=fused)
    model.trace = []
    return config, model, data


def reads_of(tmp_path, monkeypatch, out: str, steps: int, log_every: int) -> int:
    config, model, data = quiet(tmp_path, monkeypatch, out, **{"trainer.steps": steps, "trainer.log_every": log_every})
    with HostReads() as counter:
        Trainer(config).fit(model, data)
    return counter.count


def test_host_reads_grow_with_the_read_points_not_with_the_steps(tmp_path, monkeypatch):
    twenty = reads_of(tmp_path, monkeypatch, "a", steps=20, log_every=10)       # read points 10, 20
    forty = reads_of(tmp_path, monkeypatch, "b", steps=40, log_every=20)        # read points 20, 40
    forty_often = reads_of(tmp_path, monkeypatch, "c", steps=40, log_every=10)  # read points 10, 20, 30, 40
    assert twenty > 0
    assert forty == twenty                     # twice the steps, the same read points: not one read more
    per_read_point = (forty_often - forty) / 2
    assert 1 <= per_read_point <= 3            # the guard's flags and the values: one copy each


@pytest.mark.parametrize("fused", [True, False])
def test_a_non_finite_loss_is_never_applied_and_named_at_the_next_read(tmp_path, monkeypatch, fused):
    config, model, data = quiet(tmp_path, monkeypatch, "run", fused=fused,
                                **{"trainer.steps": 40, "trainer.log_every": 10, "trainer.checkpoint_every": 10,
                                   "model.nan_at_step": 13})
    with pytest.raises(TrainingDiverged) as e:
        Trainer(config).fit(model, data)
    assert e.value.step == 13 and "step 13" in str(e.value) and "latest.pt" in str(e.value)
    assert "loss" in str(e.value)
    assert len(model.trace) == 20              # steps 14..19 ran: the loss was not read until the read point 20
    run = tmp_path / "run"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [10]
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 10
    assert all(torch.isfinite(w).all() for w in model.trace)
    state = model.opt.state[model.density.mu]
    assert torch.isfinite(state["exp_avg"]).all() and torch.isfinite(state["exp_avg_sq"]).all()
    if fused:                                  # skipped on the device: not one bit of the weights moved
        assert torch.equal(model.trace[14], model.trace[13])
        assert float(state["step"]) == 19
    else:                                      # a step on zero gradients: finite, momentum only
        assert not torch.equal(model.trace[14], model.trace[13])
        assert float(state["step"]) == 20


def test_a_non_finite_weight_is_named_with_its_step(tmp_path, monkeypatch):
    config, model, data = quiet(tmp_path, monkeypatch, "run", **{"trainer.steps": 30, "trainer.log_every": 10})
    corrupt = model.train_step

    def train_step(batch, ctx):
        out = corrupt(batch, ctx)
        if ctx.step == 12:
            with torch.no_grad():
                model.density.log_sigma[0] = float("inf")
        return out

    model.train_step = train_step
    with pytest.raises(TrainingDiverged, match=r"at step 12: weights density\.log_sigma hold NaN/inf") as e:
        Trainer(config).fit(model, data)
    assert e.value.step == 12 and len(model.trace) == 20


def test_under_torchrun_every_rank_stops_at_the_same_read_point(tmp_path):
    """2 processes, a NaN loss at step 7: both ranks name step 7 at the read point of step 10 (one
    all-reduce of the guard's flags), after the step-5 checkpoint and log line, and none hangs."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).parent / "toy_models.py"), "train", "toy", "--data", "toy2d", "--out", str(run),
           "--steps", "30", "--batch-size", "8", "--device", "cpu", "--no-progress", "--nan-at-step", "7",
           "--set", "trainer.log_every=5", "--set", "trainer.checkpoint_every=5", "--set", "trainer.sample_every=0",
           "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]
    done = subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": "1"}, cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode != 0
    line = "training diverged at step 7: the loss of an optimiser step is not finite; the last good checkpoint is"
    assert done.stderr.count(line) == 2, done.stderr[-3000:]
    assert [json.loads(r)["step"] for r in (run / "metrics.jsonl").read_text().splitlines()] == [5]
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 5


FAMILY_CASES = {
    **NOISE_CASES,
    "ddpm-points": ("moons", ["model.T=50"]),       # the points standardiser, fitted on the first batch
    "ddpm-importance": ("digits", ["model.channels=8", "model.channel_mults=1", "model.attention_resolutions=[]",
                                   "model.T=50", "model.learn_sigma=true", "model.loss=vlb",
                                   "model.t_sampler=importance"]),
    "vae-iwae": ("digits", ["model.net=mlp", "model.hidden=[16]", "model.latent_dim=2", "model.objective=iwae",
                            "model.k=5"]),
}


@pytest.mark.parametrize("case", sorted(FAMILY_CASES))
def test_every_family_steps_without_host_reads_between_read_points(case):
    """Each family's real train_step, as the trainer calls it between read points (ctx.reads False, a
    Health that is read later): not one tensor value is copied to the host."""
    data_name, overrides = FAMILY_CASES[case]
    family = case.split("-")[0]
    data = load(data_name)
    config = RunConfig.default(family).with_overrides([f"data.name={data_name}", *overrides])
    model = build_model(config, data.spec, torch.device("cpu"))
    stream = DataStream(data, 16, make_generator(0, "data"), torch.device("cpu"))
    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(1), precision="fp32",
                       grad_clip=1.0, next_batch=stream.next, health=Health(torch.device("cpu")))
    model.train_step(stream.next(), ctx)               # first step: lazy state (fits, plans) may read once
    ctx.reads = False
    with HostReads() as counter:
        for _ in range(3):
            out = model.train_step(stream.next(), ctx)
    assert counter.count == 0, case
    ctx.reads = True
    read = model.train_step(stream.next(), ctx)
    if family == "infogan":                            # the host-side diagnostic comes back at read points
        assert "code_acc" not in out and 0.0 <= read["code_acc"] <= 1.0
