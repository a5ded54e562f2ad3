"""Sharded sampling and evaluation on GPUs, for bench/gpu_check.sh (not a benchmark):

    python bench/_sharded_check.py RUN_DIR NPROC

Draws `genmodels sample RUN --n 64` (fp32, DPM-Solver++ 20 steps and the ancestral sampler, whose
every step draws noise) on one process at batch 64 and under torchrun on NPROC processes (one GPU
each) at batch 9, and `genmodels evaluate RUN --metrics fd,kid,prdc --n 256` both ways; the images
must agree to float rounding (max abs difference below 1e-3: GPU kernels round differently at
another batch size) and the metrics to 1e-3 relative. With one GPU, NPROC is 1 and the check is
batch-size invariance through torchrun's one-process path. Prints one line per check; exits 1 when
one fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SAMPLERS = (["--sampler", "dpm++", "--steps", "20"], ["--sampler", "ancestral", "--steps", "50"])


def genmodels(nproc: int, args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    head = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m",
             "genmodels", "--"] if nproc else [sys.executable, "-m", "genmodels"])
    done = subprocess.run([*head, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"sharded check: {' '.join(args[:2])} on {nproc or 1} process(es) failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> int:
    run, nproc = sys.argv[1], int(sys.argv[2])
    common = ["--device", "cuda", "--precision", "fp32"]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in SAMPLERS:
            one, many = Path(tmp, "one.npy"), Path(tmp, "many.npy")
            genmodels(0, ["sample", run, "--n", "64", "--out", str(one), "--batch-size", "64", *sampler, *common])
            genmodels(nproc, ["sample", run, "--n", "64", "--out", str(many), "--batch-size", "9", *sampler, *common])
            diff = float(np.abs(np.load(one) - np.load(many)).max())
            failed |= diff >= 1e-3
            print(f"sample {sampler[1]}: 1 process vs {nproc}: max abs difference {diff:.3g}")
    evaluate = ["evaluate", run, "--metrics", "fd,kid,prdc", "--n", "256", "--json", "--no-progress", *common]
    single = json.loads(genmodels(0, evaluate))["metrics"]
    sharded = json.loads(genmodels(nproc, evaluate))["metrics"]
    worst = max(abs(single[k]["value"] - sharded[k]["value"]) / max(abs(single[k]["value"]), 1e-12) for k in single)
    failed |= worst >= 1e-3
    print(f"evaluate fd,kid,prdc: 1 process vs {nproc}: largest relative difference {worst:.3g}")
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
