"""The evaluation driver: take samples (a model's, drawn by `genmodels.sampling`, or a file's),
extract features, compute the metrics of `genmodels.metrics`, and put the real-data floor beside
each figure; then the model's own metrics (`model.evaluate`).

    samples (n) ──> extractor ──> features ──┐
    real test split (reference) ──> features ──> metric maths ──> EvalReport (table / JSON)
    real train split (n, the floor) ──> features ──┘

The floor is the same metric between the real test split and n real training images: the value
a perfect model would get at these sample sizes (Frechet distance and KID are biased upwards at
small n; precision/recall/density/coverage of real data are not 1). Model-specific metrics
("nll", "elbo", ...) have no floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from genmodels.data.dataset import Dataset
from genmodels.errors import ConfigError
from genmodels.evaluation.report import EvalReport, MetricRow
from genmodels.evaluation.shard import draw_share, extract_rows, extract_share, gather_samples
from genmodels.metrics import features as F
from genmodels.metrics.evaluate import (
    PARZEN_VALIDATION,
    EvalConfig,
    feature_metrics,
    resolve_metrics,
    sample_metrics,
)
from genmodels.models.base import GenerativeModel


def _subset_index(size: int, n: int, seed: int) -> torch.Tensor:
    """min(n, size) indices of range(size) drawn without replacement by a local generator."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


def evaluate(train: Dataset, test: Dataset, cfg: EvalConfig, *,
             samples: Callable[[int], Iterator[torch.Tensor]] | None = None,
             n_samples: int | None = None, model: GenerativeModel | None = None, model_options: Any = None,
             title: str = "", extractor: F.FeatureExtractor | None = None) -> EvalReport:
    """Measure the samples that `samples(batch_size)` yields (n_samples of them; None = the real
    floor alone) against `test`, with the floor (test vs n training images) beside each figure.

    `model`, when given, provides the model-specific metrics it lists in `metric_names`, measured
    with `model_options` (an instance of its `evaluate_options`; None: the defaults).
    `extractor` overrides cfg.extractor (e.g. a user's nn.Module wrapped in ModuleExtractor).
    """
    cfg.validate()
    kind = test.kind
    model_metric_names = tuple(model.metric_names) if model is not None else ()
    feat_names, smp_names, mdl_names = resolve_metrics(cfg, kind, model_metric_names)
    if (samples is None or model is None) and mdl_names:
        raise ConfigError(f"model-specific metrics {mdl_names} need a model (a run directory)")
    if extractor is None and feat_names:
        extractor = _extractor_for(cfg, test)
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
    kept: list[torch.Tensor] = []      # the samples, kept for the sample metrics
    if feat_names:
        assert extractor is not None  # chosen above whenever feat_names is non-empty
        _measure_features(extractor, feat_names, cfg, reference, floor_x, samples, n, values, floors,
                          kept if smp_names else None)
    elif samples is not None and smp_names:
        kept.extend(draw_share(samples(cfg.work_batch())))   # this rank's share
    if smp_names:
        rest = order[n:] if len(order) > n else order  # training examples not in the floor, when there are any
        validation = train.x[rest[:PARZEN_VALIDATION]]
        if cfg.floor or samples is None:
            floors.update(sample_metrics(floor_x, smp_names, validation, test, reference))
        if samples is not None:
            values.update(sample_metrics(gather_samples(kept, n), smp_names, validation, test, reference))
    for key in (values if samples is not None else floors):
        v, s = values.get(key, (float("nan"), None))
        f, fs = floors.get(key, (None, None))
        report.rows.append(MetricRow(key, v, s, f, fs))
    if mdl_names:
        assert model is not None    # model metrics are resolved only from a model's metric_names
        subset = Dataset(x=reference, y=None if test.y is None else test.y[ref_idx], name=test.name, kind=test.kind,
                         num_classes=test.num_classes, modes=test.modes, mode_std=test.mode_std)
        report.rows += _model_metric_rows(model, mdl_names, subset, model_options, n, cfg)
    return report


def _extractor_for(cfg: EvalConfig, test: Dataset) -> F.FeatureExtractor:
    """The feature extractor cfg names, or the default one for the test split's data."""
    name = cfg.extractor or F.default_extractor(test.name, test.kind, tuple(test.x.shape[1:]))
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    return F.get_extractor(name, weights=cfg.extractor_weights or None, device=device)


def _measure_features(extractor: F.FeatureExtractor, feat_names: list[str], cfg: EvalConfig, reference: torch.Tensor,
                      floor_x: torch.Tensor, samples: Callable[[int], Iterator[torch.Tensor]] | None, n: int,
                      values: dict, floors: dict, kept: list[torch.Tensor] | None) -> None:
    """The feature metrics: the test features against the floor's (into `floors`, when cfg.floor or
    no samples) and against the samples' (into `values`); the samples pass into `kept` on their way
    when it is a list (the sample metrics need them)."""
    want_probs = "is" in feat_names
    ref = extract_rows(extractor, reference, cfg.work_batch(), "features: test", want_probs, cfg.progress)
    if cfg.floor or samples is None:
        fl = extract_rows(extractor, floor_x, cfg.work_batch(), "features: train", want_probs, cfg.progress)
        floors.update(feature_metrics(ref, fl, feat_names, extractor, cfg))
    if samples is not None:
        def tee(it):
            for x in it:
                if kept is not None:
                    kept.append(x)
                yield x

        gen = extract_share(extractor, tee(samples(cfg.work_batch())), n, "features: samples", want_probs,
                                  progress=False)    # this rank's share of the samples, all features gathered
        values.update(feature_metrics(ref, gen, feat_names, extractor, cfg))


def _model_metric_rows(model: GenerativeModel, names: list[str], subset: Dataset, model_options: Any, n: int,
                       cfg: EvalConfig) -> list[MetricRow]:
    """The rows of the model's own metrics on the test subset, each with a generator seeded by cfg.seed + 2."""
    rows = []
    for name in names:
        g = torch.Generator(device=model.device).manual_seed(cfg.seed + 2)
        results = model.evaluate(name, subset, model_options, n=n, batch_size=cfg.work_batch(), k=cfg.k,
                                 generator=g, progress=cfg.progress)
        rows += [MetricRow(f"{name}:{key}" if key != name else name, float(v)) for key, v in results.items()]
    return rows
