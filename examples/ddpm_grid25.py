"""Train a DDPM on grid25 (25 Gaussians on a 5x5 grid) with the Python API, sample it with DDIM,
measure it beside the real-data floor, and write the run report.

    python examples/ddpm_grid25.py                 # 10,000 steps: about half an hour on a 2-core CPU
    python examples/ddpm_grid25.py --quick         # a few steps with small settings: checks that it runs
    python examples/ddpm_grid25.py --out runs/my-ddpm

Then open RUN_DIR/report.html in a browser, or run `genmodels runs` to list your runs.
"""

from __future__ import annotations

import argparse
import json

import torch

from genmodels.atomic import write_text
from genmodels.config import RunConfig
from genmodels.data import load, load_config
from genmodels.evaluation import evaluate
from genmodels.metrics.evaluate import EvalConfig
from genmodels.models.ddpm import DDPMSampleOptions
from genmodels.report import write_report
from genmodels.run import build_model, load_run
from genmodels.sampling import sample_batches
from genmodels.training import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/example-ddpm-grid25", help="run directory to create")
    parser.add_argument("--quick", action="store_true", help="a short run with small settings (for tests)")
    args = parser.parse_args(argv)

    # 1. The run config: the same values `genmodels train ddpm --data grid25 ...` would take.
    config = RunConfig.default("ddpm").merge({
        "out": args.out,
        "data": {"name": "grid25"},
        "trainer": {"steps": 30 if args.quick else 10000, "batch_size": 256, "log_every": 10 if args.quick else 100,
                    "sample_every": 30 if args.quick else 2000, "sample_n": 300 if args.quick else 2000,
                    "progress": not args.quick, "report": False},
        "model": {"T": 20 if args.quick else 1000, "mlp_width": 32 if args.quick else 256,
                  "mlp_depth": 2 if args.quick else 4},
    }, "example")
    config.validate()

    # 2. Train: the trainer fills the run directory (config, metrics, sample plots, checkpoints).
    train = load_config(config.data, "train", seed=config.seed)
    device = torch.device("cpu")
    model = build_model(config, train.spec, device)
    result = Trainer(config).fit(model, train)
    print(f"trained to step {result.step}: {result.values}")

    # 3. Reload the run (EMA weights) and measure 2,000 DDIM samples against the test split,
    #    with the real-data floor beside each figure; eval.json feeds the report's table.
    run = load_run(args.out, device=device, ema=True)
    test = load("grid25", split="test", seed=config.seed)
    n = 300 if args.quick else 2000
    generator = torch.Generator(device=device).manual_seed(0)
    options = DDPMSampleOptions(sampler="ddim", steps=5 if args.quick else 50)
    report = evaluate(train, test, EvalConfig(metrics="fd,prdc,modes", n=n, progress=False),
                      samples=lambda bs: sample_batches(run.model, n, bs, generator, (2,), options, progress=False,
                                                        clamp=False),
                      n_samples=n, title=f"DDPM on grid25, step {run.step}, DDIM-{options.steps}")
    print(report.format_table())
    write_text(result.run_dir / "eval.json", json.dumps(report.to_dict(), indent=2))  # atomic, as the run's own files

    # 4. The report: open it in a browser.
    print(f"report: {write_report(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
