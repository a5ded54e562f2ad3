"""Data-parallel scaling (gloo on the CPU, one thread per process), two comparisons of the same DDPM
run (same global batch, same steps) launched by torchrun:

* `--compare processes`: --nproc_per_node 1 vs 2; the scaling efficiency is
  throughput(2) / (2 * throughput(1)).
* `--compare overlap`: 2 processes, the gradient all-reduce as one flat all-reduce after the
  backward pass (trainer.grad_bucket_mb = 0) vs buckets started while the backward pass runs
  (the default trainer.grad_bucket_mb) vs the same buckets compressed to bf16
  (trainer.grad_compression = bf16).

Throughput is taken from the run's own metrics.jsonl (wall time between the first and the last
logged step, so process start-up and the first step are excluded). The runs of a comparison
alternate (A, B, A, B, ...) and the median of each is reported. The uncompressed runs end with the
same weights (tests/test_distributed.py, tests/test_grad_buckets.py check this).

    python -m bench.scaling --steps 20 --repeats 2
    python -m bench.scaling --compare overlap --steps 20 --repeats 2
Prints human-readable lines and `RESULT {json}` lines for `python -m bench`.
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

from genmodels.config import TrainerConfig
from genmodels.training.logging import read_metrics

MODEL = ["ddpm", "--data", "mnist5k", "--set", "data.limit=1024"]   # library-default U-Net, 28x28
# name -> (processes, extra settings)
SETUPS = {
    "1 process": (1, []),
    "2 processes": (2, []),
    "flat": (2, ["--set", "trainer.grad_bucket_mb=0"]),
    "buckets": (2, []),
    "buckets+bf16": (2, ["--set", "trainer.grad_compression=bf16"]),
}
COMPARISONS = {"processes": ("1 process", "2 processes"), "overlap": ("flat", "buckets", "buckets+bf16")}


def run(setup: str, steps: int, batch: int, out: Path) -> float:
    """Images per second of one torchrun launch."""
    nproc, extra = SETUPS[setup]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "genmodels", "train", *MODEL, "--out", str(out), "--steps", str(steps), "--batch-size", str(batch),
           "--device", "cpu", "--no-progress", "--set", "trainer.log_every=1", "--set", "trainer.sample_every=0",
           "--set", "trainer.report=false", "--set", "trainer.tensorboard=false", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{done.stderr[-3000:]}")
    times = [r["time"] for r in read_metrics(out / "metrics.jsonl")]
    return (len(times) - 1) * batch / (times[-1] - times[0])


def measure(setups: tuple[str, ...], steps: int, batch: int, repeats: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {s: [] for s in setups}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            for s in setups:
                rates[s].append(run(s, steps, batch, Path(tmp) / f"run-{s.replace(' ', '-')}-{i}"))
    return rates


def report(rates: dict[str, list[float]]) -> dict[str, float]:
    medians = {s: statistics.median(r) for s, r in rates.items()}
    for s, r in rates.items():
        print(f"  {s:13s}: {medians[s]:7.1f} images/s  (runs: {', '.join(f'{x:.1f}' for x in r)})")
    return medians


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="processes")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (each of 2 ranks takes half)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"DDPM U-Net (library defaults, 28x28), global batch {args.batch_size}, {args.steps} steps, gloo, "
          f"1 thread per process")
    m = report(measure(COMPARISONS[args.compare], args.steps, args.batch_size, args.repeats))
    if args.compare == "processes":
        r1, r2 = m["1 process"], m["2 processes"]
        eff = r2 / (2 * r1)
        print(f"  speed-up x{r2 / r1:.2f}, scaling efficiency {100 * eff:.0f}%")
        print("RESULT " + json.dumps({"benchmark": "DDP scaling 1 -> 2 processes (gloo, CPU, DDPM U-Net)",
                                      "ratio": round(r2 / r1, 3),
                                      "detail": f"{r2:.1f} vs {r1:.1f} images/s, efficiency {100 * eff:.0f}% "
                                                f"(global batch {args.batch_size})"}), flush=True)
        return
    bucket = TrainerConfig().grad_bucket_mb
    for name, label in (("buckets", f"buckets of {bucket:g} MiB overlapped with backward"),
                        ("buckets+bf16", "the same buckets as bf16")):
        ratio = m[name] / m["flat"]
        print(f"  {name} vs flat: x{ratio:.2f}")
        print("RESULT " + json.dumps({"benchmark": f"gradient all-reduce, 2 processes (gloo, CPU, DDPM U-Net): "
                                                   f"{label} vs one flat all-reduce",
                                      "ratio": round(ratio, 3),
                                      "detail": f"{m[name]:.1f} vs {m['flat']:.1f} images/s "
                                                f"(global batch {args.batch_size})"}), flush=True)


if __name__ == "__main__":
    main()
