"""The settings and the metric maths of `genmodels evaluate` and `compare`, below the models.

    samples (n) ──> extractor ──> features ──┐
    real test split (reference) ──> features ──> feature_metrics / sample_metrics ──> {label: (value, std)}
    real train split (n, the floor) ──> features ──┘

`MetricSettings` (shared by both commands), `EvalConfig` (evaluate's), `resolve_metrics` (which
names are feature, sample or model metrics), the metrics on features or on samples themselves,
and `samples_from_array` (samples read from a .npy file). The driver that samples a model and
puts the real-data floor beside each figure is `genmodels.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch

from genmodels.config_fields import param, require
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError, DataError, choice_error
from genmodels.metrics import features as F
from genmodels.metrics.frechet import frechet_distance_features
from genmodels.metrics.inception_score import inception_score
from genmodels.metrics.kid import kernel_inception_distance
from genmodels.metrics.modes import mode_coverage
from genmodels.metrics.parzen import images_to_unit, parzen_log_likelihood
from genmodels.metrics.prdc import precision_recall_density_coverage

FEATURE_METRICS = {
    "fd": "Frechet distance of feature Gaussians (FD-<extractor>; FID only on InceptionV3)",
    "kid": "kernel inception distance: unbiased MMD^2, cubic kernel, mean +- std over subsets",
    "prdc": "precision, recall (k = 3), density, coverage (k = 5)",
    "is": "Inception-Score-style score from the extractor's class probabilities",
}
SAMPLE_METRICS = {
    "modes": "2-D mixtures: modes captured and share of high-quality samples (within 3 std)",
    "parzen": "Parzen-window log-likelihood of the test set (Goodfellow et al.'s protocol)",
}
SamplingPrecision = Literal["run", "fp32", "bf16", "fp16"]   # run: the run's own (genmodels.sampling.plan)
DEFAULT_BATCH = 500       # batch of extraction and likelihoods, and the cap of automatic sampling batches
PARZEN_VALIDATION = 1000  # images that choose the Parzen sigma (Goodfellow et al.)
ALIASES = {"fid": "fd"}  # "fid" is accepted on input; the label still says which features were used


@dataclass
class MetricSettings:
    """The settings `genmodels evaluate` and `genmodels compare` share (how many samples, how they are
    drawn and featurised, the metrics' parameters), written once: EvalConfig extends them with the
    floor, `report.compare.CompareConfig` with the likelihoods' test examples. Each names its own
    default metrics (`metrics`, redefined by both)."""

    metrics: str = param("", "comma-separated metrics")
    n: int = param(10000, "generated samples (per model), test examples of the reference and training examples "
                   "of the floor")
    batch_size: int = param(0, f"batch size for sampling, feature extraction and the likelihoods (0 = automatic: "
                            f"sampling batches from the free memory, at most {DEFAULT_BATCH}, "
                            f"genmodels.sampling.plan; {DEFAULT_BATCH} for the rest)")
    precision: SamplingPrecision = param("run", "precision of the model's sampling: run (the run's trainer.precision "
                                         "from its config.toml, fp32 where this device does not run it natively; "
                                         "genmodels.sampling.plan), fp32, bf16 or fp16")
    extractor: str = param("", f"feature extractor: {', '.join(F.EXTRACTORS)} ('' = the data set's default)")
    extractor_weights: str = param("", "weights file for the extractor (InceptionV3 needs one; '' = shipped)")
    kid_subsets: int = param(100, "KID: number of random subsets")
    kid_subset_size: int = param(1000, "KID: size of each subset (capped at the sample sizes)")
    k_pr: int = param(3, "nearest neighbours for precision/recall (Kynkaanniemi et al.)")
    k_dc: int = param(5, "nearest neighbours for density/coverage (Naeem et al.)")
    is_splits: int = param(10, "Inception-Score-style score: number of splits")
    k: int = param(100, "importance samples for model-specific likelihood metrics (IWAE uses 5000; DDPM: forward "
                   "trajectories of the eq. 4.8 estimate)")
    seed: int = param(0, "seed of the sampling generator and of the subsets drawn")
    device: str = param("auto", "device for the model and the extractor: auto (CUDA when available), cpu, cuda, cuda:N")
    progress: bool = param(True, "show progress bars")

    def validate(self) -> None:
        require(self.n >= 2, f"n must be >= 2, got {self.n}")
        require(self.batch_size >= 0, f"batch_size must be >= 0 (0 = automatic), got {self.batch_size}")
        require(self.kid_subsets >= 1 and self.kid_subset_size >= 2,
                "kid_subsets must be >= 1 and kid_subset_size >= 2")
        require(self.k_pr >= 1 and self.k_dc >= 1, "k_pr and k_dc must be >= 1")
        require(self.is_splits >= 1, f"is_splits must be >= 1, got {self.is_splits}")
        require(self.k >= 1, f"k must be >= 1, got {self.k}")
        if self.extractor not in ("", *F.EXTRACTORS):
            raise choice_error("extractor", self.extractor, F.EXTRACTORS)

    def work_batch(self) -> int:
        """The batch size of feature extraction and likelihoods (and the most samples per automatic
        sampling batch): batch_size, or DEFAULT_BATCH when it is automatic (0)."""
        return self.batch_size or DEFAULT_BATCH

    def shared(self) -> dict[str, Any]:
        """{field: value} of the MetricSettings fields (what another command's config takes over)."""
        return {f.name: getattr(self, f.name) for f in fields(MetricSettings)}


@dataclass
class EvalConfig(MetricSettings):
    """The settings of `genmodels evaluate`: the shared ones and the real-data floor. A family's own
    evaluation options (DDPM's likelihood estimates and ODE solver) are its `evaluate_options`."""

    metrics: str = param("", "comma-separated metrics ('' = fd,kid,prdc,is for images; fd,kid,prdc,modes for points)")
    floor: bool = param(True, "also compute the real-data floor (real test vs real train)")


# ---------------------------------------------------------------------------------------------
# Metric maths on extracted features


def feature_metrics(ref: F.Extracted, other: F.Extracted, names: list[str], extractor: F.FeatureExtractor,
                    cfg: EvalConfig) -> dict[str, tuple[float, float | None]]:
    """{label: (value, std or None)} of `other` against the reference features `ref`."""
    out: dict[str, tuple[float, float | None]] = {}
    if "fd" in names:
        out[F.metric_label("FD", extractor)] = (frechet_distance_features(ref.features, other.features), None)
    if "kid" in names:
        out[F.metric_label("KID", extractor)] = kernel_inception_distance(
            ref.features, other.features, cfg.kid_subsets, cfg.kid_subset_size, seed=cfg.seed)
    if "prdc" in names:
        for key, v in precision_recall_density_coverage(ref.features, other.features, cfg.k_pr, cfg.k_dc).items():
            out[key] = (v, None)
    if "is" in names:
        if other.probabilities is None:
            raise ConfigError(f"metric 'is' needs a classifier; the {extractor.name!r} extractor "
                              f"gives no class probabilities")
        out[F.metric_label("IS", extractor)] = inception_score(other.probabilities,
                                                               splits=min(cfg.is_splits, len(other.probabilities)))
    return out


def sample_metrics(samples: torch.Tensor, names: list[str], validation: torch.Tensor, test: Dataset,
                   reference: torch.Tensor) -> dict[str, tuple[float, float | None]]:
    """Metrics on the samples themselves: 'modes' (2-D mixtures: modes captured, share of
    high-quality samples) and 'parzen' (log-likelihood of the `reference` test images under a
    Parzen window on the samples, sigma chosen on `validation` images). {label: (value, std)}."""
    out: dict[str, tuple[float, float | None]] = {}
    if "modes" in names:
        if test.modes is None or test.mode_std is None:
            raise ConfigError(f"metric 'modes' needs a 2-D mixture with known modes; {test.name!r} has none")
        r = mode_coverage(samples, test.modes, test.mode_std)
        out["modes_captured"] = (r["modes_captured"], None)
        out["high_quality"] = (r["high_quality"], None)
        out["reverse_kl"] = (r["reverse_kl"], None)
    if "parzen" in names:
        if test.kind != "image":
            raise ConfigError("metric 'parzen' is defined for images (pixels in [0, 1]); "
                              "use 'modes' or 'fd' for points")
        r = parzen_log_likelihood(images_to_unit(samples), images_to_unit(reference),
                                  validation=images_to_unit(validation))
        out["parzen_ll"] = (r["mean"], r["stderr"])  # nats per test image, +- standard error
        out["parzen_sigma"] = (r["sigma"], None)
    return out


# ---------------------------------------------------------------------------------------------
# Samples from a file


def samples_from_array(a: np.ndarray, spec_shape: tuple[int, ...], kind: str, where: str) -> tuple[torch.Tensor, str]:
    """Samples from a .npy array in the data set's layout -> (tensor, note on the range assumed).

    Images become (N, C, H, W) in [-1, 1]: uint8 is read as 0..255; floats in [0, 1] as written
    by `genmodels sample --out FILE.npy`; floats with negative values as already in [-1, 1];
    (N, H, W) and (N, H, W, C) are rearranged. Points (N, D) are taken as they are.
    """
    note = ""
    if kind == "image":
        if a.dtype == np.uint8:
            a, note = a.astype(np.float32) / 127.5 - 1.0, "samples read as uint8 pixels 0..255"
        elif not np.issubdtype(a.dtype, np.floating):
            raise DataError(f"{where}: image samples must be float or uint8, got dtype {a.dtype}")
    elif not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{where}: point samples must be numbers, got dtype {a.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if not torch.isfinite(x).all():
        raise DataError(f"{where}: samples contain NaN or inf")
    if kind == "image":
        if x.dim() == 3 and spec_shape[0] == 1:
            x = x.unsqueeze(1)
        elif (x.dim() == 4 and tuple(x.shape[1:]) != tuple(spec_shape)
              and tuple(x.shape[1:]) == (*spec_shape[1:], spec_shape[0])):
            x = x.permute(0, 3, 1, 2).contiguous()
        lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
        if lo < -1.001 or hi > 1.001:
            raise DataError(f"{where}: float image samples must lie in [0, 1] or [-1, 1], got [{lo:.3g}, {hi:.3g}]")
        if not note:
            if lo >= 0:
                x, note = x * 2 - 1, "samples read as pixels in [0, 1] (the layout `genmodels sample` writes)"
            else:
                note = "samples read as pixels in [-1, 1]"
        x = x.clamp(-1, 1)
    if x.dim() < 2 or tuple(x.shape[1:]) != tuple(spec_shape):
        raise DataError(f"{where}: samples of shape {tuple(a.shape)} do not match "
                        f"the data set's examples {tuple(spec_shape)}")
    return x, note


# ---------------------------------------------------------------------------------------------
# Which metrics


def resolve_metrics(cfg: EvalConfig, kind: str,
                    model_metrics: tuple[str, ...] = ()) -> tuple[list[str], list[str], list[str]]:
    """Split the requested names into (feature metrics, sample metrics, model metrics)."""
    if cfg.metrics.strip():
        names = [ALIASES.get(m.strip(), m.strip()) for m in cfg.metrics.split(",") if m.strip()]
    else:
        names = ["fd", "kid", "prdc", "is"] if kind == "image" else ["fd", "kid", "prdc", "modes"]
    valid = {**FEATURE_METRICS, **SAMPLE_METRICS, **{m: "" for m in model_metrics}}
    for m in names:
        if m not in valid:
            raise choice_error("metric", m, list(valid) + list(ALIASES))
    return ([m for m in names if m in FEATURE_METRICS], [m for m in names if m in SAMPLE_METRICS],
            [m for m in names if m in model_metrics and m not in FEATURE_METRICS and m not in SAMPLE_METRICS])
