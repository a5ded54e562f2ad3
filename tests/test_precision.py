"""Device and precision options: CPU bf16 autocast, fp16 refused off CUDA, channels-last, compile,
the new CLI flags, the end-of-run report hook, and the CUDA paths (AMP with grad scaling,
compile), which run only where a GPU is available."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from toy_models import install, toy_data

from genmodels.cli import main
from genmodels.config import RunConfig, load_toml
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError
from genmodels.run import build_model
from genmodels.training import Trainer
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream
from genmodels.training.prepare import prepare_modules


def cuda(test):
    """A CUDA test: marked `cuda` (`pytest -m cuda` selects them, bench/gpu_check.sh runs them) and
    skipped where torch sees no CUDA GPU."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


def make(tmp_path, monkeypatch, data="toy2d", device="cpu", **overrides):
    install(monkeypatch)
    dataset = toy_data(data)
    settings = {"trainer.steps": 6, "trainer.batch_size": 8, "trainer.progress": False, "trainer.sample_every": 0,
                "trainer.log_every": 2, "trainer.device": device, "trainer.report": False, **overrides}
    config = RunConfig.default("toy").with_overrides(
        [f"data.name={data}", f"out={tmp_path / 'run'}", *[f"{k}={v}" for k, v in settings.items()]])
    return config, build_model(config, dataset.spec, torch.device(device)), dataset


def _ctx(precision: str, device: str = "cpu") -> TrainContext:
    return TrainContext(device=torch.device(device), generator=torch.Generator(device=device).manual_seed(0),
                        precision=precision, grad_clip=1.0, next_batch=lambda: None)


def test_cpu_bf16_autocast_runs_matmuls_in_bf16_and_keeps_fp32_weights():
    net = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    with _ctx("bf16").autocast():
        assert net(x).dtype == torch.bfloat16
    with _ctx("fp32").autocast():
        assert net(x).dtype == torch.float32
    ctx = _ctx("bf16")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net.weight.detach().clone()
    with ctx.autocast():
        loss = net(x).float().pow(2).mean()
    ctx.optimize(loss, opt)
    assert net.weight.dtype == torch.float32 and not torch.equal(net.weight, before)


def test_bf16_training_run_matches_fp32_closely(tmp_path, monkeypatch):
    results = {}
    for precision in ("fp32", "bf16"):
        config, model, data = make(tmp_path / precision, monkeypatch, **{"trainer.precision": precision})
        results[precision] = Trainer(config).fit(model, data).values
    assert results["bf16"]["nll"] == pytest.approx(results["fp32"]["nll"], rel=0.05)
    assert results["bf16"]["aux"] == pytest.approx(results["fp32"]["aux"], rel=0.1)
    assert results["bf16"]["aux"] != results["fp32"]["aux"]          # bf16 did change the Linear layers


def test_fp16_needs_cuda_and_unknown_precision_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        _ctx("fp16")
    config, model, data = make(tmp_path, monkeypatch, **{"trainer.precision": "fp16"})
    with pytest.raises(ConfigError, match="fp16"):
        Trainer(config).fit(model, data)
    with pytest.raises(ConfigError, match="valid choices"):
        RunConfig.default("toy").with_overrides(["trainer.precision=fp8"]).trainer.validate()


def test_channels_last_converts_conv_weights_and_image_batches():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    prepare_modules({"net": net}, channels_last=True, compile=False)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    data = Dataset(x=torch.rand(8, 3, 4, 4) * 2 - 1, kind="image", name="rgb")
    x, _ = DataStream(data, 4, torch.Generator().manual_seed(0), torch.device("cpu"), channels_last=True).next()
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    plain, _ = DataStream(data, 4, torch.Generator().manual_seed(0), torch.device("cpu")).next()
    assert torch.equal(x, plain)                                      # same values, other layout


def test_cli_flags_reach_the_trainer_config(tmp_path, monkeypatch):
    install(monkeypatch)
    out = tmp_path / "run"
    assert main(["train", "toy", "--data", "toyimg", "--out", str(out), "--steps", "2", "--batch-size", "4",
                 "--device", "cpu", "--precision", "bf16", "--channels-last", "--no-compile", "--no-progress",
                 "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]) == 0
    config, _ = load_toml(out / "config.toml")
    assert (config.trainer.precision, config.trainer.channels_last, config.trainer.compile) == ("bf16", True, False)


def test_report_is_written_and_a_failing_report_only_warns(tmp_path, monkeypatch):
    import genmodels.report as report

    calls = []
    monkeypatch.setattr(report, "write_report", lambda run_dir: calls.append(run_dir))
    config, model, data = make(tmp_path / "a", monkeypatch, **{"trainer.report": True})
    result = Trainer(config, on_finish=report.write_report).fit(model, data)
    assert calls == [result.run_dir]

    def broken(run_dir):
        raise RuntimeError("no views today")

    monkeypatch.setattr(report, "write_report", broken)
    config, model, data = make(tmp_path / "b", monkeypatch, **{"trainer.report": True})
    with pytest.warns(RuntimeWarning, match="no views today"):
        result = Trainer(config, on_finish=report.write_report).fit(model, data)
    assert result.step == 6 and (result.run_dir / "checkpoints" / "latest.pt").is_file()


@pytest.mark.slow
def test_compile_on_cpu_trains_like_eager(tmp_path, monkeypatch):
    values = {}
    for compile in (False, True):
        config, model, data = make(tmp_path / str(compile), monkeypatch,
                                   **{"trainer.compile": compile, "model.dropout": 0.0})
        values[compile] = Trainer(config).fit(model, data).values
    assert values[True]["nll"] == pytest.approx(values[False]["nll"], rel=1e-4)


@cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_amp_training(tmp_path, monkeypatch, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    config, model, data = make(tmp_path, monkeypatch, device="cuda", **{"trainer.precision": precision,
                                                                         "trainer.steps": 20})
    result = Trainer(config).fit(model, data)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.values.values())
    ckpt = torch.load(result.checkpoint, weights_only=True)
    if precision == "fp16":
        assert set(ckpt["scalers"]) == {"density", "aux"}             # one GradScaler per optimiser, saved


@cuda
def test_cuda_compile_and_channels_last(tmp_path, monkeypatch):
    config, model, data = make(tmp_path, monkeypatch, data="toyimg", device="cuda",
                               **{"trainer.compile": True, "trainer.channels_last": True, "trainer.precision": "bf16"
                                  if torch.cuda.is_bf16_supported() else "fp16"})
    result = Trainer(config).fit(model, data)
    assert result.step == 6 and all(torch.isfinite(torch.tensor(v)) for v in result.values.values())
