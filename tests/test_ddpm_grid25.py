"""2-D quality run: a DDPM with the MLP denoiser trained on grid25 (25 Gaussians, std 0.05) on a
CPU covers all 25 modes (PacGAN criterion: >= 20 of 2,500 samples within 3 std of each mode)."""

import time

import pytest
import torch
from conftest import FakeContext

from genmodels.data.load import load
from genmodels.metrics.modes import mode_coverage
from genmodels.models.ddpm import DDPM, DDPMConfig, DDPMSampleOptions
from genmodels.viz import save_scatter


@pytest.mark.slow
def test_grid25_all_modes_covered(tmp_path, one_thread):
    data = load("grid25")
    model = DDPM(DDPMConfig(variance="beta_tilde", lr=2e-3), data.spec)
    steps, batch = 4000, 256
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(model.opt, steps)
    ctx, g = FakeContext(), torch.Generator().manual_seed(1)
    start = time.time()
    for step in range(steps):
        ctx.step = step
        idx = torch.randint(0, len(data.x), (batch,), generator=g)
        model.train_step((data.x[idx], data.y[idx]), ctx)
        decay.step()
    train_s = time.time() - start
    samples = model.sample(2500, DDPMSampleOptions(sampler="dpm++", steps=25),
                           generator=torch.Generator().manual_seed(2))
    cov = mode_coverage(samples, data.modes, data.mode_std)
    print(f"grid25: trained {steps} steps in {train_s:.0f} s; dpm++-25 samples: {cov}")
    save_scatter(samples, tmp_path / "grid25.png", reference=data.x[:2500], modes=data.modes)
    assert cov["modes_captured"] == 25
    assert cov["high_quality"] > 0.5
