"""Every family's per-example noise under data parallelism and accumulation: W slices of B/W examples
see exactly the noise one process draws for the B examples (tests/test_distributed.py checks the
resulting weights for DDPM and the GAN; this checks the draws themselves, for every family).

Each family's real train_step runs once on the whole batch and once per slice (rank r of W, with
`GlobalBatchRandomness`, as the trainer runs it for W processes or W micro-batches); every draw
from ctx.generator is recorded. A per-example draw (example index first) of the slices must
concatenate to the whole batch's; any other draw must be the same everywhere."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.overrides import TorchFunctionMode

from genmodels.config import RunConfig
from genmodels.data import load
from genmodels.run.load import build_model
from genmodels.run.seeds import make_generator
from genmodels.training.context import TrainContext
from genmodels.training.data_stream import DataStream
from genmodels.training.global_batch import GlobalBatchRandomness

B = 16
FAMILIES = {
    # diffusion times and noise, label dropout (class-conditional)
    "ddpm": ("digits", ["model.channels=8", "model.channel_mults=1", "model.attention_resolutions=[]", "model.T=50",
                        "model.class_conditional=true", "model.p_uncond=0.5"]),
    # latents and WGAN-GP mixing weights over k = 2 discriminator steps (fresh minibatches)
    "gan": ("moons", ["model.mlp_width=16", "model.mlp_depth=2", "model.z_dim=3", "model.k=2",
                      "model.loss=wasserstein", "model.g_batchnorm=false"]),
    # latents and categorical and continuous codes
    "infogan": ("digits", ["model.arch=mlp", "model.mlp_width=16", "model.mlp_depth=2", "model.z_dim=4",
                           "model.categorical=[3]", "model.continuous=2", "model.q_hidden=8"]),
    # dynamic binarisation and the reparameterisation noise
    "vae": ("digits", ["model.net=mlp", "model.hidden=[16]", "model.latent_dim=2", "model.decoder=bernoulli",
                       "model.binarize=dynamic"]),
}


class Draws(TorchFunctionMode):
    """Records the result of every call that draws from `generator`."""

    def __init__(self, generator: torch.Generator):
        super().__init__()
        self.generator, self.draws = generator, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if kwargs.get("generator", None) is self.generator:
            self.draws.append(out.detach().clone())
        return out


def draws_of(family: str, rank: int, world: int) -> list[torch.Tensor]:
    """The draws of one train_step of `family` on slice `rank` of `world` of a batch of B."""
    data_name, overrides = FAMILIES[family]
    data = load(data_name)
    config = RunConfig.default(family).with_overrides([f"data.name={data_name}", *overrides])
    model = build_model(config, data.spec, torch.device("cpu"))
    stream = DataStream(data, B, make_generator(0, "data"), torch.device("cpu"), rank=rank, world_size=world)
    generator = torch.Generator().manual_seed(11)
    ctx = TrainContext(device=torch.device("cpu"), generator=generator, precision="fp32", grad_clip=1.0,
                       next_batch=stream.next)
    slicing = GlobalBatchRandomness(generator, B // world, rank, world) if world > 1 else contextlib.nullcontext()
    with slicing, Draws(generator) as seen:
        model.train_step(stream.next(), ctx)
    return seen.draws


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("family", [
    "ddpm", "gan", "infogan",
    pytest.param("vae", marks=pytest.mark.xfail(strict=True, reason=(
        "the VAE's reparameterisation noise is drawn (k, N, L), draws first: no rank keeps its slice "
        "(models/vae/elbo.py; drawing (N, k, L) and transposing would fix it)")))])
def test_slices_see_the_noise_of_the_whole_batch(family, world):
    whole = draws_of(family, 0, 1)
    parts = [draws_of(family, r, world) for r in range(world)]
    assert all(len(p) == len(whole) for p in parts), (len(whole), [len(p) for p in parts])
    per_example = 0
    for i, draw in enumerate(whole):
        if draw.dim() >= 1 and draw.shape[0] == B:
            per_example += 1
            assert torch.equal(torch.cat([p[i] for p in parts]), draw), (family, i, tuple(draw.shape))
        else:
            assert all(torch.equal(p[i], draw) for p in parts), (family, i, tuple(draw.shape))
    assert per_example >= 2
