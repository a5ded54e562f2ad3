"""`genmodels ema RUN_DIR --sigma-rel 0.05,0.1,0.15 [--step N] [--pick]`: choose the EMA length after
training (Karras et al. 2024, post-hoc EMA). A run trained with `--set trainer.ema_sigma_rels=0.05,0.1`
stores its power-function EMAs at every checkpoint (RUN_DIR/ema/); this rebuilds the average of each
relative width sigma_rel asked for, at step N (default: the last stored), as a checkpoint
RUN_DIR/checkpoints/posthoc_sigmaS_step_XXXXXXX.pt that `sample`, `evaluate` and `zoo export` read with
`--checkpoint`. With --pick each is measured by `genmodels evaluate` (FD against the held-out test
split, with the run's sampling defaults or --sample-option KEY=VALUE, --n samples), the table is
printed and the best one is recorded in RUN_DIR/ema/best.json.
"""

from __future__ import annotations

import argparse
import json
import math

from genmodels.api import evaluate
from genmodels.atomic import write_text
from genmodels.config import MAX_SIGMA_REL
from genmodels.errors import ConfigError
from genmodels.run import RunDir
from genmodels.run.sample_options import ALIAS, parse_pairs
from genmodels.training.posthoc_ema import posthoc_checkpoint

MAX_N = 100_000


def _sigma_rels(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--sigma-rel: expected comma-separated numbers, got {text!r}") from None
    if not values or any(not (0.0 < v < MAX_SIGMA_REL) or not math.isfinite(v) for v in values):
        raise ConfigError(f"--sigma-rel: each value must be in (0, {MAX_SIGMA_REL}), got {text!r}")
    return values


def register(subparsers) -> None:
    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("ema", help="rebuild a run's EMA at other lengths after training (post-hoc EMA)",
                              description="\n".join(lines), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run trained with trainer.ema_sigma_rels")
    p.add_argument("--sigma-rel", required=True, metavar="S[,S...]",
                   help=f"relative widths of the averages to rebuild, each in (0, {MAX_SIGMA_REL}) (required)")
    p.add_argument("--step", type=int, default=None, metavar="N", help="the step to rebuild at (default: the last "
                                                                       "stored)")
    p.add_argument("--pick", action="store_true", help="measure each by FD and record the best (default: off)")
    p.add_argument("--n", type=int, default=1000, metavar="N", help="samples per FD with --pick (default: 1000)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the samples with --pick (default: 0)")
    p.add_argument("--extractor", default="", metavar="NAME",
                   help="feature extractor of the FD with --pick, as `genmodels evaluate --extractor` (default: the "
                        "data set's)")
    p.add_argument(ALIAS, action="append", default=[], metavar="KEY=VALUE",
                   help="a sampling option of the FD with --pick, over the run's recorded defaults, as `genmodels "
                        "evaluate --sample-option` (repeatable; default: none)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sigma_rels = _sigma_rels(args.sigma_rel)
    if not 1 <= args.n <= MAX_N:
        raise ConfigError(f"--n must be in 1..{MAX_N}, got {args.n}")
    if args.step is not None and args.step < 1:
        raise ConfigError(f"--step must be >= 1, got {args.step}")
    rows = []
    for s in sigma_rels:
        path = posthoc_checkpoint(args.run_dir, s, args.step)
        row: dict = {"sigma_rel": s, "checkpoint": str(path)}
        if args.pick:
            report = evaluate(args.run_dir, checkpoint=path, metrics="fd", n=args.n, seed=args.seed,
                              extractor=args.extractor, sample_options=parse_pairs(args.sample_option) or None)
            name, value = next((r.name, r.value) for r in report.rows if r.name.startswith("FD"))
            row.update(metric=name, value=value, floor=next(r.floor for r in report.rows if r.name == name))
        rows.append(row)
    best = min(rows, key=lambda r: r["value"]) if args.pick else None
    if best is not None:
        write_text(RunDir(args.run_dir).ema_snapshots / "best.json", json.dumps(best, indent=2, allow_nan=False))
    if args.json:
        print(json.dumps({"rows": rows, "best": best}, indent=2, allow_nan=False))
        return 0
    for row in rows:
        score = f"  {row['metric']} {row['value']:.2f} (floor {row['floor']:.2f})" if args.pick else ""
        mark = "  <- best" if row is best else ""
        print(f"sigma_rel {row['sigma_rel']:g}: {row['checkpoint']}{score}{mark}")
    return 0
