"""The evaluation driver: sample a model (or take samples from a file), extract features, compute
the metrics, and put the real-data floor beside each figure.

    samples (n) ──> extractor ──> features ──┐
    real test split (reference) ──> features ──> metric maths ──> EvalReport (table / JSON)
    real train split (n, the floor) ──> features ──┘

The floor is the same metric between the real test split and n real training images: the value
a perfect model would get at these sample sizes (Frechet distance and KID are biased upwards at
small n; precision/recall/density/coverage of real data are not 1). Model-specific metrics
("nll", "elbo", ...) come from `model.evaluate(...)` and have no floor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from genmodels.config_fields import param, require
from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError, DataError, choice_error
from genmodels.metrics import features as F
from genmodels.metrics.frechet import frechet_distance_features
from genmodels.metrics.inception_score import inception_score
from genmodels.metrics.kid import kernel_inception_distance
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
SamplingPrecision = Literal["run", "fp32", "bf16", "fp16"]   # run: the run's own (genmodels.training.inference)
DEFAULT_BATCH = 500       # batch of extraction and likelihoods, and the cap of automatic sampling batches
PARZEN_VALIDATION = 1000  # images that choose the Parzen sigma (Goodfellow et al.)
ALIASES = {"fid": "fd"}  # "fid" is accepted on input; the label still says which features were used


@dataclass
class MetricSettings:
    """The settings `genmodels evaluate` and `genmodels compare` share (how many samples, how they are
    drawn and featurised, the metrics' parameters), written once: EvalConfig extends them with the
    likelihood estimates and the floor, `report.compare.CompareConfig` with the likelihoods' test
    examples. Each names its own default metrics (`metrics`, redefined by both)."""

    metrics: str = param("", "comma-separated metrics")
    n: int = param(10000, "generated samples (per model), test examples of the reference and training examples "
                   "of the floor")
    batch_size: int = param(0, f"batch size for sampling, feature extraction and the likelihoods (0 = automatic: "
                            f"sampling batches from the free memory, at most {DEFAULT_BATCH}, "
                            f"genmodels.run.sample_batch; {DEFAULT_BATCH} for the rest)")
    precision: SamplingPrecision = param("run", "precision of the model's sampling: run (the run's trainer.precision "
                                         "from its config.toml, fp32 where this device does not run it natively; "
                                         "genmodels.training.inference), fp32, bf16 or fp16")
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
    metrics: str = param("", "comma-separated metrics ('' = fd,kid,prdc,is for images; fd,kid,prdc,modes for points)")
    nll_estimates: str = param("bound,is,ode", "DDPM 'nll': which likelihood estimates to report, comma-separated: "
                               "bound (Theorem 8), is (eq. 4.8 with k trajectories), ode (probability-flow ODE)")
    ode_trace: str = param("auto", "DDPM ODE likelihood: divergence exact (D backward passes), hutchinson, or "
                           "auto (exact up to 16 dimensions)", choices=("auto", "exact", "hutchinson"))
    ode_probes: int = param(1, "DDPM ODE likelihood: Hutchinson probes, fixed along the path")
    ode_probe: str = param("rademacher", "DDPM ODE likelihood: probe distribution", choices=("rademacher", "gaussian"))
    ode_rtol: float = param(1e-5, "DDPM ODE likelihood: relative tolerance of the RK45 solver (Song et al.: 1e-5)")
    ode_atol: float = param(1e-5, "DDPM ODE likelihood: absolute tolerance of the RK45 solver (Song et al.: 1e-5)")
    floor: bool = param(True, "also compute the real-data floor (real test vs real train)")

    def validate(self) -> None:
        super().validate()
        require(self.ode_probes >= 1, f"ode_probes must be >= 1, got {self.ode_probes}")
        require(self.ode_rtol > 0 and self.ode_atol > 0,
                f"ode_rtol and ode_atol must be > 0, got {self.ode_rtol}, {self.ode_atol}")


@dataclass
class MetricRow:
    """One line of the table: value (+- std) for the model and the floor (None when not defined)."""

    name: str
    value: float
    std: float | None = None
    floor: float | None = None
    floor_std: float | None = None


@dataclass
class EvalReport:
    title: str
    dataset: str
    extractor: str
    n_samples: int
    n_reference: int
    n_floor: int
    rows: list[MetricRow] = field(default_factory=list)
    floor_only: bool = False
    notes: list[str] = field(default_factory=list)
    sampling: SamplingStats | None = None   # how the model's samples were drawn (None: no model sampled)

    def to_dict(self) -> dict[str, Any]:
        def clean(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

        return {
            "title": self.title, "dataset": self.dataset, "extractor": self.extractor,
            "n_samples": self.n_samples, "n_reference": self.n_reference, "n_floor": self.n_floor,
            "metrics": {r.name: {"value": clean(r.value), "std": clean(r.std), "real_floor": clean(r.floor),
                                 "real_floor_std": clean(r.floor_std)} for r in self.rows},
            "notes": list(self.notes),
            **({"sampling": {k: clean(v) for k, v in self.sampling.to_dict().items()}} if self.sampling else {}),
        }

    def format_table(self) -> str:
        def fmt(v, s):
            if v is None:
                return "-"
            return f"{v:.4g}" + (f" ± {s:.2g}" if s is not None else "")

        head = ("metric", "real floor") if self.floor_only else ("metric", "model", "real floor")
        lines = [[r.name, fmt(r.floor, r.floor_std)] if self.floor_only
                 else [r.name, fmt(r.value, r.std), fmt(r.floor, r.floor_std)] for r in self.rows]
        widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
        out = [self.title] if self.title else []
        sizes = [f"{self.n_samples} samples"] if not self.floor_only else []
        sizes += [f"reference: {self.n_reference} test examples", f"floor: {self.n_floor} training examples"]
        out.append(f"{'; '.join(sizes)}; features: {self.extractor}")
        out += ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), "  ".join("-" * w for w in widths)]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        if self.sampling is not None:
            out.append(f"sampling: {self.sampling.summary()}")
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)


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
        from genmodels.metrics.modes import mode_coverage

        r = mode_coverage(samples, test.modes, test.mode_std)
        out["modes_captured"] = (r["modes_captured"], None)
        out["high_quality"] = (r["high_quality"], None)
        out["reverse_kl"] = (r["reverse_kl"], None)
    if "parzen" in names:
        if test.kind != "image":
            raise ConfigError("metric 'parzen' is defined for images (pixels in [0, 1]); "
                              "use 'modes' or 'fd' for points")
        from genmodels.metrics.parzen import images_to_unit, parzen_log_likelihood

        r = parzen_log_likelihood(images_to_unit(samples), images_to_unit(reference),
                                  validation=images_to_unit(validation))
        out["parzen_ll"] = (r["mean"], r["stderr"])  # nats per test image, +- standard error
        out["parzen_sigma"] = (r["sigma"], None)
    return out


# ---------------------------------------------------------------------------------------------
# Sources of samples


@dataclass
class SamplingStats:
    """How a model's samples were drawn: how many, the seconds spent in `sample` (not in the
    metrics), the batch size and the precision; `samples_per_second` is the throughput."""

    n: int = 0
    seconds: float = 0.0
    batch_size: int = 0
    precision: str = "fp32"
    unit: str = "sample"          # "image" for image data

    @property
    def samples_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        """'1000 images in 12.3 s: 81.3 images/s (batch 500, bf16)'."""
        return (f"{self.n} {self.unit}s in {self.seconds:.3g} s: {self.samples_per_second:.3g} {self.unit}s/s "
                f"(batch {self.batch_size}, {self.precision})")

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "seconds": self.seconds, "samples_per_second": self.samples_per_second,
                "batch_size": self.batch_size, "precision": self.precision}


def sample_batches(model, n: int, batch_size: int, generator: torch.Generator, spec_shape: tuple[int, ...],
                   options: Any = None, progress: bool = True, clamp: bool = True,
                   context: Callable[[], AbstractContextManager] = torch.inference_mode,
                   stats: SamplingStats | None = None) -> Iterator[torch.Tensor]:
    """Yield n samples from the model in batches (B, *spec_shape) on the CPU, with a progress bar
    showing the sampling throughput; images are clamped to [-1, 1] (`clamp`). `options`: an
    instance of the model's sample options (`model.sample_with`), or {field: value} keywords of
    `model.sample` (None: its defaults).
    Each batch is drawn inside `context()` (`training.inference.inference`: no autograd, the run's
    precision; default torch.inference_mode); `stats`, when given, collects n, the seconds spent
    sampling and the batch size."""
    stats = stats if stats is not None else SamplingStats(unit="image" if clamp else "sample")
    stats.batch_size = batch_size
    unit = stats.unit
    with tqdm(total=n, desc="sampling", unit=unit, disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            began = time.perf_counter()
            with context():
                if options is None or isinstance(options, Mapping):
                    x = model.sample(b, generator=generator, **(options or {}))
                else:
                    x = model.sample_with(b, options, generator=generator)
                x = x.detach().cpu()                     # on the CPU: the device's work is finished
            stats.seconds += time.perf_counter() - began
            stats.n += b
            if tuple(x.shape) != (b, *spec_shape):
                raise DataError(f"the model's sample() returned shape {tuple(x.shape)}, expected {(b, *spec_shape)}")
            x = x.float().clone()                        # an ordinary tensor, usable outside inference mode
            if not torch.isfinite(x).all():
                raise DataError(f"the model produced NaN or inf samples (batch starting at sample {start})")
            bar.update(b)
            bar.set_postfix_str(f"{stats.samples_per_second:.3g} {unit}s/s sampling")
            yield x.clamp(-1, 1) if clamp else x


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
# The driver


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


def _subset_index(size: int, n: int, seed: int) -> torch.Tensor:
    """min(n, size) indices of range(size) drawn without replacement by a local generator."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


def evaluate(train: Dataset, test: Dataset, cfg: EvalConfig, *,
             samples: Callable[[int], Iterator[torch.Tensor]] | None = None,
             n_samples: int | None = None, model=None, title: str = "",
             extractor: F.FeatureExtractor | None = None) -> EvalReport:
    """Measure the samples that `samples(batch_size)` yields (n_samples of them; None = the real
    floor alone) against `test`, with the floor (test vs n training images) beside each figure.

    `model` (a `genmodels.models.base.GenerativeModel`), when given, provides the model-specific
    metrics it lists in `metric_names`.
    `extractor` overrides cfg.extractor (e.g. a user's nn.Module wrapped in ModuleExtractor).
    """
    cfg.validate()
    kind = test.kind
    model_metric_names = tuple(model.metric_names) if model is not None else ()
    feat_names, smp_names, mdl_names = resolve_metrics(cfg, kind, model_metric_names)
    if samples is None and mdl_names:
        raise ConfigError(f"model-specific metrics {mdl_names} need a model (a run directory)")
    if extractor is None and feat_names:
        name = cfg.extractor or F.default_extractor(test.name, kind, tuple(test.x.shape[1:]))
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        extractor = F.get_extractor(name, weights=cfg.extractor_weights or None, device=device)
    want_probs = "is" in feat_names
    n = n_samples if n_samples is not None else cfg.n
    ref_idx = _subset_index(len(test.x), n, cfg.seed)  # data files are often sorted by class: draw at random
    reference = test.x[ref_idx]
    order = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(cfg.seed + 1))
    floor_x = train.x[order[:n]]  # the floor's "samples": n training examples
    report = EvalReport(title=title, dataset=test.name, extractor=extractor.name if extractor else "-",
                        n_samples=n if samples is not None else 0, n_reference=len(reference),
                        n_floor=len(floor_x) if (cfg.floor or samples is None) else 0, floor_only=samples is None)
    if len(floor_x) < n:
        report.notes.append(f"the training split has only {len(floor_x)} examples: "
                            f"the floor uses {len(floor_x)}, not {n}")
    if extractor is not None and hasattr(extractor, "card") and not math.isnan(extractor.card.test_accuracy):
        report.notes.append(f"features: {extractor.name} classifier, test accuracy {extractor.card.test_accuracy:.4f}")

    values: dict[str, tuple[float, float | None]] = {}
    floors: dict[str, tuple[float, float | None]] = {}
    keep_samples = bool(smp_names)
    kept: list[torch.Tensor] = []
    if feat_names:
        assert extractor is not None  # chosen above whenever feat_names is non-empty
        ref = F.extract(extractor, F.batches_of(reference, cfg.work_batch()), len(reference), "features: test",
                        want_probs, cfg.progress)
        if cfg.floor or samples is None:
            fl = F.extract(extractor, F.batches_of(floor_x, cfg.work_batch()), len(floor_x), "features: train",
                           want_probs, cfg.progress)
            floors.update(feature_metrics(ref, fl, feat_names, extractor, cfg))
        if samples is not None:
            def tee(it):
                for x in it:
                    if keep_samples:
                        kept.append(x)
                    yield x

            gen = F.extract(extractor, tee(samples(cfg.work_batch())), n, "features: samples", want_probs,
                            progress=False)
            values.update(feature_metrics(ref, gen, feat_names, extractor, cfg))
    elif samples is not None and keep_samples:
        kept.extend(samples(cfg.work_batch()))
    if smp_names:
        rest = order[n:] if len(order) > n else order  # training examples not in the floor, when there are any
        validation = train.x[rest[:PARZEN_VALIDATION]]
        if cfg.floor or samples is None:
            floors.update(sample_metrics(floor_x, smp_names, validation, test, reference))
        if samples is not None:
            values.update(sample_metrics(torch.cat(kept), smp_names, validation, test, reference))
    for key in (values if samples is not None else floors):
        v, s = values.get(key, (float("nan"), None))
        f, fs = floors.get(key, (None, None))
        report.rows.append(MetricRow(key, v, s, f, fs))
    for name in mdl_names:
        g = torch.Generator(device=model.device).manual_seed(cfg.seed + 2)
        subset = Dataset(x=reference, y=None if test.y is None else test.y[ref_idx], name=test.name, kind=test.kind,
                         num_classes=test.num_classes, modes=test.modes, mode_std=test.mode_std)
        options = dict(estimates=cfg.nll_estimates, ode_trace=cfg.ode_trace, ode_probes=cfg.ode_probes,
                       ode_probe=cfg.ode_probe, ode_rtol=cfg.ode_rtol, ode_atol=cfg.ode_atol)
        for key, v in model.evaluate(name, subset, n=n, batch_size=cfg.work_batch(), k=cfg.k, generator=g,
                                     progress=cfg.progress,
                                     **options).items():
            report.rows.append(MetricRow(f"{name}:{key}" if key != name else name, float(v)))
    return report
