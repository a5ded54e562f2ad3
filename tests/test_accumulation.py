"""Gradient accumulation (trainer.accumulate = k): k micro-batches of B/k take the same optimiser
step as one batch of B, as W processes of B/W do under torchrun (tests/test_distributed.py);
resume stays bit-identical; a model taking several optimiser steps per training step is refused."""

from __future__ import annotations

import pytest
import torch
from test_distributed import COMMON, DDPM, GAN, assert_close_states, assert_same_logs, state, train_here

from genmodels.errors import ConfigError

STEPS = 4


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch, one_thread):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)


@pytest.mark.parametrize("k", [2, 4])
def test_k_micro_batches_equal_one_batch(tmp_path, k):
    whole, micro = tmp_path / "whole", tmp_path / f"micro{k}"
    train_here([*DDPM, "--out", str(whole), "--steps", str(STEPS), *COMMON])
    train_here([*DDPM, "--out", str(micro), "--steps", str(STEPS), *COMMON, "--set", f"trainer.accumulate={k}"])
    assert_close_states(state(micro), state(whole))
    assert_same_logs(micro, whole)
    # negative control: the same run without accumulation but with a batch of B/k differs
    small = tmp_path / "small"
    argv = [*DDPM, "--out", str(small), "--steps", str(STEPS), *COMMON, "--batch-size", str(16 // k)]
    train_here(argv)
    w_small, w_whole = state(small)["modules"]["denoiser"], state(whole)["modules"]["denoiser"]
    assert max(float((w_small[n] - w_whole[n]).abs().max()) for n in w_whole if w_whole[n].is_floating_point()) > 1e-4


def test_accumulated_run_resumes_bit_identically(tmp_path):
    """Resume from the step-3 checkpoint of a 6-step run (cosine schedule with warm-up, 2 micro-batches)
    and finish: every weight and the learning rate equal the uninterrupted run's."""
    import shutil

    acc = ["--set", "trainer.accumulate=2", "--set", "trainer.lr_schedule=cosine", "--set", "trainer.warmup_steps=2",
           "--set", "trainer.keep_every=3"]
    full, part = tmp_path / "full", tmp_path / "part"
    train_here([*DDPM, "--out", str(full), "--steps", "6", *COMMON, *acc])
    (part / "checkpoints").mkdir(parents=True)
    shutil.copy(full / "config.toml", part / "config.toml")
    shutil.copy(full / "checkpoints" / "step_0000003.pt", part / "checkpoints" / "latest.pt")
    assert state(part)["step"] == 3
    assert main_resume(part) == 0
    a, b = state(full), state(part)
    assert b["step"] == 6
    for name, tensor in a["modules"]["denoiser"].items():
        assert torch.equal(tensor, b["modules"]["denoiser"][name]), name
    lr_a = a["optimizers"]["denoiser"]["param_groups"][0]
    lr_b = b["optimizers"]["denoiser"]["param_groups"][0]
    assert (lr_a["lr"], lr_a["base_lr"]) == (lr_b["lr"], lr_b["base_lr"])


def main_resume(run) -> int:
    from genmodels.cli import main

    return main(["train", "ddpm", "--out", str(run), "--resume", "--no-progress"])


def test_accumulation_refuses_a_model_with_several_optimiser_steps(tmp_path, capsys):
    from genmodels.cli import main

    argv = ["train", *GAN, "--out", str(tmp_path / "gan"), "--steps", "2", *COMMON, "--set", "trainer.accumulate=2"]
    assert main(argv) == 2
    assert "needs a model that takes one optimiser step per training step" in capsys.readouterr().err
    assert not (tmp_path / "gan" / "checkpoints" / "latest.pt").exists()       # no step was taken


def test_batch_must_split_into_micro_batches():
    from genmodels.config import TrainerConfig

    with pytest.raises(ConfigError, match="not divisible by trainer.accumulate"):
        TrainerConfig(batch_size=10, accumulate=4).validate()
