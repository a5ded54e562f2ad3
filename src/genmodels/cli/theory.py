"""`genmodels theory [--json] [--plots DIR]`: every proposition of the seed checked numerically.

Prints one line per claim (claim, value, expected, tolerance, pass/fail) with what was computed
underneath, and writes the figures theory_*.png to --plots DIR. Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time

import torch

from genmodels.atomic import json_report
from genmodels.errors import ConfigError, choice_error
from genmodels.theory.runner import checks
from genmodels.training.hardware import threads_warning, usable_cores

COLUMNS = (("claim", 44), ("value", 11), ("expected", 26), ("tolerance", 10), ("result", 6))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", help="check the seed's propositions and theorems numerically",
        description=__doc__.strip().splitlines()[0] + "\n\n" + "\n".join(__doc__.strip().splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table (default: off)")
    p.add_argument("--plots", default=None, metavar="DIR", help="write the figures theory_*.png here (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the checks' random generators (default: 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads while the checks run (default: 1; they are many small operations, "
                        "for which more threads only add overhead)")
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated subset of checks to run (default: all; see the names with --only list)")
    p.set_defaults(func=run)


def _row(values) -> str:
    return "  ".join(str(v)[:w].ljust(w) for v, (_, w) in zip(values, COLUMNS, strict=True)).rstrip()


def print_row(check, out=None) -> None:
    """One table line and the wrapped description of what was computed."""
    out = out or sys.stdout
    print(_row((check.claim, f"{check.value:.3g}", check.expected, f"{check.tolerance:.3g}",
                "pass" if check.passed else "FAIL")), file=out)
    for line in textwrap.wrap(check.computed, width=100):
        print("    " + line, file=out)
    if check.plot:
        print(f"    plot: {check.plot}", file=out)
    out.flush()


def run(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    warning = threads_warning(args.threads, "--threads")
    if warning:
        print(warning, file=sys.stderr)
    previous = torch.get_num_threads()
    torch.set_num_threads(min(args.threads, usable_cores()))
    try:
        return _run(args)
    finally:
        torch.set_num_threads(previous)


def _run(args: argparse.Namespace) -> int:
    available = checks(args.plots, args.seed)
    names = [name for name, _ in available]
    if args.only is not None:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        if wanted == ["list"]:
            print("\n".join(names))
            return 0
        for w in wanted:
            if w not in names:
                raise choice_error("check", w, names)
        available = [(n, f) for n, f in available if n in wanted]
    start = time.perf_counter()
    if not args.json:
        print(_row([name for name, _ in COLUMNS]))
        print(_row(["-" * w for _, w in COLUMNS]))
    results = []
    for _, thunk in available:
        out = thunk()
        for check in out if isinstance(out, list) else [out]:
            results.append(check)
            if not args.json:
                print_row(check)
    elapsed = time.perf_counter() - start
    passed = sum(c.passed for c in results)
    if args.json:
        print(json_report({"checks": [c.to_dict() for c in results], "passed": passed, "total": len(results),
                          "seconds": round(elapsed, 2)}, indent=2))
    else:
        print(f"\n{passed}/{len(results)} checks passed in {elapsed:.1f} s")
    return 0 if passed == len(results) else 1
