"""`genmodels evaluate SOURCE --metrics fd,kid,prdc,is [--n 10000] [--json]`: measure a trained model.

SOURCE is a run directory written by `genmodels train` or zoo:NAME, a model shipped with the
package (`genmodels zoo` lists them). Samples the model (a run's EMA weights by default), compares
the samples with the data set's test split and prints each figure beside the real-data floor
(real test vs real train, same sizes). Also:
  genmodels evaluate --real-vs-real DATASET                 the floor alone
  genmodels evaluate --samples FILE.npy --data DATASET      samples from a file (as written by
                                                            `genmodels sample --out FILE.npy`)
Metrics: fd (FD-<extractor>; FID only with --extractor inception), kid, prdc (precision, recall,
density, coverage), is, modes (2-D mixtures), parzen, and the model's own (e.g. nll, elbo).
The model's sampling options are the flags of `genmodels sample` (`--sampler dpm++ --steps 20`, listed
by `genmodels evaluate SOURCE --help`), or --sample-option KEY=VALUE (repeatable); the options of
the model's own metrics (DDPM: --nll-estimates, --ode-trace, ...) are listed there too.
The engine is `genmodels.evaluation` (`genmodels.evaluate(...)` in Python).
"""

from __future__ import annotations

import argparse

from genmodels import evaluation
from genmodels.atomic import json_report
from genmodels.cli import add_config_flags, flag_values
from genmodels.cli.sample_flags import add_sample_flags, given_evaluate, option_strings, read_given
from genmodels.config import update_dataclass
from genmodels.config_fields import validate_options
from genmodels.metrics.evaluate import EvalConfig
from genmodels.run.sample_options import ALIAS
from genmodels.training import distributed


def register(subparsers, argv: list[str] | None = None) -> None:
    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("evaluate", help="metrics of a run or of samples, beside the real-data floor",
                              description=lines[0] + "\n\n" + "\n".join(lines[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="?", default=None, metavar="SOURCE",
                   help="a run directory written by `genmodels train`, or zoo:NAME (a model shipped with the package; "
                        "`genmodels zoo` lists them)")
    p.add_argument("--real-vs-real", default=None, metavar="DATASET",
                   help="print the real-data floor of DATASET alone")
    p.add_argument("--samples", default=None, metavar="FILE.npy",
                   help="evaluate samples from a .npy file (needs --data)")
    p.add_argument("--data", default=None, metavar="DATASET", help="the data set the --samples are compared with")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--ema", default=True, action=argparse.BooleanOptionalAction,
                   help="use the run's EMA weights when it kept them")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read zoo:NAME from DIR (written by `genmodels zoo export --dest DIR`) "
                        "instead of the package's zoo")
    p.add_argument("--checkpoint", default=None, metavar="FILE.pt", help="a checkpoint other than the run's latest "
                   "(run directories only)")
    group = p.add_argument_group("evaluation settings")
    own = option_strings(p) | {ALIAS}
    mapping = add_config_flags(group, EvalConfig, dest_prefix="eval__", taken=own, rename_prefix="eval")
    add_sample_flags(p, argv, evaluate=True)
    p.set_defaults(func=run, eval_flags=mapping)


def _config(args: argparse.Namespace):
    cfg = EvalConfig()
    update_dataclass(cfg, flag_values(args, args.eval_flags), "evaluate")
    validate_options(cfg, "evaluate")
    return cfg


def run(args: argparse.Namespace) -> int:
    evaluation.source.check_one_mode(args.run_dir, args.real_vs_real, args.samples, args.data)
    cfg = _config(args)
    with distributed.session(cfg.device) as (info, device):   # under torchrun: each rank its share, rank 0 prints
        if info.enabled:
            cfg.device = str(device)             # each rank's own GPU (cuda:LOCAL_RANK) or the CPU
        if args.real_vs_real is not None:
            report = evaluation.evaluate_floor(args.real_vs_real, cfg)
        elif args.samples is not None:
            report = evaluation.evaluate_file(args.samples, args.data, cfg)
        else:
            given = read_given(args)                 # the sample options, built and checked once
            report = evaluation.evaluate_source(args.run_dir, cfg, given.values, given_evaluate=given_evaluate(args),
                                                ema=args.ema, checkpoint=args.checkpoint, zoo_root=args.zoo_root,
                                                options=given.options, record=args.source_record)
    if info.is_main:
        print(json_report(report.to_dict(), indent=2) if args.json else report.format_table())
    return 0
