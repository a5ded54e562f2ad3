"""Shared test fixtures, and the one stand-in for the trainer's StepContext (`FakeContext`)."""

from __future__ import annotations

import contextlib
import os

import pytest
import torch

from genmodels.training.hardware import usable_cores

# pytest-xdist runs the suite on W worker processes (`-n auto` in pyproject.toml: one per core).
# Each worker gets cores // W torch threads, and OMP_NUM_THREADS says so to the processes a test
# starts (torchrun ranks, CLI subprocesses): more busy threads than cores spin on each other, and a
# 2-thread step beside another busy process runs 2-2.5x slower than on 1.
MAX_WORKERS = 8   # each worker holds torch and a few data sets in memory


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per usable core (not psutil's count of the host's cores), at most MAX_WORKERS."""
    return min(usable_cores(), MAX_WORKERS)


if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)


@pytest.fixture
def one_thread():
    """Run a test on one torch thread and restore the setting after: small matrices gain nothing
    from intra-op threads, and on a busy machine the threads' spin-waits cost more than the work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def as_floats(logs: dict) -> dict[str, float]:
    """A train_step's logged values as Python floats: models return 0-dim tensors, read only when
    logged (the hot path has no host reads, docs/scaling.md), and pytest.approx takes numbers."""
    return {k: float(v) for k, v in logs.items()}


class FakeContext:
    """The whole StepContext of `genmodels.models.base`, for calling a model's `train_step` without a
    trainer: fp32 (`autocast` is a no-op), plain optimiser steps (no clipping, no grad scaler), one
    process (`global_batch` is the batch itself) and minibatches of `batch_size` drawn at random from
    in-memory data x (and labels y, else -1) by their own generator; without x, `next_batch` is a
    test failure. It records the optimisers stepped (`optimized`) and the minibatches handed out
    (`batches_served`). The trainer's own implementation is `genmodels.training.context.TrainContext`."""

    def __init__(self, x=None, y=None, batch_size=64, seed=0):
        self.step, self.device, self.reads = 0, torch.device("cpu"), True
        self.generator = torch.Generator().manual_seed(seed)
        self.data_generator = torch.Generator().manual_seed(seed + 1)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.optimized = []          # the optimisers stepped, in order
        self.batches_served = []     # every minibatch next_batch handed out

    def autocast(self):
        return contextlib.nullcontext()

    def optimize(self, loss, optimizer, modules=None):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.optimized.append(optimizer)

    def global_batch(self, x):
        return x

    def next_batch(self):
        if self.x is None:
            raise AssertionError("this FakeContext holds no data: "
                                 "a model that needs fresh minibatches gets FakeContext(x)")
        idx = torch.randint(len(self.x), (self.batch_size,), generator=self.data_generator)
        y = self.y[idx] if self.y is not None else torch.full((self.batch_size,), -1)
        batch = (self.x[idx], y)
        self.batches_served.append(batch)
        return batch
