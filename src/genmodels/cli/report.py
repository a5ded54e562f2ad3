"""`genmodels report RUN_DIR`: write RUN_DIR/report.html, a self-contained page (no network)
with the config, loss curves, sample grids over training, the model's own views and the
evaluation table (RUN_DIR/eval.json, written by `genmodels evaluate RUN_DIR --json > RUN_DIR/eval.json`).
"""

from __future__ import annotations

import argparse

from genmodels.report import write_report
from genmodels.run import resolve_device


def register(subparsers) -> None:
    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("report", help="write RUN_DIR/report.html, a page that shows what a run did",
                              description="\n".join(lines), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `genmodels train`")
    p.add_argument("--out", default=None, metavar="FILE.html",
                   help="write the page here instead (default: RUN_DIR/report.html)")
    p.add_argument("--views", default=True, action=argparse.BooleanOptionalAction,
                   help="draw the model's views from the latest checkpoint (default: true)")
    p.add_argument("--device", default="cpu", metavar="DEVICE", help="device for drawing the views (default: cpu)")
    p.add_argument("--seed", default=0, type=int, metavar="S", help="seed of the views' generator (default: 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = write_report(args.run_dir, views=args.views, device=str(resolve_device(args.device)), seed=args.seed,
                        out=args.out)
    print(f"wrote {path}")
    return 0
