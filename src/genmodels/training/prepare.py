"""The networks made ready for training, in place (the model keeps its references, so optimisers and
checkpoints see the same parameters): SyncBatchNorm under data parallelism, channels-last weights,
torch.compile."""

from __future__ import annotations

import torch


def sync_batchnorm(modules: dict[str, torch.nn.Module]) -> None:
    """Under data parallelism on CUDA, batch-norm layers normalise with the statistics of the global
    batch (SyncBatchNorm, NCCL only), as in one process. The layers are replaced inside each network
    (the networks themselves, their parameters and so the optimisers, stay the same objects)."""
    for m in modules.values():
        if not isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(m)


def prepare_modules(modules: dict[str, torch.nn.Module], channels_last: bool, compile: bool) -> None:
    """In place (the model keeps its references): channels-last weights for the 4-D convolution
    kernels, and torch.compile of each network's forward (nn.Module.compile, so state dicts and
    checkpoints keep their keys)."""
    for m in modules.values():
        if channels_last:
            m.to(memory_format=torch.channels_last)
        if compile and any(True for _ in m.parameters()):
            m.compile()
