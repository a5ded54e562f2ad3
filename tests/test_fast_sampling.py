"""Sampling for `genmodels sample` / `evaluate`: the automatic batch size (a pure rule and its
probe), inference mode in the run's precision (bf16 close to fp32), the throughput reported, and
`progress` reaching the model's own metrics."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from genmodels.cli import main
from genmodels.data.dataset import Dataset, DataSpec
from genmodels.errors import ConfigError
from genmodels.evaluation import evaluate
from genmodels.metrics.evaluate import EvalConfig
from genmodels.models.base import GenerativeModel, NoSampleOptions
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions
from genmodels.sampling.loop import SamplingStats, sample_batches
from genmodels.sampling.plan import (
    ACTIVATION_FACTOR,
    MEMORY_SHARE,
    auto_batch_size,
    free_memory_bytes,
    inference,
    probe_bytes_per_sample,
    sampling_precision,
)
from genmodels.training.hardware import cpu_has_fast_bf16

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def test_the_batch_rule():
    gib = 2 ** 30
    assert auto_batch_size(10 ** 6, 64 * gib, cap=500, n=10_000) == 500                  # memory to spare: the cap
    assert auto_batch_size(10 ** 6, 64 * gib, cap=500, n=300) == 300                     # never more than n
    assert auto_batch_size(gib, 10 * gib, cap=500, n=10_000) == int(MEMORY_SHARE * 10)   # floor(share * free / each)
    assert auto_batch_size(100 * gib, gib, cap=500, n=10_000) == 1                       # at least one
    assert auto_batch_size(0, gib, cap=500, n=10_000) == 500                             # no estimate
    assert auto_batch_size(10 ** 6, None, cap=64, n=10_000) == 64                        # no memory figure


def test_free_memory_is_memavailable(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n")
    assert free_memory_bytes(CPU, meminfo) == 8_000_000 * 1024
    (tmp_path / "empty").write_text("")
    assert free_memory_bytes(CPU, tmp_path / "empty") > 0                  # falls back to physical memory


class Looping(GenerativeModel):
    """Samples by calling its network `calls` times (as a diffusion sampler does), recording the
    grad and inference modes it ran in and the autocast dtype of its matrix products."""

    sample_options = NoSampleOptions

    def __init__(self, calls: int = 5):
        self.spec, self.config, self.device = DataSpec("points", (2,)), None, CPU
        self.net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        self.calls, self.forwards, self.seen = calls, 0, []

    def sample(self, n, options=None, *, generator=None):
        x = torch.randn(n, 2, generator=generator)
        for _ in range(self.calls):
            self.forwards += 1
            y = self.net(x)
            self.seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled(), y.dtype))
            x = x - 0.1 * y.float()
        return x

    def train_step(self, batch, ctx):
        raise AssertionError("not trained")

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {}


def test_the_probe_stops_after_one_forward_and_leaves_the_generator_alone():
    model = Looping(calls=50)
    g = torch.Generator().manual_seed(3)
    before = g.get_state()
    per_sample = probe_bytes_per_sample(model, NoSampleOptions(), torch.inference_mode)
    assert model.forwards == 1
    assert torch.equal(g.get_state(), before)
    leaf_outputs = (8 + 8 + 2) * 4                          # Linear, ReLU, Linear outputs of one sample, fp32
    assert per_sample == ACTIVATION_FACTOR * (leaf_outputs + 2 * 4)   # and the network's own output
    assert not any(m._forward_hooks for m in model.net.modules())     # the hooks are removed


def test_sampling_runs_in_inference_mode_and_reports_its_throughput():
    model, stats = Looping(calls=2), SamplingStats(unit="sample")
    out = list(sample_batches(model, 10, 4, torch.Generator().manual_seed(0), (2,), progress=False, clamp=False,
                              stats=stats))
    assert [len(x) for x in out] == [4, 4, 2]
    assert all(s[:2] == (False, True) for s in model.seen)           # no grad, inference mode
    assert not any(x.is_inference() for x in out)                     # usable by the metrics afterwards
    assert stats.n == 10 and stats.batch_size == 4 and stats.seconds > 0 and stats.samples_per_second > 0
    assert "samples/s" in stats.summary() and set(stats.to_dict()) >= {"samples_per_second", "batch_size"}
    model.seen.clear()
    with inference("bf16", CPU):
        model.sample(3)
    assert model.seen[0] == (False, True, torch.bfloat16)            # the run's precision: autocast bf16


def test_sampling_precision_follows_the_run_where_the_device_runs_it():
    assert sampling_precision("run", "fp32", CPU)[0] == "fp32"
    assert sampling_precision("run", "bf16", CPU)[0] == ("bf16" if cpu_has_fast_bf16() else "fp32")
    precision, why = sampling_precision("run", "fp16", CPU)
    assert precision == "fp32" and "fp16" in why
    assert sampling_precision("bf16", "fp32", CPU) == ("bf16", "as asked")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        sampling_precision("fp16", "fp32", CPU)


def test_bf16_samples_are_close_to_fp32():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DDPM(DDPMConfig(T=100, channels=8, channel_mults=[1, 2], attention_resolutions=[4]),
                     DataSpec("image", (1, 8, 8)))
        with torch.no_grad():                # an untrained U-Net's output layer is zero: give it a signal
            for p in model.net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    options = DDPMSampleOptions(sampler="dpm++", steps=10)
    draws = {}
    for precision in ("fp32", "bf16"):
        with inference(precision, CPU):
            draws[precision] = model.sample(256, options, generator=torch.Generator().manual_seed(1)).float()
    a, b = draws["fp32"], draws["bf16"]
    assert not torch.equal(a, b)                                      # bf16 did run
    assert abs(a.mean() - b.mean()) < 0.02 and abs(a.std() - b.std()) < 0.02
    assert (a - b).abs().mean() < 0.02                                # the same noise: close draw by draw too


class WithMetric(Looping):
    metric_names = ("own",)

    def evaluate(self, metric, data, options=None, **keywords):
        self.options = keywords
        return {"own": 1.0}


def test_progress_reaches_the_model_s_own_metrics():
    model = WithMetric()
    data = Dataset(x=torch.randn(20, 2), name="pts", kind="points")
    for progress in (False, True):
        evaluate(data, data, EvalConfig(metrics="own", n=10, progress=progress), samples=lambda bs: iter(()),
                 n_samples=10, model=model)
        assert model.options["progress"] is progress


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    before = torch.get_num_threads()
    run = tmp_path_factory.mktemp("fast") / "ddpm"
    assert main(["train", "ddpm", "--data", "grid25", "--batch-size", "32", "--mlp-width", "16", "--mlp-depth", "1",
                 "--T", "50", "--steps", "10", "--out", str(run), "--device", "cpu", "--no-progress",
                 "--threads", "1", "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]) == 0
    torch.set_num_threads(before)
    return str(run)


def test_evaluate_reports_the_sampling_throughput(ddpm_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", ddpm_run, "--metrics", "fd", "--n", "64", "--device", "cpu", "--no-progress", "--json",
                 "--no-floor", "--sampler", "ddim", "--steps", "5"]) == 0
    sampling = json.loads(capsys.readouterr().out)["sampling"]
    assert sampling["n"] == 64 and sampling["samples_per_second"] > 0 and sampling["batch_size"] == 64
    assert sampling["precision"] in ("fp32", "bf16")
    assert main(["evaluate", ddpm_run, "--metrics", "fd", "--n", "64", "--device", "cpu", "--no-progress",
                 "--no-floor", "--steps", "5", "--sampler", "ddim", "--batch-size", "16", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "sampling: 64 samples in" in out and "samples/s (batch 16, fp32)" in out


def test_sample_prints_the_throughput(ddpm_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["sample", ddpm_run, "--n", "8", "--out", str(tmp_path / "s.npy"), "--device", "cpu",
                 "--sampler", "ddim", "--steps", "5", "--batch-size", "3"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("sampling: 8 samples in") and "samples/s (batch 3," in line
