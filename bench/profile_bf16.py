"""Where the time of a DDPM step goes on a CPU: torch.profiler over training steps (forward,
backward, optimiser) and sampling forwards of the default U-Net, in fp32 and bf16 autocast, with the
self time of every operator summed into categories (convolutions, matrix products, group norm,
attention, casts, element-wise, optimiser, other).

    python bench/profile_bf16.py --threads 1                 # the default U-Net (mnist: 28x28x1, batch 64)
    python bench/profile_bf16.py --threads 1 --top 25        # and the 25 most expensive operators

It also times, side by side in this process, the one choice the profile led to: the U-Net's
self-attention (at 7x7, 49 positions) forward and backward through torch's fused attention under bf16
autocast against the same call in fp32 (what `nets/unet.py` runs under CPU autocast).

The shares are what the profiler sees, so its own overhead (a few percent of small operators) is
included in each; compare categories, not totals, with the timed benchmarks of bench/precision.py.
Prints human-readable lines and `RESULT {json}` lines; `python -m bench` does not run it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from genmodels.data.dataset import DataSpec
from genmodels.models.ddpm import DDPM, DDPMConfig
from genmodels.training.context import TrainContext

# operator name fragments -> category, first match wins (names as torch.profiler reports them)
CATEGORIES = (
    ("attention", ("scaled_dot_product", "_softmax", "softmax", "bmm", "baddbmm")),
    ("convolution", ("conv", "mkldnn_convolution")),
    ("matmul", ("addmm", "aten::mm", "matmul", "linear")),
    ("group norm", ("group_norm", "native_group_norm")),
    ("cast", ("aten::to", "_to_copy", "copy_", "contiguous", "clone")),
    ("optimiser", ("_foreach", "lerp", "addcdiv", "addcmul", "sqrt", "adam", "optimizer")),
    ("element-wise", ("add", "mul", "silu", "sigmoid", "sub", "div", "exp", "sin", "cos", "neg", "pow", "mean",
                      "sum", "cat", "where", "clamp", "fill", "zero", "rsub", "square", "gelu", "threshold")),
)


def category(name: str) -> str:
    low = name.lower()
    for label, keys in CATEGORIES:
        if any(k in low for k in keys):
            return label
    return "other"


def profile_fn(fn, reps: int) -> tuple[dict[str, float], list[tuple[str, float]], float]:
    """({category: self CPU seconds}, [(operator, self seconds)] sorted, total seconds) over reps calls."""
    fn()                                           # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            fn()
    by_cat: dict[str, float] = defaultdict(float)
    ops = []
    for event in prof.key_averages():
        if event.self_cpu_time_total <= 0:
            continue
        seconds = event.self_cpu_time_total / 1e6 / reps
        by_cat[category(event.key)] += seconds
        ops.append((event.key, seconds))
    ops.sort(key=lambda kv: -kv[1])
    return dict(by_cat), ops, sum(by_cat.values())


def attention_ab(batch: int, channels: int, positions: int = 49, blocks: int = 5, reps: int = 10) -> dict:
    """Median seconds per forward + backward of scaled_dot_product_attention, bf16 against fp32 inputs,
    both called under CPU bf16 autocast, in alternating blocks."""
    gen = torch.Generator().manual_seed(0)
    qkv = [torch.randn(batch, 1, positions, channels, generator=gen, requires_grad=True) for _ in range(3)]

    def call(dtype: torch.dtype) -> None:
        with torch.autocast("cpu", torch.bfloat16):
            with torch.autocast("cpu", enabled=dtype == torch.bfloat16):
                out = torch.nn.functional.scaled_dot_product_attention(*(t.to(dtype) for t in qkv))
        out.float().sum().backward()

    times: dict[str, list[float]] = {"bf16": [], "fp32": []}
    for _, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        call(dtype)
    for _ in range(blocks):
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            start = time.perf_counter()
            for _ in range(reps):
                call(dtype)
            times[name].append((time.perf_counter() - start) / reps)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5, help="profiled calls of each (after one warm-up)")
    parser.add_argument("--top", type=int, default=12, help="operators listed per profile")
    parser.add_argument("--channels", type=int, default=0, help="U-Net base channels (0 = the default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = DDPMConfig() if not args.channels else DDPMConfig(channels=args.channels)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=gen) * 2 - 1
    y = torch.full((args.batch,), -1)
    t = torch.randint(1, 1001, (args.batch,), generator=gen)
    unet = DDPM(config, DataSpec("image", (1, 28, 28))).net
    attention_channels = [m.qkv.in_channels for m in unet.modules() if type(m).__name__ == "SelfAttention"]
    for c in sorted(set(attention_channels)):
        ab = attention_ab(args.batch, c)
        print(f"self-attention at 7x7 ({c} channels, batch {args.batch}), forward + backward under bf16 autocast: "
              f"bf16 {ab['bf16'] * 1e3:.2f} ms, fp32 {ab['fp32'] * 1e3:.2f} ms "
              f"(fp32 x{ab['bf16'] / ab['fp32']:.2f} faster)")
        print("RESULT " + json.dumps({"benchmark": "U-Net self-attention fwd+bwd under CPU bf16 autocast, "
                                                   f"fp32 vs bf16 ({args.threads} thread)",
                                      "ratio": round(ab["bf16"] / ab["fp32"], 3),
                                      "detail": f"{ab['fp32'] * 1e3:.2f} vs {ab['bf16'] * 1e3:.2f} ms "
                                                f"(batch {args.batch}, 49 positions, {c} channels)"}))
    for precision in ("fp32", "bf16"):
        model = DDPM(config, DataSpec("image", (1, 28, 28)))
        ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(1),
                           precision=precision, grad_clip=1.0, next_batch=lambda: (x, y))
        denoise = model.eps_fn(None, 1.0)

        def train(model=model, ctx=ctx):
            model.train_step((x, y), ctx)

        def forward(ctx=ctx, denoise=denoise):
            with torch.inference_mode(), ctx.autocast():
                denoise(x, t)

        for what, fn in (("train step", train), ("sampling forward", forward)):
            cats, ops, total = profile_fn(fn, args.reps)
            print(f"\n{precision} {what} (batch {args.batch}, {args.threads} thread(s)): {total * 1e3:.1f} ms "
                  f"of operator self time per call")
            for label, seconds in sorted(cats.items(), key=lambda kv: -kv[1]):
                print(f"  {label:14s} {seconds * 1e3:8.2f} ms  {seconds / total:6.1%}")
            for name, seconds in ops[: args.top]:
                print(f"    {name:44s} {seconds * 1e3:8.2f} ms  {seconds / total:6.1%}")
            print("RESULT " + json.dumps({"profile": f"{precision} {what}", "batch": args.batch,
                                          "threads": args.threads, "ms": round(total * 1e3, 2),
                                          "share": {k: round(v / total, 4) for k, v in cats.items()}}))


if __name__ == "__main__":
    main()
