"""Feature extractors for the metrics: the protocol, the built-in ones, and batched extraction.

An extractor maps a batch of samples (B, C, H, W) in [-1, 1] (or points (B, D)) to features
(B, D') and, when it is a classifier, class probabilities (B, K). Built in, by name:

- "mnist", "fashion-mnist": the project's digit classifier (`classifier.py`) with the weights
  shipped in `genmodels/assets/`; features are its 128-d penultimate layer. Metrics on them are
  named "FD-mnist", "KID-mnist", "IS-mnist" (never FID).
- "inception": InceptionV3 from torch-fidelity, with weights from a local file the user names
  (nothing is downloaded); 2048-d pool features and 1008 ImageNet logits, so metrics are the
  standard "FID", "KID", "IS". Needs `pip install torch-fidelity` (optional).
- "raw": the flattened samples themselves (for 2-D points), "FD-raw".
Any `torch.nn.Module` mapping (B, ...) -> (B, D') can be wrapped with `ModuleExtractor`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from genmodels.errors import CheckpointError, ConfigError, DataError, choice_error
from genmodels.metrics.classifier import load_classifier


@runtime_checkable
class FeatureExtractor(Protocol):
    """name: short name used in metric labels ("mnist" -> "FD-mnist"); `standard` is True only
    for InceptionV3 with the standard weights, whose Frechet distance may be called FID."""

    name: str
    standard: bool

    def features(self, x: torch.Tensor) -> torch.Tensor: ...
    """(B, ...) samples in data space -> (B, D') float features."""

    def probabilities(self, x: torch.Tensor) -> torch.Tensor | None: ...
    """(B, ...) -> (B, K) class probabilities, or None when the extractor is not a classifier."""


def metric_label(metric: str, extractor: FeatureExtractor) -> str:
    """The honest name of a feature metric: "FD" on "mnist" -> "FD-mnist"; on standard
    InceptionV3 "FD" -> "FID", "KID" -> "KID", "IS" -> "IS"."""
    if extractor.standard:
        return {"FD": "FID"}.get(metric, metric)
    return f"{metric}-{extractor.name}"


class ModuleExtractor:
    """Wrap any `nn.Module`: features = module(x).flatten(1); probabilities = softmax of
    `logits(x)` when a `logits` callable is given, else None."""

    standard = False

    def __init__(self, module: nn.Module, name: str = "custom",
                 logits: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.module = module.eval()
        self.name = name
        self._logits = logits
        self.device = next((p.device for p in module.parameters()), torch.device("cpu"))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.device)).flatten(1).float()

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor | None:
        if self._logits is None:
            return None
        return torch.softmax(self._logits(x.to(self.device)).float(), dim=1)


class ClassifierExtractor(ModuleExtractor):
    """The shipped digit classifier for `dataset`: 128-d penultimate features, softmax probabilities."""

    def __init__(self, dataset: str = "mnist", weights: str | Path | None = None, device: str | torch.device = "cpu"):
        model, self.card = load_classifier(dataset, weights)
        self.classifier = model.to(device)              # self.module too, typed as the classifier
        super().__init__(self.classifier, name=dataset, logits=self.classifier)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x.to(self.device))


class RawExtractor:
    """The samples themselves, flattened: (B, ...) -> (B, prod(...)). For 2-D points."""

    name = "raw"
    standard = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float()

    def probabilities(self, x: torch.Tensor) -> None:
        return None


class InceptionExtractor:
    """InceptionV3 as in TensorFlow's FID code, via torch-fidelity, from a local weights file
    (torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`). Images in [-1, 1] with 1 or 3
    channels are quantised to uint8 RGB and resized to 299x299 inside the network."""

    name = "inception"
    standard = True

    def __init__(self, weights: str | Path | None, device: str | torch.device = "cpu"):
        if weights is None:
            raise ConfigError("the inception extractor needs a local weights file (--extractor-weights FILE); "
                              "nothing is downloaded at run time")
        weights = Path(weights)
        if not weights.is_file():
            raise CheckpointError(f"{weights}: InceptionV3 weights file not found")
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # lazy: optional
        except ImportError as e:
            raise ConfigError("the inception extractor needs torch-fidelity: pip install torch-fidelity") from e
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                   feature_extractor_weights_path=str(weights))
        except (RuntimeError, KeyError, OSError) as e:
            raise CheckpointError(f"{weights}: not torch-fidelity InceptionV3 weights ({e})") from e
        self.device = torch.device(device)
        self.net = self.net.to(self.device)

    def _uint8_rgb(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise DataError(f"the inception extractor expects images (B, 1 or 3, H, W), got {tuple(x.shape)}")
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x).to(self.device)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._uint8_rgb(x))[0]

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(self._uint8_rgb(x))[1], dim=1)


EXTRACTORS: dict[str, str] = {
    "mnist": "digit classifier trained on MNIST (shipped); metrics FD-mnist, KID-mnist, IS-mnist",
    "fashion-mnist": "digit-classifier architecture trained on Fashion-MNIST (shipped); FD-fashion-mnist",
    "inception": "InceptionV3 (torch-fidelity) from a local weights file; FID, KID, IS",
    "raw": "the flattened samples themselves (2-D points); FD-raw",
}

# Which extractor a built-in data set is measured with when none is named.
DEFAULT_EXTRACTOR: dict[str, str] = {"mnist": "mnist", "mnist5k": "mnist", "fashion-mnist": "fashion-mnist"}


def get_extractor(name: str, *, weights: str | Path | None = None,
                  device: str | torch.device = "cpu") -> FeatureExtractor:
    """A built-in extractor by name (see EXTRACTORS); `weights` overrides the classifier's shipped
    file or names InceptionV3's local file."""
    if name in ("mnist", "fashion-mnist"):
        return ClassifierExtractor(name, weights, device)
    if name == "inception":
        return InceptionExtractor(weights, device)
    if name == "raw":
        return RawExtractor()
    raise choice_error("feature extractor", name, EXTRACTORS)


def default_extractor(dataset: str, kind: str, shape: tuple[int, ...]) -> str:
    """The extractor name for a data set: its classifier if it has one, "raw" for points;
    other images need an explicit choice (ConfigError saying so)."""
    if dataset in DEFAULT_EXTRACTOR:
        return DEFAULT_EXTRACTOR[dataset]
    if kind == "points":
        return "raw"
    if tuple(shape) == (1, 28, 28):
        return "mnist"
    raise ConfigError(
        f"no default feature extractor for {dataset!r} images of shape {tuple(shape)}; choose one with "
        f"--extractor ({', '.join(EXTRACTORS)}), e.g. --extractor inception --extractor-weights FILE"
    )


@dataclass
class Extracted:
    """features: (N, D') float32; probabilities: (N, K) float32 or None."""

    features: np.ndarray
    probabilities: np.ndarray | None


def batches_of(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Split a tensor (N, ...) into consecutive (<= batch_size, ...) chunks."""
    for i in range(0, len(x), batch_size):
        yield x[i : i + batch_size]


def extract(extractor: FeatureExtractor, batches: Iterable[torch.Tensor], total: int | None = None,
            desc: str = "features", want_probabilities: bool = True, progress: bool = True) -> Extracted:
    """Run `extractor` over an iterable of sample batches (each (B, ...)), with a progress bar
    counting samples; keeps only the features (and probabilities), never the samples."""
    feats, probs = [], []
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for x in batches:
            f = extractor.features(x)
            if f.dim() != 2 or len(f) != len(x):
                raise DataError(f"feature extractor {extractor.name!r} returned shape {tuple(f.shape)} "
                                f"for a batch of {len(x)}")
            feats.append(f.detach().float().cpu().numpy())
            if want_probabilities:
                p = extractor.probabilities(x)
                if p is not None:
                    probs.append(p.detach().float().cpu().numpy())
            bar.update(len(x))
    if not feats:
        raise DataError("no samples to extract features from")
    return Extracted(np.concatenate(feats), np.concatenate(probs) if probs else None)
