"""Data-parallel training under torchrun (gloo, CPU): 2 processes x B/2 examples reproduce 1 process
x B (DDPM and a GAN), only rank 0 writes, and checkpoints resume on another number of processes.

Plus fast in-process checks of the pieces: the global-batch randomness, the rank split of the data
stream and the batch-size check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.cli import main
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError
from genmodels.training.data_stream import DataStream
from genmodels.training.distributed import DistInfo, check_batch, setup
from genmodels.training.global_batch import GlobalBatchRandomness
from genmodels.training.logging import read_metrics

STEPS = 4
# fp32: the equalities are those of the maths; bf16 kernels may round differently at another batch size
COMMON = ["--batch-size", "16", "--device", "cpu", "--precision", "fp32", "--no-progress",
          "--set", "trainer.sample_every=0",
          "--set", "trainer.log_every=1", "--set", "trainer.report=false", "--set", "trainer.ema_decay=0.9",
          "--set", "trainer.tensorboard=false",
          # a constant rate: these runs are extended by --resume, which would stretch a decay
          "--set", "trainer.lr_schedule=constant", "--set", "trainer.warmup_steps=0"]
DDPM = ["ddpm", "--data", "digits", "--channels", "8", "--channel-mults", "1", "--attention-resolutions", "[]",
        "--T", "50", "--lr", "1e-3", "--set", "data.limit=256"]
# WGAN-GP with k = 2: fresh minibatches (ctx.next_batch), a per-example penalty draw, double backward
GAN = ["gan", "--data", "moons", "--mlp-width", "32", "--mlp-depth", "2", "--z-dim", "4", "--k", "2",
       "--loss", "wasserstein", "--ema", "--lr-g", "1e-3", "--lr-d", "1e-3",
       "--no-g-batchnorm"]   # batch norm sees each rank's half on the CPU (SyncBatchNorm is CUDA-only)


def torchrun(nproc: int, argv: list[str], tmp_path: Path, entry: tuple[str, ...] = ("-m", "genmodels")) -> str:
    """`torchrun --standalone --nproc_per_node N -m genmodels train ...` in tmp_path (or `entry`, a
    script, in place of `-m genmodels`); returns what the ranks printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           *entry, "train", *argv]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def train_here(argv: list[str]) -> None:
    """One process, in this interpreter (not launched by torchrun)."""
    assert "WORLD_SIZE" not in os.environ
    assert main(["train", *argv]) == 0


def state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=True)


def assert_close_states(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a["step"] == b["step"]
    for part in ("modules", "optimizers", "ema", "data", "rng"):
        flat_a, flat_b = _flatten(a[part]), _flatten(b[part])
        assert flat_a.keys() == flat_b.keys(), part
        for k, va in flat_a.items():
            vb = flat_b[k]
            if isinstance(va, torch.Tensor) and va.is_floating_point():
                assert torch.allclose(va, vb, atol=atol, rtol=1e-4), (part, k, (va - vb).abs().max())
            elif isinstance(va, torch.Tensor):
                assert torch.equal(va, vb), (part, k)
            elif part != "rng":
                assert va == vb, (part, k)
    # the step generator (per-example noise) advanced identically: drawn for the global batch
    assert torch.equal(a["rng"]["step"], b["rng"]["step"])


def _flatten(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out
    return {prefix: obj}


def assert_same_logs(a: Path, b: Path) -> None:
    la, lb = read_metrics(a / "metrics.jsonl"), read_metrics(b / "metrics.jsonl")
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    for ra, rb in zip(la, lb, strict=True):
        for k, v in ra.items():
            if not k.endswith("time"):          # wall-clock and CPU time differ between runs
                assert v == pytest.approx(rb[k], rel=1e-4, abs=1e-5), (k, ra["step"])


def assert_written_once(tmp_path: Path, run: Path, steps: int) -> None:
    """Rank 1 wrote nothing: one run directory, one log line per step, no stray files."""
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("run")) == [run.name]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, steps + 1))
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoints", "config.toml", "losses.png",
                                                     "metrics.jsonl"]  # .lock: rank 0's writer lock
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["latest.pt"]


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)


def test_ddpm_two_processes_equal_one(tmp_path):
    two, one = tmp_path / "run2", tmp_path / "ref1"
    torchrun(2, [*DDPM, "--out", str(two), "--steps", str(STEPS), *COMMON], tmp_path)
    assert_written_once(tmp_path, two, STEPS)
    train_here([*DDPM, "--out", str(one), "--steps", str(STEPS), *COMMON])
    assert_close_states(state(two), state(one))
    assert_same_logs(two, one)
    # and the training did move the weights (the comparison is not between two initialisations)
    init = tmp_path / "ref0"
    train_here([*DDPM, "--out", str(init), "--steps", "1", *COMMON])
    w_one, w_init = state(one)["modules"]["denoiser"], state(init)["modules"]["denoiser"]
    assert max(float((w_one[k] - w_init[k]).abs().max()) for k in w_one if w_one[k].is_floating_point()) > 1e-3


def test_ddpm_importance_sampled_t_two_processes_equal_one(tmp_path):
    """The importance sampler's history of L_t grows from the global batch, so 2 processes hold the
    same history as 1 and draw the same steps (T = 5: the history is full after 4 steps of 16)."""
    extra = ["--T", "5", "--loss", "vlb", "--learn-sigma", "--t-sampler", "importance", "--steps", "6"]
    two, one = tmp_path / "run2", tmp_path / "ref1"
    torchrun(2, [*DDPM, *extra, "--out", str(two), *COMMON], tmp_path)
    train_here([*DDPM, *extra, "--out", str(one), *COMMON])
    a, b = state(two), state(one)
    assert int(a["modules"]["t_sampler"]["counts"].min()) >= 10             # full: p in use
    assert torch.equal(a["modules"]["t_sampler"]["counts"], b["modules"]["t_sampler"]["counts"])
    assert_close_states(a, b)


def test_gan_two_processes_equal_one_and_resume_on_other_counts(tmp_path):
    two, one = tmp_path / "run2", tmp_path / "ref1"
    torchrun(2, [*GAN, "--out", str(two), "--steps", str(STEPS), *COMMON], tmp_path)
    assert_written_once(tmp_path, two, STEPS)
    train_here([*GAN, "--out", str(one), "--steps", str(STEPS), *COMMON])
    assert_close_states(state(two), state(one))
    assert_same_logs(two, one)

    # reference: one process straight to 2 * STEPS
    full = tmp_path / "ref-full"
    train_here([*GAN, "--out", str(full), "--steps", str(2 * STEPS), *COMMON])
    # the 2-process checkpoint continued by 1 process ...
    two_then_one = tmp_path / "ref-2then1"
    shutil.copytree(two, two_then_one)
    train_here([*GAN, "--out", str(two_then_one), "--resume", "--steps", str(2 * STEPS), *COMMON])
    assert_close_states(state(two_then_one), state(full))
    # ... and the 1-process checkpoint continued by 2 processes
    one_then_two = tmp_path / "ref-1then2"
    shutil.copytree(one, one_then_two)
    torchrun(2, [*GAN, "--out", str(one_then_two), "--resume", "--steps", str(2 * STEPS), *COMMON], tmp_path)
    assert_close_states(state(one_then_two), state(full))
    assert [r["step"] for r in read_metrics(one_then_two / "metrics.jsonl")] == list(range(1, 2 * STEPS + 1))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts the process's threads in /proc (Linux)")
def test_no_process_group_thread_outlives_the_run(tmp_path):
    """Every rank leaves the process group whole: once `genmodels train` returns, gloo's worker
    threads are gone. A thread left alive (the group kept by a reference past destroy_process_group)
    may free a tensor of its last collective while the interpreter exits, and the rank then aborts
    (SIGABRT) after a finished run, now and then, under load."""
    script = tmp_path / "train_then_count_threads.py"
    script.write_text(  # native threads: the process's, less those Python started (tqdm's monitor)
        "import os, sys, threading\n"
        "from genmodels.cli import main\n"
        "def native(): return len(os.listdir('/proc/self/task')) - len(threading.enumerate())\n"
        "before = native()      # torch's own, from its import\n"
        "code = main(sys.argv[1:])\n"
        "sys.stdout.write(f\"rank {os.environ['RANK']}: {native() - before} more native thread(s)\\n\")\n"
        "sys.exit(code)\n")
    printed = torchrun(2, [*GAN, "--out", str(tmp_path / "run2"), "--steps", "2", *COMMON], tmp_path,
                       entry=(str(script),))
    # the ranks' lines may interleave with each other's output in torchrun's stdout
    assert sorted(re.findall(r"rank (\d): (\d+) more native thread", printed)) == [("0", "0"), ("1", "0")], printed


# --- the pieces, in process ---------------------------------------------------------------------

def _draws(g: torch.Generator, m: int) -> list[torch.Tensor]:
    x = torch.empty(m, 3)
    p = torch.linspace(0.05, 0.95, m)[:, None].expand(m, 2).contiguous()
    return [torch.randn(m, 5, generator=g), torch.randn((m, 2), generator=g), torch.rand(size=(m,), generator=g),
            torch.randint(1, 9, (m,), generator=g), torch.bernoulli(p, generator=g),
            x.normal_(generator=g), torch.randn(7, generator=g)]


def test_global_batch_randomness_slices_the_single_process_draws():
    B, W = 8, 2
    single = _draws(torch.Generator().manual_seed(3), B)
    m = B // W
    per_rank = []
    for r in range(W):
        g = torch.Generator().manual_seed(3)
        with GlobalBatchRandomness(g, m, r, W) as mode:
            per_rank.append(_draws(g, m))
        assert mode.sliced == 6                      # the 7th draw, of 7 values, is not per-example
    for i, whole in enumerate(single[:-1]):
        if i == 4:      # bernoulli: each rank's parameters are its own slice of p
            continue
        assert torch.equal(torch.cat([per_rank[r][i] for r in range(W)]), whole), i
    # a non-batch draw is the same on every rank and as in one process
    assert torch.equal(per_rank[0][-1], single[-1]) and torch.equal(per_rank[1][-1], single[-1])
    # another generator's draws are untouched
    g, other = torch.Generator().manual_seed(3), torch.Generator().manual_seed(5)
    with GlobalBatchRandomness(g, m, 1, W):
        z = torch.randn(m, 2, generator=other)
    assert torch.equal(z, torch.randn(m, 2, generator=torch.Generator().manual_seed(5)))


def test_global_batch_randomness_bernoulli_matches_with_per_example_parameters():
    B, W = 6, 3
    p = torch.rand(B, 4, generator=torch.Generator().manual_seed(1))
    whole = torch.bernoulli(p, generator=torch.Generator().manual_seed(2))
    m = B // W
    parts = []
    for r in range(W):
        g = torch.Generator().manual_seed(2)
        with GlobalBatchRandomness(g, m, r, W):
            parts.append(torch.bernoulli(p[r * m:(r + 1) * m], generator=g))
    assert torch.equal(torch.cat(parts), whole)


def test_data_stream_ranks_partition_the_global_batch():
    ds = Dataset(x=torch.arange(40.0)[:, None], kind="points", name="n")
    one = DataStream(ds, 8, torch.Generator().manual_seed(0), torch.device("cpu"))
    ranks = [DataStream(ds, 8, torch.Generator().manual_seed(0), torch.device("cpu"), rank=r, world_size=4)
             for r in range(4)]
    for _ in range(12):                                            # across epoch boundaries
        whole = one.next()[0]
        assert torch.equal(torch.cat([s.next()[0] for s in ranks]), whole)
    assert ranks[2].state_dict()["position"] == one.state_dict()["position"]


def test_batch_must_split_evenly_and_cuda_index_is_refused(monkeypatch):
    assert check_batch(16, DistInfo(rank=1, world_size=4)) == 4
    with pytest.raises(ConfigError, match="not divisible by the 3 processes"):
        check_batch(16, DistInfo(rank=0, world_size=3))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="cuda:LOCAL_RANK"):
        setup("cuda:1")
