"""`trainer.precision = "auto"` and `trainer.threads = 0`: resolved per device (CPU flags mocked),
printed at start and recorded in config.toml so that a resumed run keeps them."""

from __future__ import annotations

import tomllib

import pytest
import torch

from genmodels.training.hardware import cpu_flags, cpu_has_fast_bf16, resolve_precision, resolve_threads

CPU = torch.device("cpu")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags : x\n")
    assert cpu_flags(info) == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),   # AVX512-BF16 (Cooper Lake, Zen 4)
    ({"avx512f", "amx_bf16", "amx_tile"}, "bf16"),  # AMX (Sapphire Rapids)
    ({"avx2", "avx512f", "avx512bw"}, "fp32"),      # AVX-512 without bf16: emulated, slower
    (set(), "fp32"),                                # no flags known (another OS, ARM)
])
def test_auto_precision_on_cpu_follows_the_bf16_instructions(flags, expected):
    precision, why = resolve_precision("auto", CPU, flags)
    assert precision == expected and why.startswith("auto")
    assert cpu_has_fast_bf16(flags) == (expected == "bf16")


def test_explicit_precision_passes_through_and_other_devices_get_fp32():
    assert resolve_precision("fp32", CPU, {"avx512_bf16"}) == ("fp32", "as configured")
    assert resolve_precision("bf16", CPU, set())[0] == "bf16"
    assert resolve_precision("auto", torch.device("mps"), {"avx512_bf16"})[0] == "fp32"


def test_auto_precision_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda"))[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda"))[0] == "fp32"


def test_threads_share_the_cores_among_local_processes():
    assert resolve_threads(2, 1, cores=4) == 2                  # explicit
    assert resolve_threads(3, 1, cores=2) == 2                  # explicit, capped at the usable cores
    assert resolve_threads(0, 1, cores=2) == 2                  # one process: every core
    assert resolve_threads(0, 2, cores=2) == 1                  # torchrun, 2 processes on 2 cores
    assert resolve_threads(0, 4, cores=2) == 1                  # never below one


def test_resolved_precision_is_printed_and_recorded_and_kept_on_resume(tmp_path, monkeypatch, capsys):
    from genmodels.cli import main
    from genmodels.training import trainer

    monkeypatch.setattr(trainer, "resolve_precision", lambda p, d: resolve_precision(p, d, {"avx512_bf16"}))
    run = tmp_path / "run"
    argv = ["train", "ddpm", "--data", "moons", "--out", str(run), "--steps", "2", "--batch-size", "16",
            "--mlp-width", "8", "--mlp-depth", "1", "--T", "10", "--threads", "1", "--no-progress",
            "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]
    assert main(argv) == 0
    assert "precision bf16 (auto: the CPU has native bf16" in capsys.readouterr().err
    assert tomllib.loads((run / "config.toml").read_text())["trainer"]["precision"] == "bf16"
    # on a machine without bf16 the resumed run keeps the recorded bf16
    monkeypatch.setattr(trainer, "resolve_precision", lambda p, d: resolve_precision(p, d, set()))
    assert main(["train", "ddpm", "--out", str(run), "--resume", "--steps", "3", "--no-progress"]) == 0
    assert "precision bf16 (as configured)" in capsys.readouterr().err
    assert tomllib.loads((run / "config.toml").read_text())["trainer"]["precision"] == "bf16"


def test_cgroup_quota_caps_usable_cores(tmp_path):
    """A container's CPU quota (cgroup v2 cpu.max, v1 cfs files) caps the cores, not its affinity."""
    from genmodels.training.hardware import cgroup_cpus, usable_cores

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpus(v2) == 1
    assert usable_cores(v2) == 1
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(v2) is None
    (v2 / "cpu.max").write_text("garbage\n")
    assert cgroup_cpus(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpus(v1) == 4
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpus(v1) is None
    assert cgroup_cpus(tmp_path / "absent") is None
    assert usable_cores(tmp_path / "absent") >= 1
