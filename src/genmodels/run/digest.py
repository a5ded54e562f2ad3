"""Digests of what a derived artefact depends on: a model's weights and a data set's examples.

Whatever is kept and served again later (a `genmodels compare --cache` row, the latents of
`latents:VAE_RUN` a model learnt) is keyed by the content it was computed from, never by a path or a
name that may come to hold other content: `weights_digest(model)` hashes every tensor of the model's
networks, `data_digest(*datasets)` every example and label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch

from genmodels.data.dataset import Dataset


def _update(h, name: str, tensor: torch.Tensor) -> None:
    """Feed one tensor (its name, dtype, shape and bytes) to the hash `h`."""
    t = tensor.detach().cpu().contiguous()
    h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())   # 0-dim buffers too (BatchNorm counts)


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 of named tensors, in the order given."""
    h = hashlib.sha256()
    for name, tensor in tensors:
        _update(h, name, tensor)
    return h.hexdigest()


def weights_digest(model) -> str:
    """SHA-256 of every tensor of the model's networks (name, dtype, shape and bytes), in name order."""
    return tensors_digest((f"{net_name}.{name}", tensor) for net_name, module in sorted(model.modules().items())
                          for name, tensor in sorted(module.state_dict().items()))


def data_digest(*datasets: Dataset) -> str:
    """SHA-256 of the examples and labels of `datasets` (a rewritten data file gives another digest)."""
    def parts():
        for i, data in enumerate(datasets):
            yield f"{i}.x", data.x
            if data.y is not None:
                yield f"{i}.y", data.y
    return tensors_digest(parts())
