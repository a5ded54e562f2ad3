"""Data-parallel scaling from 1 to 2 processes: the same DDPM run (same global batch, same steps)
launched by torchrun with --nproc_per_node 1 and 2 (gloo on the CPU, one thread per process).

Throughput is taken from the run's own metrics.jsonl (wall time between the first and the last
logged step, so process start-up and the first step are excluded); the scaling efficiency is
throughput(2) / (2 * throughput(1)). The runs alternate (1, 2, 1, 2, ...) and the median of each
is reported. The two runs end with the same weights (tests/test_distributed.py checks this).

    python -m bench.scaling --steps 20 --repeats 2
Prints human-readable lines and one `RESULT {json}` line for `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from genmodels.training.logging import read_metrics

MODEL = ["ddpm", "--data", "mnist5k", "--set", "data.limit=1024"]   # library-default U-Net, 28x28


def run(nproc: int, steps: int, batch: int, out: Path) -> float:
    """Images per second of one torchrun launch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "genmodels", "train", *MODEL, "--out", str(out), "--steps", str(steps), "--batch-size", str(batch),
           "--device", "cpu", "--no-progress", "--set", "trainer.log_every=1", "--set", "trainer.sample_every=0",
           "--set", "trainer.report=false", "--set", "trainer.tensorboard=false"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{done.stderr[-3000:]}")
    times = [r["time"] for r in read_metrics(out / "metrics.jsonl")]
    return (len(times) - 1) * batch / (times[-1] - times[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (each of 2 ranks takes half)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for nproc in (1, 2):
                rates[nproc].append(run(nproc, args.steps, args.batch_size, Path(tmp) / f"run{nproc}-{i}"))
    r1, r2 = statistics.median(rates[1]), statistics.median(rates[2])
    eff = r2 / (2 * r1)
    print(f"DDPM U-Net (library defaults, 28x28), global batch {args.batch_size}, {args.steps} steps, gloo, "
          f"1 thread per process")
    print(f"  1 process : {r1:7.1f} images/s  (runs: {', '.join(f'{r:.1f}' for r in rates[1])})")
    print(f"  2 processes: {r2:7.1f} images/s  (runs: {', '.join(f'{r:.1f}' for r in rates[2])})")
    print(f"  speed-up x{r2 / r1:.2f}, scaling efficiency {100 * eff:.0f}%")
    print("RESULT " + json.dumps({"benchmark": "DDP scaling 1 -> 2 processes (gloo, CPU, DDPM U-Net)",
                                  "ratio": round(r2 / r1, 3),
                                  "detail": f"{r2:.1f} vs {r1:.1f} images/s, efficiency {100 * eff:.0f}% "
                                            f"(global batch {args.batch_size})"}), flush=True)


if __name__ == "__main__":
    main()
