"""The small digit classifier whose penultimate layer is the feature space of "FD-mnist".

A LeNet-style CNN for 28x28 one-channel images (MNIST, Fashion-MNIST), trained by
`genmodels.metrics.train_classifier` and shipped in `genmodels/assets/`. Its 128-d penultimate
activations are the features for Frechet distance, KID and PRDC; its softmax output gives the
Inception-Score-style score. It is not InceptionV3, so scores on it are named "FD-<data set>",
never FID.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from genmodels.atomic import write_bytes, write_text
from genmodels.errors import CheckpointError, DataError

FEATURE_DIM = 128  # width of the penultimate layer: the feature space of FD-mnist


class DigitClassifier(nn.Module):
    """conv(32)-pool-conv(64)-pool-conv(64)-pool-fc(128)-fc(K) on (N, 1, 28, 28) images in [-1, 1].

    `features(x)` -> (N, 128) penultimate ReLU activations; `forward(x)` -> (N, K) logits.
    About 131k parameters (0.5 MB in float32).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),           # 14 -> 7
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),           # 7 -> 3
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 3 * 3, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, 28, 28):
            raise DataError(
                f"the digit classifier expects images of shape (N, {self.in_channels}, 28, 28), "
                f"got {tuple(x.shape)}"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) in [-1, 1] -> (N, 128) penultimate activations."""
        self._check(x)
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) in [-1, 1] -> (N, K) class logits."""
        return self.head(self.features(x))


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every conv/linear layer from `generator` with PyTorch's default scheme
    (He-uniform with a = sqrt(5) for weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases),
    so that training is reproducible without touching the global RNG."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            fan_in = m.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)


@dataclass(frozen=True)
class ClassifierCard:
    """What the shipped weights are: the data set, its test accuracy and how they were made."""

    dataset: str
    test_accuracy: float
    num_classes: int
    command: str
    extra: dict


def asset_path(dataset: str, suffix: str) -> Path:
    """Path of a shipped asset, e.g. asset_path("mnist", ".safetensors")."""
    name = dataset.replace("-", "_") + "_classifier" + suffix
    return Path(str(resources.files("genmodels") / "assets" / name))


def save_classifier(model: DigitClassifier, card: ClassifierCard, weights: Path) -> Path:
    """Write `weights` (safetensors) and the card next to it (same stem, .json). Returns the card path."""
    from safetensors.torch import save  # lazy: safetensors, for weights files only


    weights = Path(weights)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_bytes(weights, save(state, metadata={"dataset": card.dataset, "num_classes": str(card.num_classes)}))
    card_path = weights.with_suffix(".json")
    write_text(card_path, json.dumps(card.__dict__, indent=2, allow_nan=False) + "\n")
    return card_path


def load_classifier(dataset: str = "mnist",
                    weights: str | Path | None = None) -> tuple[DigitClassifier, ClassifierCard]:
    """The shipped classifier for `dataset` ("mnist" or "fashion-mnist"), or one from `weights`.

    Returns the model in eval mode (CPU, float32) and its card. Raises CheckpointError when the
    file is missing or its tensors do not fit the network.
    """
    from safetensors import SafetensorError  # lazy: safetensors, for weights files only
    from safetensors.torch import load_file  # lazy: safetensors, for weights files only

    path = Path(weights) if weights is not None else asset_path(dataset, ".safetensors")
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no classifier weights for {dataset!r}; train them with "
            f"`python -m genmodels.metrics.train_classifier --data {dataset} --out {path.name}`"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    num_classes = int(state["head.weight"].shape[0]) if "head.weight" in state else 10
    model = DigitClassifier(num_classes=num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: tensors do not fit the digit classifier ({e})") from e
    card_path = path.with_suffix(".json")
    if card_path.is_file():
        d = json.loads(card_path.read_text())
        card = ClassifierCard(d["dataset"], float(d["test_accuracy"]), int(d["num_classes"]), d["command"],
                              d.get("extra", {}))
    else:
        card = ClassifierCard(dataset, float("nan"), num_classes, "", {})
    return model.eval(), card
