"""Training throughput of the library's GAN step against a plain PyTorch-GAN-style loop.

Both sides run Algorithm 2.1 with k = 1 and the non-saturating loss on the same DCGAN nets
(28x28, one channel), the same batch and the same Adam settings:

    reference (written out as in eriklindernoren/PyTorch-GAN's dcgan.py, with logits):
        z ~ N(0, I); fake = G(z).detach()
        loss_D = BCE(D(x), 1) + BCE(D(fake), 0); opt_D step
        z ~ N(0, I)   (Algorithm 2.1 step 7: fresh noise)
        loss_G = BCE(D(G(z)), 1); opt_G step
    library: GAN.train_step(batch, ctx) with the trainer's TrainContext (fp32, no clipping).

Blocks of steps alternate between the two so that background load hits both alike; the
median images/s of each is reported and the overhead is 1 - library / reference.

    python bench/gan_overhead.py --steps 20 --blocks 5 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from genmodels.data.dataset import DataSpec
from genmodels.models.gan import GAN, GANConfig
from genmodels.training.context import TrainContext


def reference_step(G, D, opt_G, opt_D, x, z_dim, generator):
    """One iteration of the plain loop (the PyTorch-GAN style, with logits)."""
    m = x.shape[0]
    z = torch.randn(m, z_dim, generator=generator)
    fake = G(z).detach()
    real_logits, fake_logits = D(x), D(fake)
    loss_D = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    opt_D.step()
    z = torch.randn(m, z_dim, generator=generator)
    gen_logits = D(G(z))
    loss_G = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    return float(loss_D.detach()), float(loss_G.detach())      # the reference logs its losses too


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per side (alternating)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="DCGAN base width")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = DataSpec("image", (1, 28, 28))
    config = GANConfig(betas="dcgan", dcgan_width=args.width)
    model = GAN(config, spec)
    G_ref, D_ref = model.G.__class__(config.z_dim, 1, 28, args.width), model.D.__class__(1, 28, args.width)
    G_ref.load_state_dict(model.G.state_dict())
    D_ref.load_state_dict(model.D.state_dict())
    opt_G = torch.optim.Adam(G_ref.parameters(), lr=config.lr_g, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D_ref.parameters(), lr=config.lr_d, betas=(0.5, 0.999))

    data_gen = torch.Generator().manual_seed(0)
    batches = [(torch.rand(args.batch_size, 1, 28, 28, generator=data_gen) * 2 - 1,
                torch.full((args.batch_size,), -1)) for _ in range(8)]
    it = iter(range(10 ** 9))

    def next_batch():
        return batches[next(it) % len(batches)]

    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(1), precision="fp32",
                       grad_clip=0.0, next_batch=next_batch)
    ref_gen = torch.Generator().manual_seed(1)

    def run_library(n):
        for _ in range(n):
            model.train_step(next_batch(), ctx)

    def run_reference(n):
        for _ in range(n):
            reference_step(G_ref, D_ref, opt_G, opt_D, next_batch()[0], config.z_dim, ref_gen)

    run_library(2)                    # warm-up
    run_reference(2)
    rates = {"library": [], "reference": []}
    for _ in range(args.blocks):
        for name, fn in (("reference", run_reference), ("library", run_library)):
            t = time.perf_counter()
            fn(args.steps)
            rates[name].append(args.steps * args.batch_size / (time.perf_counter() - t))
    lib, ref = statistics.median(rates["library"]), statistics.median(rates["reference"])
    print(f"DCGAN 28x28, batch {args.batch_size}, width {args.width}, threads {torch.get_num_threads()}, "
          f"{args.blocks} blocks of {args.steps} steps per side")
    print(f"reference loop: {ref:8.1f} images/s  (blocks: {', '.join(f'{r:.1f}' for r in rates['reference'])})")
    print(f"genmodels GAN : {lib:8.1f} images/s  (blocks: {', '.join(f'{r:.1f}' for r in rates['library'])})")
    print(f"overhead      : {100 * (1 - lib / ref):+.1f}%")


if __name__ == "__main__":
    main()
