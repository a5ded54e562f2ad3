"""Sampling and evaluation spread over processes (gloo, CPU): per-image seeds make the images of a
request independent of the batch size and of the number of processes, the metrics of `evaluate`
equal the single-process ones, a failing rank stops every rank with one line and no file, and srun's
variables launch the process group without torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels.cli import main
from genmodels.errors import ConfigError
from genmodels.sampling.seeds import PerImageRandomness, image_generators, parse_seeds, request_seeds
from genmodels.training.distributed import Launch, first_host, launch

# a 2-step DDPM on 8x8 digits; ancestral sampling draws fresh noise at each of its 50 steps
TRAIN = ["train", "ddpm", "--data", "digits", "--channels", "8", "--channel-mults", "1",
         "--attention-resolutions", "[]", "--T", "50", "--set", "data.limit=256", "--steps", "2", "--batch-size", "16",
         "--device", "cpu", "--precision", "fp32", "--no-progress", "--set", "trainer.sample_every=0",
         "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]
SAMPLER = ["--sampler", "ancestral", "--steps", "50", "--device", "cpu", "--precision", "fp32"]
EVALUATE = ["--metrics", "fd,kid,prdc", "--n", "200", "--extractor", "raw", "--kid-subsets", "10",
            "--kid-subset-size", "100", "--json", "--no-progress", *SAMPLER]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sharded") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


def clean_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in [k for k in env if k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
              or k.startswith("SLURM_")]:
        env.pop(k)
    return env


def torchrun(nproc: int, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node N -m genmodels -- ARGS` (the form docs/scaling.md shows)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "genmodels", "--", *args]
    return subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=240)


def test_seeds_parse_and_refuse():
    assert parse_seeds("0-3,10,20-21") == [0, 1, 2, 3, 10, 20, 21]
    assert list(request_seeds(3, 5)) == [5, 6, 7]
    for bad in ("3-1", "a-b", "1,1", "-2", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_per_image_draws_do_not_depend_on_the_batch():
    """Every kind of draw a family makes (factories, tensor-parameterised, in-place, shared) gives
    image i the same values whatever batch it is drawn in."""
    g = torch.Generator()

    def draws(b: int) -> torch.Tensor:
        parts = [torch.randn((b, 3), generator=g), torch.rand(b, 2, generator=g),
                 torch.randint(5, (b,), generator=g)[:, None].float(),
                 torch.bernoulli(torch.full((b, 2), 0.5), generator=g), torch.empty(b, 2).normal_(generator=g),
                 torch.randn(4, generator=g).expand(b, 4)]           # shared by the batch
        return torch.cat(parts, 1)

    seeds = [7, 3, 11, 0, 5]

    def batched(size: int) -> torch.Tensor:
        out = []
        for start in range(0, len(seeds), size):
            chunk = seeds[start:start + size]
            with PerImageRandomness(g, image_generators(chunk, torch.device("cpu"))):
                out.append(draws(len(chunk)))
        return torch.cat(out)

    whole = batched(5)
    assert torch.equal(whole, batched(2)) and torch.equal(whole, batched(1))
    assert torch.equal(whole[1], batched(1)[1]) and not torch.equal(whole[0], whole[1])


def test_images_do_not_depend_on_processes_or_batches(run, tmp_path):
    """`sample --n 64` on 1 process (batch 50) and 2 processes (batch 9): the same images, same
    order; `--seeds` picks images out of the request."""
    one, two, some = tmp_path / "one.npy", tmp_path / "two.npy", tmp_path / "some.npy"
    assert main(["sample", str(run), "--n", "64", "--out", str(one), "--batch-size", "50", *SAMPLER]) == 0
    done = torchrun(2, ["sample", str(run), "--n", "64", "--out", str(two), "--batch-size", "9", *SAMPLER], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote 64 samples") == 1               # rank 0 alone writes and prints
    a, b = np.load(one), np.load(two)
    assert a.shape == b.shape == (64, 1, 8, 8)
    assert np.abs(a - b).max() < 1e-5
    assert main(["sample", str(run), "--seeds", "5,60-61", "--out", str(some), *SAMPLER]) == 0
    assert np.abs(np.load(some) - a[[5, 60, 61]]).max() < 1e-5


@pytest.mark.slow
def test_images_on_three_processes(run, tmp_path):
    one, three = tmp_path / "one.npy", tmp_path / "three.npy"
    assert main(["sample", str(run), "--n", "256", "--out", str(one), *SAMPLER]) == 0
    done = torchrun(3, ["sample", str(run), "--n", "256", "--out", str(three), *SAMPLER], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert np.abs(np.load(one) - np.load(three)).max() < 1e-5


def test_metrics_do_not_depend_on_processes(run, tmp_path, capsys):
    """FD, KID and precision/recall/density/coverage (and their floors) of `evaluate` on 2
    processes equal the single-process figures to 1e-6 relative; the report is printed once."""
    capsys.readouterr()
    assert main(["evaluate", str(run), *EVALUATE]) == 0
    single = json.loads(capsys.readouterr().out)["metrics"]
    done = torchrun(2, ["evaluate", str(run), *EVALUATE], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    double = json.loads(done.stdout)["metrics"]                      # one report: rank 0's
    assert set(single) == set(double) >= {"FD-raw", "KID-raw", "precision", "recall"}
    for name, row in single.items():
        for key in ("value", "std", "real_floor", "real_floor_std"):
            if row[key] is not None:
                assert double[name][key] == pytest.approx(row[key], rel=1e-6, abs=1e-12), (name, key)


FAILING = """
import os, sys
from genmodels.cli import main
from genmodels.errors import DataError
from genmodels.models.ddpm.model import DDPM

original = DDPM.sample

def failing(self, n, options=None, *, generator=None, **kw):
    if os.environ["RANK"] == "1":
        raise DataError("the model produced NaN samples (a failure of rank 1 alone)")
    return original(self, n, options, generator=generator, **kw)

DDPM.sample = failing
sys.exit(main(sys.argv[1:]))
"""


def test_a_failing_rank_stops_every_rank_with_one_line(run, tmp_path):
    script, out = tmp_path / "failing.py", tmp_path / "never.npy"
    script.write_text(textwrap.dedent(FAILING))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), "--",
           "sample", str(run), "--n", "32", "--out", str(out), "--batch-size", "8", *SAMPLER]
    done = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("genmodels sample:")]
    assert ours == ["genmodels sample: error: rank 1 of 2 failed: the model produced NaN samples "
                    "(a failure of rank 1 alone)"], done.stderr[-3000:]
    frames = [line for line in done.stderr.splitlines() if line.strip().startswith("File ") and "genmodels" in line]
    assert not frames, frames          # torchrun prints its own summary; no rank prints a traceback of ours
    assert not out.exists() and not list(tmp_path.glob("never*"))   # nothing written, not even a temporary


def test_slurm_variables_map_to_a_launch():
    slurm = {"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "4242",
             "SLURM_JOB_NODELIST": "gpu[07-08,11],cpu1"}
    assert launch(slurm) == Launch(3, 8, 1, "gpu07", 24242, "srun")
    assert launch({**slurm, "MASTER_ADDR": "head", "MASTER_PORT": "1234"}) == Launch(3, 8, 1, "head", 1234, "srun")
    # torchrun's variables win inside a SLURM allocation; one task is one process
    assert launch({**slurm, "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}).by == "torchrun"
    assert launch({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == Launch()
    assert [first_host(s) for s in ("node[03-05,09],gpu1", "a,b", "host", "gpu[7]")] == ["node03", "a", "host", "gpu7"]


JOIN = """
import torch, torch.distributed as dist
from genmodels.training.distributed import setup, teardown
info, device = setup("cpu")
t = torch.tensor([float(info.rank + 1)])
dist.all_reduce(t)
print(info.rank, info.world_size, info.local_rank, float(t))
teardown()
"""


def test_srun_variables_join_two_local_processes(tmp_path):
    """Two processes with srun's variables (no torchrun) join one gloo group through `setup`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**clean_env(), "SLURM_PROCID": str(rank), "SLURM_NTASKS": "2", "SLURM_LOCALID": str(rank),
               "SLURM_JOB_NODELIST": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-c", JOIN], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [o[0].split() for o in outs] == [["0", "2", "0", "3.0"], ["1", "2", "1", "3.0"]]
