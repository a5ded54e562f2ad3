"""Seeing what a run did: `write_report(run_dir)` writes RUN_DIR/report.html; `find_runs` and
`summarize` list run directories (`genmodels report`, `genmodels runs`)."""

from genmodels.report.report import write_report
from genmodels.report.runs import RunSummary, find_runs, format_runs, summarize

__all__ = ["RunSummary", "find_runs", "format_runs", "summarize", "write_report"]
