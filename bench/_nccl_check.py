"""NCCL through genmodels' data-parallel collectives, for bench/gpu_check.sh (not a benchmark):

    torchrun --standalone --nproc_per_node N bench/_nccl_check.py        (N >= 1, one CUDA GPU per process)

genmodels joins a process group only when WORLD_SIZE > 1, so a one-process `genmodels train` under
torchrun never reaches NCCL. This joins the group that `genmodels.training.distributed.setup` joins
on GPUs (NCCL for CUDA tensors, paired with gloo for CPU ones) whatever N is, and runs through it
what a data-parallel step does: the broadcast of rank 0's weights, the gradient all-reduce in
buckets overlapped with the backward pass (two steps: the second uses the buckets rebuilt in
arrival order), as one flat all-reduce and as bf16 buckets, the averaged logged values and the
stop flag over gloo. Every rank computes the same loss, so the averaged gradients must equal the
local ones. Prints one "NCCL check ok" line (rank 0) and exits 0, or fails with a traceback.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from genmodels.nets.unet import UNet
from genmodels.training.distributed import any_rank, average_values, broadcast_modules, flag_device
from genmodels.training.grad_buckets import GradientBuckets


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1).float() for t in tensors])


def nccl_version() -> str:
    v = torch.cuda.nccl.version()
    return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("NCCL check: torch sees no CUDA GPU")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    dist.init_process_group("cpu:gloo,cuda:nccl")
    world = dist.get_world_size()
    try:
        g = torch.Generator(device=device).manual_seed(0)
        net = UNet(channels=16, channel_mults=(1, 2), num_res_blocks=1, dropout=0.0).to(device)
        with torch.no_grad():
            # the output convolution starts at zero, which would leave every other gradient zero
            net.out[-1].weight.normal_(0.0, 0.02, generator=g)
            for p in net.parameters():               # a different start on each rank: broadcast must fix it
                p.add_(rank)
        broadcast_modules({"net": net})
        params = list(net.parameters())
        sums = [torch.zeros(1, device=device) for _ in range(world)]
        dist.all_gather(sums, flat(params).sum().reshape(1))
        assert all(torch.equal(s, sums[0]) for s in sums), f"weights differ after the broadcast: {sums}"

        x = torch.randn(8, 1, 28, 28, generator=g, device=device)
        t = torch.randint(1, 1000, (8,), generator=g, device=device).float()

        def loss_of() -> torch.Tensor:
            return net(x, t).float().pow(2).mean()

        net.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        local = flat(p.grad for p in params).clone()
        assert local.abs().sum() > 0
        errors = {}
        for name, bucket_mb, compression, tol in (("buckets", 0.25, "none", 1e-4), ("flat", 0.0, "none", 1e-4),
                                                  ("bf16 buckets", 0.25, "bf16", 2e-2)):
            buckets = GradientBuckets(world, bucket_mb, compression)
            for _ in range(2):
                net.zero_grad(set_to_none=True)
                loss = loss_of()
                buckets.arm(("probe",), params, ~torch.isfinite(loss))
                loss.backward()
                assert not bool(buckets.finish()), "a rank's loss was reported not finite"
                err = ((flat(p.grad for p in params) - local).norm() / local.norm()).item()
                assert err < tol, f"{name}: averaged gradients differ from the local ones by {err:.2e}"
                errors[name] = err
            buckets.close()
        mean = average_values({"loss": loss.detach()}, world, device)["loss"]
        assert abs(mean - loss.item()) <= 1e-6 * max(1.0, abs(mean)), (mean, loss.item())
        assert flag_device(device).type == "cpu", dist.get_backend()
        assert not any_rank(False, device) and any_rank(rank == 0, device)
        if rank == 0:
            print(f"NCCL check ok: {world} process(es) on {torch.cuda.get_device_name(device)}, backend "
                  f"{dist.get_backend()}, NCCL {nccl_version()}; averaged "
                  f"gradients vs local (relative): " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
