"""CPU mixed precision: bf16 autocast against fp32 for DDPM training and sampling, channels-last and
torch.compile variants, with a sample-quality check.

Measured, each as a ratio in one run on one machine (blocks of the variants alternate so that
background load hits all of them alike; the median block is reported):

  matmul       GFLOP/s of a 2048 x 2048 matmul in fp32 and bf16 (the machine's peaks for the
               GFLOP/s row of docs/benchmarks.md)
  train        DDPM train_step images/s (U-Net of the library defaults: 16 channels, mults 1,2,2,
               attention at 7x7, 28x28x1 images, batch 64) through the trainer's TrainContext
  sample       DDIM sampling images/s with the same U-Net (batch 64, 10 network evaluations)
  quality      a 2-D DDPM trained through `Trainer` on ring8 in fp32 and in bf16 (same seed and
               steps): modes captured and share of high-quality samples (Srivastava et al.'s
               protocol, `genmodels.metrics.modes`) of 2,000 DDIM samples

    python -m bench.precision --threads 1
Prints human-readable lines and one `RESULT {json}` line per row for `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from genmodels.config import RunConfig
from genmodels.data import load
from genmodels.data.dataset import DataSpec
from genmodels.metrics.modes import mode_coverage
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions
from genmodels.run import build_model
from genmodels.run.seeds import make_generator
from genmodels.training import Trainer
from genmodels.training.context import TrainContext
from genmodels.training.prepare import prepare_modules


def result(row: dict) -> None:
    print("RESULT " + json.dumps(row), flush=True)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 6) -> float:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0)).to(dtype)
    b = torch.randn(n, n, generator=torch.Generator().manual_seed(1)).to(dtype)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / min(times) / 1e9


def alternate(fns: dict, blocks: int) -> dict[str, float]:
    """{name: median seconds per block}, running the blocks of each fn in turn."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def unet_model(channels_last: bool, compile: bool) -> DDPM:
    model = DDPM(DDPMConfig(), DataSpec("image", (1, 28, 28)))
    prepare_modules(model.modules(), channels_last, compile)
    return model


def step_flops(model: DDPM, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one fp32 train_step (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(9), precision="fp32",
                       grad_clip=0.0, next_batch=lambda: (x, y))
    with FlopCounterMode(display=False) as counter:
        model.train_step((x, y), ctx)
    return counter.get_total_flops()


def train_and_sample(args, peaks: dict[str, float]) -> None:
    batch = 64
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=gen) * 2 - 1
    y = torch.full((batch,), -1)
    variants = {"fp32": ("fp32", False, False), "bf16": ("bf16", False, False),
                "fp32+channels_last": ("fp32", True, False), "bf16+channels_last": ("bf16", True, False)}
    if args.compile:
        variants.update({"fp32+compile": ("fp32", False, True), "bf16+compile": ("bf16", False, True)})
    train_fns, sample_fns = {}, {}
    for name, (precision, cl, comp) in variants.items():
        model = unet_model(cl, comp)
        xb = x.contiguous(memory_format=torch.channels_last) if cl else x
        ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(1),
                           precision=precision, grad_clip=0.0, next_batch=lambda xb=xb: (xb, y))

        def train(model=model, ctx=ctx, xb=xb):
            for _ in range(args.steps):
                model.train_step((xb, y), ctx)

        def sample(model=model, ctx=ctx):
            with torch.no_grad(), ctx.autocast():
                model.sample(batch, DDPMSampleOptions(sampler="ddim", steps=10),
                             generator=torch.Generator().manual_seed(2))

        train()                  # warm-up (and compilation)
        sample()
        train_fns[name], sample_fns[name] = train, sample
    flops = step_flops(unet_model(False, False), x, y)
    for what, fns, per in (("train", train_fns, args.steps * batch), ("sample", sample_fns, batch)):
        med = alternate(fns, args.blocks)
        if what == "train":
            for name, key in (("fp32", "fp32"), ("bf16", "bf16")):
                achieved = flops * args.steps / med[name] / 1e9
                print(f"  {name}: {achieved:.1f} GFLOP/s achieved in training ({flops / 1e9:.2f} GFLOP per step)")
                result({"benchmark": f"DDPM train achieved GFLOP/s vs {key} matmul peak ({args.threads} thread)",
                        "ratio": round(achieved / peaks[key], 3),
                        "detail": f"{achieved:.1f} of {peaks[key]:.1f} GFLOP/s ({flops / 1e9:.2f} GFLOP per "
                                  f"train step, batch {batch}, FlopCounterMode)"})
        base = per / med["fp32"]
        print(f"DDPM U-Net {what} (28x28, batch {batch}):")
        for name, sec in med.items():
            rate = per / sec
            print(f"  {name:20s} {rate:8.1f} images/s   x{rate / base:.2f} vs fp32")
        for name, sec in med.items():
            if name != "fp32":
                result({"benchmark": f"DDPM {what} throughput, CPU {name} vs fp32", "ratio": round(per / sec / base, 3),
                        "detail": f"{per / sec:.1f} vs {base:.1f} images/s (U-Net defaults, 28x28, batch {batch})"})


def quality(args) -> None:
    data = load("ring8", "train", seed=0)
    rows = {}
    for precision in ("fp32", "bf16"):
        with tempfile.TemporaryDirectory() as out:
            config = RunConfig.default("ddpm")
            config.out, config.data.name = out, "ring8"
            t = config.trainer
            t.steps, t.batch_size, t.device, t.precision = args.quality_steps, 256, "cpu", precision
            t.sample_every, t.progress, t.tensorboard, t.report, t.log_every = 0, False, False, False, 100
            config.model.T = 200
            model = build_model(config, data.spec, torch.device("cpu"))
            started = time.perf_counter()
            Trainer(config).fit(model, data)
            seconds = time.perf_counter() - started
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                s = model.sample(2000, DDPMSampleOptions(sampler="ddim", steps=50),
                                 generator=make_generator(0, "bench"))
            cov = mode_coverage(s.float(), data.modes, data.mode_std)
            rows[precision] = (cov, seconds)
            print(f"ring8 DDPM {precision}: {args.quality_steps} steps in {seconds:.1f} s, modes "
                  f"{cov['modes_captured']:.0f}/{cov['num_modes']:.0f}, high quality {cov['high_quality']:.3f}")
    (c32, s32), (c16, s16) = rows["fp32"], rows["bf16"]
    result({"benchmark": "DDPM 2-D quality, CPU bf16 vs fp32 (ring8, DDIM-50)",
            "ratio": round(c16["high_quality"] / max(c32["high_quality"], 1e-9), 3),
            "detail": f"modes {c16['modes_captured']:.0f}/{c16['num_modes']:.0f} vs {c32['modes_captured']:.0f}/"
                      f"{c32['num_modes']:.0f}, high-quality share {c16['high_quality']:.3f} vs "
                      f"{c32['high_quality']:.3f}; training time x{s32 / s16:.2f} ({args.quality_steps} steps, MLP)"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--steps", type=int, default=3, help="train steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per variant")
    parser.add_argument("--quality-steps", type=int, default=1000, help="training steps of the 2-D quality check")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time torch.compile variants (default: on)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    f32, b16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"matmul 2048^2, {args.threads} thread(s): fp32 {f32:.1f} GFLOP/s, bf16 {b16:.1f} GFLOP/s")
    result({"benchmark": f"matmul 2048x2048, bf16 vs fp32 ({args.threads} thread)", "ratio": round(b16 / f32, 3),
            "detail": f"{b16:.1f} vs {f32:.1f} GFLOP/s", "fp32_gflops": f32, "bf16_gflops": b16})
    train_and_sample(args, {"fp32": f32, "bf16": b16})
    quality(args)


if __name__ == "__main__":
    main()
