"""The benchmark runner (`python -m bench`): `--only` refreshes some rows and keeps the others'; the GPU
benchmarks are skipped where there is no CUDA GPU; bench/gpu_check.sh stops at once without one."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.__main__ import (  # noqa: E402
    BEGIN,
    END,
    NO_GPU,
    Bench,
    discover,
    load_records,
    main,
    render,
    save_records,
    write,
)

GPU_CHECK = ROOT / "bench" / "gpu_check.sh"


def test_only_keeps_the_other_benchmarks_rows(tmp_path, monkeypatch):
    import bench.__main__ as runner

    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nhand-written text\n", encoding="utf-8")
    old = Bench("scaling", ["-m", "bench.scaling"], "scaling", status="ok", measured="2026-01-01 00:00 UTC",
                rows=[{"benchmark": "DDP scaling", "ratio": 1.5, "detail": "old figure"}])
    save_records(out.with_suffix(".json"), [old])
    assert load_records(out.with_suffix(".json"))["scaling"].rows == old.rows

    script = tmp_path / "fake.py"
    script.write_text('print("RESULT {\\"benchmark\\": \\"fake row\\", \\"ratio\\": 2.0, \\"detail\\": \\"new\\"}")\n')
    monkeypatch.setattr(runner, "KNOWN", {"fake": ([str(script)], "a fake benchmark"),
                                          "scaling": (["-m", "bench.scaling"], "scaling")})
    monkeypatch.setattr(runner, "ROOT", tmp_path)      # no other scripts are discovered under tmp/bench
    assert main(["--only", "fake", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "hand-written text" in page and page.count(BEGIN) == 1 and page.count(END) == 1
    assert "| fake row | 2.0 | new |" in page                  # the re-run benchmark
    assert "| DDP scaling | 1.5 | old figure |" in page         # kept from the earlier run, with its date
    assert "measured 2026-01-01 00:00 UTC" in page
    assert set(load_records(out.with_suffix(".json"))) == {"fake", "scaling"}


def test_unreadable_records_are_ignored(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("{not json", encoding="utf-8")
    assert load_records(bad) == {} and load_records(tmp_path / "missing.json") == {}
    write(tmp_path / "p.md", render([Bench("x", ["x.py"], "x")], {"CPU": "c"}, "python -m bench"))
    assert "not run" in (tmp_path / "p.md").read_text(encoding="utf-8")


def test_the_gpu_benchmarks_need_cuda():
    gpu = {b.name: b for b in discover() if b.needs_cuda}
    assert set(gpu) == {"ddpm_vs_diffusers_cuda", "ddpm_vs_diffusers_cuda_bf16"}
    assert all(b.argv[:3] == ["bench/ddpm_vs_diffusers.py", "--device", "cuda"] for b in gpu.values())
    assert "--precision" in gpu["ddpm_vs_diffusers_cuda_bf16"].argv
    assert not any(b.needs_cuda for b in discover() if b.name in ("ddpm_vs_diffusers", "precision", "scaling"))


def test_gpu_benchmarks_are_skipped_without_cuda_and_keep_their_last_gpu_figures(tmp_path, monkeypatch):
    import bench.__main__ as runner

    started = tmp_path / "started"
    script = tmp_path / "gpu.py"
    script.write_text(f"open({str(started)!r}, 'w').close()\n"
                      'print("RESULT {\\"benchmark\\": \\"gpu row\\", \\"ratio\\": 3.0, \\"detail\\": \\"now\\"}")\n')
    cpu = tmp_path / "cpu.py"
    cpu.write_text('print("RESULT {\\"benchmark\\": \\"cpu row\\", \\"ratio\\": 1.0, \\"detail\\": \\"ran\\"}")\n')
    monkeypatch.setattr(runner, "KNOWN", {"cpu": ([str(cpu)], "a CPU benchmark"),
                                          "gpu": ([str(script)], "a GPU benchmark", {"needs_cuda": True})})
    monkeypatch.setattr(runner, "ROOT", tmp_path)      # no other scripts are discovered under tmp/bench
    monkeypatch.setattr(runner, "cuda_available", lambda: False)
    out, records = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"

    assert main(["--out", str(out)]) == 0                      # everything: the GPU one is not started
    page = out.read_text(encoding="utf-8")
    assert "| cpu row | 1.0 | ran |" in page
    assert f"| gpu: a GPU benchmark | - | {NO_GPU} |" in page and not started.exists()
    assert load_records(records)["gpu"].status == NO_GPU
    assert main(["--only", "gpu", "--out", str(out)]) == 0 and not started.exists()
    assert f"| gpu: a GPU benchmark | - | {NO_GPU} |" in out.read_text(encoding="utf-8")

    # figures of an earlier run on a GPU survive a run on a machine without one
    last = Bench("gpu", [str(script)], "a GPU benchmark", status="ok", needs_cuda=True,
                 measured="2026-01-02 00:00 UTC, load average at start 0.1 0.1 0.1, on Some GPU",
                 rows=[{"benchmark": "gpu row", "ratio": 2.0, "detail": "from a GPU"}])
    save_records(records, [last])
    assert main(["--out", str(out)]) == 0 and not started.exists()
    page = out.read_text(encoding="utf-8")
    assert "| gpu row | 2.0 | from a GPU |" in page and "on Some GPU" in page and f"| {NO_GPU} |" not in page

    # with a GPU it runs
    monkeypatch.setattr(runner, "cuda_available", lambda: True)
    monkeypatch.setattr(runner, "gpu_name", lambda: "Fake GPU")
    assert main(["--only", "gpu", "--out", str(out)]) == 0 and started.exists()
    page = out.read_text(encoding="utf-8")
    assert "| gpu row | 3.0 | now |" in page and ", on Fake GPU" in page and "- **GPU**: Fake GPU" in page


def test_gpu_check_script_parses():
    done = subprocess.run(["bash", "-n", str(GPU_CHECK)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_gpu_check_exits_2_at_once_without_a_gpu_having_installed_nothing(tmp_path):
    """Both ways of having no GPU: no working driver (nvidia-smi fails), and a GPU that torch does not
    see (CUDA_VISIBLE_DEVICES empty). The one python call allowed is the torch check: no pip, no setup."""
    bin_dir, log = tmp_path / "bin", tmp_path / "python-calls.log"
    bin_dir.mkdir()
    python = bin_dir / "python-logged"
    python.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHON": str(python),
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cases = {"nvidia-smi lists no GPU": "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9",
             "torch 2": "echo 'GPU 0: Some GPU (UUID: GPU-0)'"}
    for why, smi in cases.items():
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{smi}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
        start = time.perf_counter()
        done = subprocess.run(["bash", str(GPU_CHECK)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        seconds = time.perf_counter() - start
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stdout + done.stderr
        assert done.stderr.startswith("gpu_check: no CUDA GPU here (") and why in done.stderr
        assert "nothing installed, nothing run" in done.stderr
        assert seconds < 30, seconds                               # a torch import, no more
    assert log.read_text().splitlines() == ["-"]                   # one call, the torch check (stdin script)
