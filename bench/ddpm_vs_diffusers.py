"""DDPM throughput against HuggingFace diffusers (UNet2DModel + DDPMScheduler) at a matched U-Net
on 28x28x1 images, measured in one process on one machine, as ratios.

  train    images/s of one training step of Algorithm 4.1 (batch 64, Adam): genmodels'
           `DDPM.train_step` vs a plain diffusers loop (scheduler.add_noise, UNet2DModel, MSE)
  sample   images/s of ancestral sampling with the same number of respaced steps (default 50 of
           T = 1000): genmodels' `ancestral` vs `DDPMScheduler.step`
  gflops   the genmodels training step's achieved GFLOP/s (FLOPs counted by torch's
           FlopCounterMode) against the machine's measured matmul peak in the same precision
           (2048 x 2048 on the CPU, 8192 x 8192 on a GPU)
  samplers wall time per image of ancestral-1000, DDIM-50 and DPM-Solver++-20 with the same network

The matched networks: genmodels UNet(channels=32, mults 1,2,2, one residual block per level,
attention at 7x7, one head) and UNet2DModel(block_out_channels=(32, 64, 64), layers_per_block=1,
DownBlock2D, DownBlock2D, AttnDownBlock2D / AttnUpBlock2D, UpBlock2D, UpBlock2D, 8 groups);
parameter counts are printed. Blocks of the two implementations alternate so that background
load hits both alike; the median block is reported.

--device cuda puts both sides' networks, data and generators on the GPU, with CUDA autocast for
bf16 (torch's defaults otherwise: TF32 convolutions, fp32 matmuls), and reads every timer after
torch.cuda.synchronize(). bench/gpu_check.sh runs it that way.

diffusers lives only in the benchmark's environment bench/.env (a venv created with
--system-site-packages, so the installed torch is reused; diffusers does not require torch):

    python bench/ddpm_vs_diffusers.py --setup     # create bench/.env and pip install diffusers==0.42.1
    python bench/ddpm_vs_diffusers.py             # re-executes itself under bench/.env
    python bench/ddpm_vs_diffusers.py --device cuda --blocks 3 --train-steps 20
Prints human-readable lines and `RESULT {json}` rows for `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV_PYTHON = HERE / ".env" / "bin" / "python"
DIFFUSERS = "diffusers==0.42.1"


def setup() -> None:
    """Create bench/.env (reusing the system torch) and install the pinned diffusers into it."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(HERE / ".env")], check=True)
    subprocess.run([str(ENV_PYTHON), "-m", "pip", "install", DIFFUSERS], check=True)


def ensure_diffusers() -> None:
    """Re-execute under bench/.env when diffusers is not importable here."""
    try:
        import diffusers  # noqa: F401
    except ImportError:
        if ENV_PYTHON.exists() and Path(sys.prefix).resolve() != (HERE / ".env").resolve():
            os.execv(str(ENV_PYTHON), [str(ENV_PYTHON), *sys.argv])
        sys.exit(f"diffusers is not installed; run: python {Path(__file__).name} --setup")


def result(row: dict) -> None:
    print("RESULT " + json.dumps(row), flush=True)


def no_sync() -> None:
    """The CPU's clock needs no waiting: its work is done when a call returns."""


def synchronizer(device):
    """What to call before reading a timer: torch.cuda.synchronize on a GPU (kernels run
    asynchronously), nothing on the CPU."""
    import torch

    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else no_sync


def median_alternating(fns: dict, blocks: int, sync=no_sync) -> dict[str, float]:
    """Seconds per call of each function, alternating blocks; the median over blocks."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_gflops(n: int = 2048, reps: int = 5, dtype=None, device=None) -> float:
    import torch

    device = torch.device(device or "cpu")
    sync = synchronizer(device)
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    sync()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", action="store_true", help="create bench/.env with diffusers and exit")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--blocks", type=int, default=5, help="alternating measurement blocks")
    p.add_argument("--train-steps", type=int, default=3, help="training steps per block")
    p.add_argument("--sample-steps", type=int, default=50, help="respaced ancestral steps per sampling call")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: both sides' training forward and sampling under bf16 autocast")
    p.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda[:N]: both sides' networks, data, generators and autocast there")
    args = p.parse_args(argv)
    if args.setup:
        setup()
        return
    ensure_diffusers()
    import contextlib

    import torch
    from diffusers import DDPMScheduler, UNet2DModel
    from torch.utils.flop_counter import FlopCounterMode

    from genmodels.data.dataset import DataSpec
    from genmodels.diffusion.samplers import ancestral, ddim, dpm_solver_pp_2m
    from genmodels.models.ddpm import DDPM, DDPMConfig
    from genmodels.training.context import TrainContext
    from genmodels.training.health import Health

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        sys.exit(f"--device {args.device}: this benchmark runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: torch sees no CUDA GPU here")
    sync = synchronizer(device)
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    B = args.batch
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(B, 1, 28, 28, generator=gen, device=device) * 2 - 1
    y = torch.full((B,), -1, device=device)
    ours = DDPM(DDPMConfig(channels=32, channel_mults=[1, 2, 2], num_res_blocks=1, attention_resolutions=[7],
                           dropout=0.0), DataSpec("image", (1, 28, 28)), device)
    theirs = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=1,
                         block_out_channels=(32, 64, 64), norm_num_groups=8, attention_head_dim=64,
                         down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                         up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")).to(device)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                          clip_sample=False, variance_type="fixed_large")
    n_ours = sum(p.numel() for p in ours.net.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    print(f"parameters: genmodels U-Net {n_ours:,}; diffusers UNet2DModel {n_theirs:,}")

    bf16 = args.precision == "bf16"

    def autocast():
        return torch.autocast(device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()

    # on a GPU, the trainer's way: the NaN/inf checks stay on the device until a read point (none
    # here), where a context without `health` would read them back after every step
    health = Health(device) if device.type == "cuda" else None
    ctx = TrainContext(device=device, generator=torch.Generator(device=device).manual_seed(1),
                       precision=args.precision, grad_clip=0.0, next_batch=lambda: (x, y), health=health)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=2e-4)
    g2 = torch.Generator(device=device).manual_seed(2)

    def train_ours():
        for _ in range(args.train_steps):
            ours.train_step((x, y), ctx)

    def train_theirs():
        theirs.train()
        for _ in range(args.train_steps):
            t = torch.randint(0, 1000, (B,), generator=g2, device=device)
            noise = torch.randn(x.shape, generator=g2, device=device)
            with autocast():
                out = theirs(sched.add_noise(x, noise, t), t).sample
            loss = torch.nn.functional.mse_loss(out.float(), noise)
            opt_theirs.zero_grad(set_to_none=True)
            loss.backward()
            opt_theirs.step()

    train_ours(), train_theirs()  # warm-up
    tt = median_alternating({"ours": train_ours, "theirs": train_theirs}, args.blocks, sync)
    ips_ours, ips_theirs = B * args.train_steps / tt["ours"], B * args.train_steps / tt["theirs"]
    print(f"train: genmodels {ips_ours:.1f} images/s, diffusers {ips_theirs:.1f} images/s")
    on = "" if device.type == "cpu" else f"{device.type} "       # the CPU rows keep their names
    tag = "".join(f", {part}" for part in ([device.type] if on else []) + ([args.precision] if bf16 else []))
    result({"benchmark": f"DDPM training images/s, genmodels / diffusers (matched U-Net, 28x28, batch {B}{tag})",
            "ratio": round(ips_ours / ips_theirs, 3),
            "detail": f"{ips_ours:.1f} vs {ips_theirs:.1f} images/s; params {n_ours:,} vs {n_theirs:,}"})

    with FlopCounterMode(display=False) as counter:
        ours.train_step((x, y), ctx)
    flops_per_step = counter.get_total_flops()
    n_peak = 2048 if device.type == "cpu" else 8192          # a GPU needs a larger product to reach its peak
    peak = matmul_gflops(n_peak, dtype=torch.bfloat16 if bf16 else torch.float32, device=device)
    size = "" if device.type == "cpu" else f" ({n_peak} x {n_peak})"
    achieved = flops_per_step * ips_ours / B / 1e9
    print(f"genmodels training: {flops_per_step / B / 1e6:.1f} MFLOP per image, {achieved:.1f} GFLOP/s; "
          f"measured {on}{args.precision} matmul peak{size} {peak:.1f} GFLOP/s")
    result({"benchmark": f"DDPM training achieved GFLOP/s / measured {on}{args.precision} matmul peak",
            "ratio": round(achieved / peak, 3), "detail": f"{achieved:.1f} of {peak:.1f} GFLOP/s{size}"})

    K = args.sample_steps
    ours.net.eval()
    theirs.eval()
    eps_ours = ours.eps_fn()

    @torch.inference_mode()
    def sample_ours():
        with autocast():
            ancestral(eps_ours, torch.randn(x.shape, generator=g2, device=device), ours.sched, steps=K,
                      generator=g2)

    @torch.inference_mode()
    def sample_theirs():
        sched.set_timesteps(K)
        xt = torch.randn(x.shape, generator=g2, device=device)
        with autocast():
            for t in sched.timesteps:
                xt = sched.step(theirs(xt, t).sample.float(), t, xt, generator=g2).prev_sample

    sample_ours(), sample_theirs()
    ts = median_alternating({"ours": sample_ours, "theirs": sample_theirs}, args.blocks, sync)
    s_ours, s_theirs = B / ts["ours"], B / ts["theirs"]
    print(f"sample ({K} ancestral steps): genmodels {s_ours:.2f} images/s, diffusers {s_theirs:.2f} images/s")
    result({"benchmark": f"DDPM ancestral sampling images/s ({K} respaced steps{tag}), genmodels / diffusers",
            "ratio": round(s_ours / s_theirs, 3), "detail": f"{s_ours:.2f} vs {s_theirs:.2f} images/s"})

    per_eval = ts["ours"] / K / B
    samplers = {"ancestral": (ancestral, 1000), "DDIM": (ddim, 50), "DPM-Solver++(2M)": (dpm_solver_pp_2m, 20)}
    small = torch.randn(8, 1, 28, 28, generator=g2, device=device)

    def timed(fn, steps):
        def run():
            with torch.inference_mode(), autocast():
                fn(eps_ours, small, ours.sched, steps=min(steps, 50), generator=g2)
        return run

    # seconds per image at batch 8, blocks of the three samplers alternating; ancestral-1000 is
    # extrapolated from 50 of its steps (its cost is linear in the steps)
    tsamp = median_alternating({name: timed(fn, steps) for name, (fn, steps) in samplers.items()}, args.blocks,
                               sync)
    for name, (_, steps) in samplers.items():
        sec = tsamp[name] / min(steps, 50) * steps / 8
        print(f"{name}-{steps}: {sec:.3f} s per image (batch 8, median of {args.blocks} alternating blocks"
              + ("; extrapolated from 50 steps)" if steps > 50 else ")"))
        result({"benchmark": f"{name}-{steps} seconds per image (same U-Net{tag})", "ratio": round(sec, 4),
                "detail": f"{steps} network evaluations at batch 8; {per_eval * 1000:.2f} ms per image-evaluation "
                          f"at batch {B}"})

if __name__ == "__main__":
    main()
