"""The one in-memory data set type every loader returns and every model trains on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch

from genmodels.errors import DataError

DataKind = Literal["image", "points"]
Split = Literal["train", "test"]         # the splits every data set has


@dataclass(frozen=True)
class LatentSource:
    """Where latent-diffusion data came from (`genmodels.data.latents`): the VAE run whose encoder
    means they are, the checkpoint step read, the scale factor s = 1 / std applied to them
    (Rombach et al. 2022, sec. 4.3.2 and appendix G), so that z = x / s is the VAE's latent, and the
    SHA-256 of the VAE's weights (`genmodels.run.digest.weights_digest`; "" in runs written before
    it was recorded), so that a VAE retrained at the same path is told apart."""

    vae_run: str
    vae_step: int
    scale: float
    vae_sha256: str = ""

    def to_dict(self) -> dict:
        out = {"vae_run": self.vae_run, "vae_step": self.vae_step, "scale": self.scale}
        return {**out, "vae_sha256": self.vae_sha256} if self.vae_sha256 else out

    @classmethod
    def from_dict(cls, d: dict) -> LatentSource:
        return cls(vae_run=str(d["vae_run"]), vae_step=int(d["vae_step"]), scale=float(d["scale"]),
                   vae_sha256=str(d.get("vae_sha256", "")))


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data to build its networks.

    kind:        "image" (x is (N, C, H, W) in [-1, 1]) or "points" (x is (N, D), data coordinates)
    shape:       the shape of one example, e.g. (1, 28, 28) or (2,)
    num_classes: number of labels (0 when unlabelled)
    latent:      for VAE latents (points), the VAE run and scale that decode them; else None
    """

    kind: DataKind
    shape: tuple[int, ...]
    num_classes: int = 0
    latent: LatentSource | None = None

    @property
    def dim(self) -> int:
        """Number of scalar dimensions D of one example (for bits/dim)."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "shape": list(self.shape), "num_classes": self.num_classes}
        if self.latent is not None:
            out["latent"] = self.latent.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        latent = LatentSource.from_dict(d["latent"]) if "latent" in d else None
        return cls(kind=d["kind"], shape=tuple(int(s) for s in d["shape"]), num_classes=int(d.get("num_classes", 0)),
                   latent=latent)


@dataclass
class Dataset(torch.utils.data.Dataset):
    """Tensors held in memory.

    x:      float32, images (N, C, H, W) scaled to [-1, 1], or points (N, D)
    y:      int64 labels (N,) or None
    name:   where it came from (built-in name or path)
    modes:  for 2-D mixtures, the true mode centres (M, 2); else None
    mode_std: the standard deviation of each mixture component (for "high-quality" checks)
    latent: for VAE latents, their `LatentSource` (recorded in the run's [spec] table)
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    name: str = ""
    kind: DataKind = "image"
    num_classes: int = 0
    modes: torch.Tensor | None = None
    mode_std: float | None = None
    meta: dict = field(default_factory=dict)
    latent: LatentSource | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor):
            raise DataError(f"{self.name or 'data'}: x must be a torch.Tensor, got {type(self.x).__name__}")
        want_rank = 4 if self.kind == "image" else 2
        if self.x.dim() != want_rank:
            raise DataError(
                f"{self.name or 'data'}: {self.kind} data must have rank {want_rank}, got shape {tuple(self.x.shape)}"
            )
        if len(self.x) == 0:
            raise DataError(f"{self.name or 'data'}: the data set is empty")
        if not torch.isfinite(self.x).all():
            raise DataError(f"{self.name or 'data'}: contains NaN or inf values")
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"{self.name or 'data'}: {len(self.x)} examples but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        if self.y is None:
            return self.x[i], torch.tensor(-1)
        return self.x[i], self.y[i]

    @property
    def spec(self) -> DataSpec:
        return DataSpec(kind=self.kind, shape=tuple(self.x.shape[1:]), num_classes=self.num_classes,
                        latent=self.latent)

    def subset(self, index) -> Dataset:
        """The examples at `index` (a slice, an int64 tensor of indices or a bool mask), same metadata."""
        return dataclasses.replace(self, x=self.x[index], y=None if self.y is None else self.y[index],
                                   meta=dict(self.meta))
