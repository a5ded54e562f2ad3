"""`genmodels runs [DIR]`: list the run directories under DIR (default: runs/, else the current
folder) with model, data, steps, the last logged losses and the last evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path

from genmodels.atomic import json_report
from genmodels.report.runs import find_runs, format_runs, summarize


def register(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list run directories with their last losses and metrics",
                              description=__doc__.strip())
    p.add_argument("dir", nargs="?", default=None, metavar="DIR",
                   help="folder to search for runs (default: runs/ when it exists, else .)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir) if args.dir is not None else (Path("runs") if Path("runs").is_dir() else Path("."))
    runs = [summarize(p) for p in find_runs(root)]
    if args.json:
        print(json_report([r.to_dict() for r in runs], indent=2))
    elif not runs:
        print(f"no runs under {root} (a run is a folder with config.toml, written by `genmodels train`)")
    else:
        print(format_runs(runs, root))
    return 0
