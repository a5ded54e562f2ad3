"""Where the time of a DDPM step goes on a CPU: torch.profiler over training steps (forward,
backward, optimiser) and sampling forwards of the default U-Net, in fp32 and bf16 autocast, with the
self time of every operator summed into categories (convolutions, matrix products, group norm,
attention, casts, element-wise, optimiser, other).

    python bench/profile_bf16.py --threads 1                 # the default U-Net (mnist: 28x28x1, batch 64)
    python bench/profile_bf16.py --threads 1 --top 25        # and the 25 most expensive operators
    python bench/profile_bf16.py --threads 1 --precisions fp32 --roofline   # the fp32 path, against its peak

--roofline adds, for the fp32 train step, the floating-point operations of one forward + backward
(torch.utils.flop_counter), the rate they run at (CPU time) against a large fp32 matrix product's
rate in the same process (the practical peak of this CPU on these threads), and the CPU time of the
step with channels-last tensors against the default layout, in alternating blocks.

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
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--roofline", action="store_true", help="fp32 step: FLOP rate against the matmul peak, "
                                                                "and channels-last against the default layout")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = DDPMConfig() if not args.channels else DDPMConfig(channels=args.channels)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=gen) * 2 - 1
    y = torch.full((args.batch,), -1)
    t = torch.randint(1, 1001, (args.batch,), generator=gen)
    unet = DDPM(config, DataSpec("image", (1, 28, 28))).net
    attention_channels = [m.qkv.in_channels for m in unet.modules() if type(m).__name__ == "SelfAttention"]
    precisions = [p for p in args.precisions.split(",") if p]
    if args.roofline:
        roofline(config, x, t, args.threads)
    for c in sorted(set(attention_channels)) if "bf16" in precisions else ():
        ab = attention_ab(args.batch, c)
        print(f"self-attention at 7x7 ({c} channels, batch {args.batch}), forward + backward under bf16 autocast: "
              f"bf16 {ab['bf16'] * 1e3:.2f} ms, fp32 {ab['fp32'] * 1e3:.2f} ms "
              f"(fp32 x{ab['bf16'] / ab['fp32']:.2f} faster)")
        print("RESULT " + json.dumps({"benchmark": "U-Net self-attention fwd+bwd under CPU bf16 autocast, "
                                                   f"fp32 vs bf16 ({args.threads} thread)",
                                      "ratio": round(ab["bf16"] / ab["fp32"], 3),
                                      "detail": f"{ab['fp32'] * 1e3:.2f} vs {ab['bf16'] * 1e3:.2f} ms "
                                                f"(batch {args.batch}, 49 positions, {c} channels)"}))
    for precision in precisions:
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


def roofline(config: DDPMConfig, x: torch.Tensor, t: torch.Tensor, threads: int, blocks: int = 4,
             reps: int = 3) -> None:
    """FLOP rate of the U-Net's fp32 forward + backward against a 1024^3 fp32 matmul, and its CPU time
    with channels-last tensors against the default layout (alternating blocks, medians)."""
    from torch.utils.flop_counter import FlopCounterMode

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    start = time.process_time()
    for _ in range(10):
        a @ b
    peak = 2 * 1024**3 / ((time.process_time() - start) / 10)

    def step_fn(channels_last: bool):
        net = DDPM(config, DataSpec("image", (1, 28, 28))).net
        xx = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), 1e-3)

        def step():
            loss = net(xx, t.float()).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step, net

    fns = {"default": step_fn(False), "channels-last": step_fn(True)}
    with FlopCounterMode(display=False) as counter:
        fns["default"][1](x, t.float()).square().mean().backward()
    flops = counter.get_total_flops()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f, _ in fns.values():
        f()
    for _ in range(blocks):
        for name, (f, _) in fns.items():
            start = time.process_time()
            for _ in range(reps):
                f()
            times[name].append((time.process_time() - start) / reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = flops / med["default"]
    print(f"fp32 train step (batch {len(x)}, {threads} thread(s)): {flops / 1e9:.2f} GFLOP forward + backward, "
          f"{med['default']:.3f} CPU-s, {rate / 1e9:.1f} GFLOP/s = {rate / peak:.0%} of a 1024^3 fp32 matmul's "
          f"{peak / 1e9:.1f} GFLOP/s; channels-last {med['channels-last']:.3f} CPU-s "
          f"(x{med['default'] / med['channels-last']:.2f} the default layout's speed)")
    print("RESULT " + json.dumps({"benchmark": f"fp32 U-Net train step: FLOP rate against matmul peak ({threads} "
                                               "thread)", "gflops": round(flops / 1e9, 2),
                                  "rate_gflops": round(rate / 1e9, 1), "peak_gflops": round(peak / 1e9, 1),
                                  "fraction_of_peak": round(rate / peak, 3),
                                  "channels_last_speed": round(med["default"] / med["channels-last"], 3)}))


if __name__ == "__main__":
    main()
