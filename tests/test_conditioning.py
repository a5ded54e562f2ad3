"""Inpainting (RePaint, Lugmayr et al. 2022) and image-to-image (SDEdit, Meng et al. 2022)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genmodels.data.dataset import DataSpec
from genmodels.data.image_inputs import named_mask, read_images, read_mask
from genmodels.diffusion.conditioning import repaint, repaint_schedule, sdedit, sdedit_t0, truncated_schedule
from genmodels.diffusion.gaussian import q_sample
from genmodels.diffusion.samplers import ancestral, ddim
from genmodels.diffusion.schedule import NoiseSchedule
from genmodels.errors import ConfigError, DataError
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions

T = 30
SHAPE = (1, 8, 8)
TINY_IMAGE = dict(T=T, channels=8, channel_mults=[1, 2], attention_resolutions=[4], num_res_blocks=1)


def toy_denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, non-trivial eps_theta(x_t, t): depends on x_t, on t and mixes pixels."""
    w = t.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1))) / T
    return 0.5 * torch.tanh(x) * w + 0.1 * x.roll(1, dims=-1)


def images(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *SHAPE), generator=g) * 2 - 1


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


def test_repaint_schedule_is_algorithm_1_for_j_1_and_jumps_j_steps():
    assert repaint_schedule(3, 1, 2) == [3, 2, 3, 2, 1, 2, 1, 0]      # U = 2 resamplings per step, none at t = 1
    assert repaint_schedule(5, 1, 1) == [5, 4, 3, 2, 1, 0]
    s = repaint_schedule(10, 3, 3)
    assert s[0] == 10 and s[-1] == 0 and max(s) == 10
    assert all(abs(a - b) == 1 for a, b in itertools.pairwise(s))
    downs = sum(b == a - 1 for a, b in itertools.pairwise(s))
    assert downs == 10 + 2 * 2 * 3                                      # positions 3, 6; 2 jumps of 3 each
    with pytest.raises(ConfigError):
        repaint_schedule(10, 0, 2)


def test_repaint_schedule_positions():
    # positions t = 3, 6 (t + j <= 10), r - 1 = 2 jumps of 3 steps each
    s = repaint_schedule(10, 3, 3)
    ups = [a for a, b in itertools.pairwise(s) if b == a + 1]
    assert sorted(set(ups)) == [3, 4, 5, 6, 7, 8] and len(ups) == 2 * 2 * 3


@pytest.mark.parametrize("steps", [None, 7])
def test_repaint_all_zero_mask_r1_j1_is_ancestral_draw_for_draw(steps):
    sched = NoiseSchedule.named("linear", T)
    x_T = torch.randn((3, *SHAPE), generator=gen(5))
    plain = ancestral(toy_denoiser, x_T, sched, steps=steps, generator=gen(7), clip_x0=True)
    mask = torch.zeros(1, 1, 8, 8)
    inpainted = repaint(toy_denoiser, x_T, sched, images(3), mask, steps=steps, generator=gen(7), clip_x0=True,
                        jump_length=1, resample=1)
    assert torch.equal(plain, inpainted)


def test_repaint_keeps_the_known_pixels_exactly_and_fills_the_rest():
    sched = NoiseSchedule.named("linear", T)
    x0 = images(4)
    mask = named_mask("fill-centre", 8, 8)
    x_T = torch.randn(x0.shape, generator=gen(2))
    out = repaint(toy_denoiser, x_T, sched, x0, mask, generator=gen(3), jump_length=3, resample=2)
    keep = mask.bool().expand_as(x0)
    assert torch.equal(out[keep], x0[keep])
    assert (out[~keep] - x0[~keep]).abs().mean() > 0.05
    again = repaint(toy_denoiser, x_T, sched, x0, mask, generator=gen(3), jump_length=3, resample=2)
    assert torch.equal(out, again)                                     # explicit generator: reproducible
    other = repaint(toy_denoiser, x_T, sched, x0, mask, generator=gen(3), jump_length=3, resample=1)
    assert not torch.equal(out, other)                                 # resampling changes the fill


def test_truncated_schedule_keeps_abar():
    sched = NoiseSchedule.named("cosine", T)
    sub = truncated_schedule(sched, 12)
    assert sub.T == 12 and torch.equal(sub.alpha_bar, sched.alpha_bar[:12])
    assert torch.equal(sub.posterior_coef_x0, sched.posterior_coef_x0[:12])
    assert truncated_schedule(sched, T) is sched


def test_sdedit_strength_0_returns_the_input_and_1_is_sampling_from_q_x_T():
    sched = NoiseSchedule.named("linear", T)
    x0 = images(3)
    assert torch.equal(sdedit(ancestral, toy_denoiser, x0, sched, 0.0, generator=gen(1)), x0)
    assert sdedit_t0(sched, 0.01) == 0 and sdedit_t0(sched, 0.5) == 15 and sdedit_t0(sched, 1.0) == T
    out = sdedit(ddim, toy_denoiser, x0, sched, 1.0, steps=10, generator=gen(4))
    g = gen(4)
    x_T = q_sample(sched, x0, torch.full((3,), T), torch.randn(x0.shape, generator=g))
    assert torch.equal(out, ddim(toy_denoiser, x_T, sched, steps=10, generator=g))
    half = sdedit(ancestral, toy_denoiser, x0, sched, 0.5, generator=gen(4))
    g = gen(4)
    x_15 = q_sample(sched, x0, torch.full((3,), 15), torch.randn(x0.shape, generator=g))
    assert torch.equal(half, ancestral(toy_denoiser, x_15, truncated_schedule(sched, 15), generator=g))
    with pytest.raises(ConfigError, match="strength"):
        sdedit(ancestral, toy_denoiser, x0, sched, 1.5)


def tiny_model(kind="image"):
    if kind == "image":
        return DDPM(DDPMConfig(**TINY_IMAGE), DataSpec("image", SHAPE))
    return DDPM(DDPMConfig(T=T, mlp_width=16, mlp_depth=1), DataSpec("points", (2,)))


def test_model_inpaint_and_img2img(one_thread):
    model = tiny_model()
    x0 = images(2)
    mask = read_mask("fill-right", SHAPE)
    out = model.inpaint(x0, mask, generator=gen(0), jump_length=2, resample=2, options=DDPMSampleOptions(steps=8))
    keep = mask.bool().expand_as(x0)
    assert out.shape == x0.shape and torch.equal(out[keep], x0[keep]) and not torch.equal(out[~keep], x0[~keep])
    assert torch.equal(model.img2img(x0, 0.0, generator=gen(0)), x0)
    edited = model.img2img(x0, 0.6, generator=gen(0), options=DDPMSampleOptions(sampler="dpm++", steps=5))
    assert edited.shape == x0.shape and edited.abs().max() <= 1


def test_model_inputs_are_validated(one_thread):
    model = tiny_model()
    x0 = images(2)
    with pytest.raises(DataError, match="mask must have shape"):
        model.inpaint(x0, torch.ones(1, 1, 4, 4))
    with pytest.raises(DataError, match="only 0"):
        model.inpaint(x0, torch.full((1, 1, 8, 8), 0.5))
    with pytest.raises(DataError, match="known images must have shape"):
        model.inpaint(torch.zeros(2, 3, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(DataError, match=r"\[-1, 1\]"):
        model.inpaint(x0 * 3, torch.ones(1, 1, 8, 8))
    with pytest.raises(ConfigError, match="ancestral"):
        model.inpaint(x0, torch.ones(1, 1, 8, 8), options=DDPMSampleOptions(sampler="ddim"))
    with pytest.raises(DataError, match="images must have shape"):
        model.img2img(torch.zeros(2, 1, 4, 4), 0.5)
    with pytest.raises(ConfigError, match="points"):
        tiny_model("points").img2img(torch.zeros(2, 2), 0.5)


def test_image_and_mask_files(tmp_path):
    from PIL import Image

    a = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    Image.fromarray(a).save(tmp_path / "x.png")
    x = read_images(tmp_path / "x.png", SHAPE)
    assert x.shape == (1, 1, 8, 8) and torch.allclose(x[0, 0], torch.from_numpy(a).float() / 127.5 - 1)
    np.save(tmp_path / "batch.npy", np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32))
    assert read_images(tmp_path / "batch.npy", SHAPE).shape == (5, 1, 8, 8)
    with pytest.raises(DataError, match="the run's images are 28x28"):
        read_images(tmp_path / "x.png", (1, 28, 28))
    Image.fromarray(np.where(np.arange(64).reshape(8, 8) < 32, 255, 0).astype(np.uint8)).save(tmp_path / "m.png")
    m = read_mask(tmp_path / "m.png", SHAPE)
    assert m.shape == (1, 1, 8, 8) and m[0, 0, :4].eq(1).all() and m[0, 0, 4:].eq(0).all()
    np.save(tmp_path / "bad.npy", np.full((8, 8), 0.5))
    with pytest.raises(DataError, match="only 0"):
        read_mask(tmp_path / "bad.npy", SHAPE)
    with pytest.raises(DataError, match="fill-centre"):
        read_mask("fill-middle", SHAPE)
    with pytest.raises(DataError, match="no such file"):
        read_images(tmp_path / "missing.npy", SHAPE)


@pytest.fixture(scope="module")
def digits_ddpm(tmp_path_factory):
    from genmodels.cli import main

    root = tmp_path_factory.mktemp("cond")
    run = root / "ddpm"
    assert main(["train", "ddpm", "--data", "digits", "--out", str(run), "--steps", "2", "--batch-size", "8",
                 "--threads", "1", "--device", "cpu", "--set", "model.T=20", "--set", "model.channels=8",
                 "--set", "model.channel_mults=[1, 2]", "--set", "model.attention_resolutions=[4]",
                 "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]) == 0
    assert main(["datasets", "digits", "--export", str(root / "held.npy"), "--n", "3"]) == 0
    return root


def test_cli_inpaint_and_init(digits_ddpm, capsys):
    from genmodels.cli import main

    root, run = digits_ddpm, str(digits_ddpm / "ddpm")
    held = np.load(root / "held.npy")
    assert held.shape == (3, 1, 8, 8)
    out = root / "inp.npy"
    assert main(["sample", run, "--inpaint", str(root / "held.npy"), "--mask", "fill-bottom", "--n", "5",
                 "--resample", "2", "--jump-length", "2", "--out", str(out), "--device", "cpu"]) == 0
    x = np.load(out)
    assert x.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(x[:, :, :4], held[[0, 1, 2, 0, 1], :, :4], atol=1e-6)   # repeated to --n, top kept
    assert np.abs(x[:, :, 4:] - held[[0, 1, 2, 0, 1], :, 4:]).mean() > 0.01
    assert main(["sample", run, "--init", str(root / "held.npy"), "--strength", "0", "--out", str(root / "same.npy"),
                 "--device", "cpu"]) == 0
    np.testing.assert_allclose(np.load(root / "same.npy"), held, atol=1e-6)
    assert main(["sample", run, "--init", str(root / "held.npy"), "--strength", "0.5", "--sampler", "ddim",
                 "--steps", "4", "--out", str(root / "sd.png"), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["sample", run, "--inpaint", str(root / "held.npy"), "--out", str(root / "x.png")]) == 2
    assert "--mask" in capsys.readouterr().err
    assert main(["sample", run, "--mask", "fill-top", "--n", "2", "--out", str(root / "x.png")]) == 2
    assert main(["sample", run, "--n", "2", "--strength", "0.3", "--out", str(root / "x.png")]) == 2
