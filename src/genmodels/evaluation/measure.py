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
        assert model is not None    # model metrics are resolved only from a model's metric_names
        g = torch.Generator(device=model.device).manual_seed(cfg.seed + 2)
        subset = Dataset(x=reference, y=None if test.y is None else test.y[ref_idx], name=test.name, kind=test.kind,
                         num_classes=test.num_classes, modes=test.modes, mode_std=test.mode_std)
        results = model.evaluate(name, subset, model_options, n=n, batch_size=cfg.work_batch(), k=cfg.k,
                                 generator=g, progress=cfg.progress)
        for key, v in results.items():
            report.rows.append(MetricRow(f"{name}:{key}" if key != name else name, float(v)))
    return report
