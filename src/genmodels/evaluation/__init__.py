"""Evaluating trained models: the engine of `genmodels evaluate` and `genmodels compare` (and of
`genmodels.evaluate(...)` / `genmodels.compare(...)`).

    measure.py   the driver: samples -> features -> metrics beside the real-data floor; the
                 model's own metrics through `model.evaluate(metric, data, options, ...)`
    source.py    a source (run directory or zoo:NAME), a samples file or the floor alone -> EvalReport
    compare.py   several sources on one data set -> report.compare.CompareTable
    report.py    EvalReport: the rows, printed as a table or JSON

The metric maths and the shared settings live below the models, in `genmodels.metrics`; sampling
is `genmodels.sampling`.
"""

from genmodels.evaluation.compare import compare_sources
from genmodels.evaluation.measure import evaluate
from genmodels.evaluation.report import EvalReport, MetricRow
from genmodels.evaluation.source import (
    evaluate_file,
    evaluate_floor,
    evaluate_loaded,
    evaluate_source,
    evaluation_data,
    load_for_evaluation,
)

__all__ = ["EvalReport", "MetricRow", "compare_sources", "evaluate", "evaluate_file", "evaluate_floor",
           "evaluate_loaded", "evaluate_source", "evaluation_data", "load_for_evaluation"]
