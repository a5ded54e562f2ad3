"""Train the GAN of Algorithm 2.1 on ring8 (8 Gaussians on a circle) with the Python API, count
the modes it captures beside the real-data floor, draw its decision surface, and write the
run report.

    python examples/gan_ring8.py                   # 8,000 steps: a few minutes on a 2-core CPU
    python examples/gan_ring8.py --quick           # a few steps with small settings: checks that it runs
    python examples/gan_ring8.py --loss wasserstein --out runs/my-wgan

Then open RUN_DIR/report.html in a browser.
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
from genmodels.report import write_report
from genmodels.run import build_model, load_run
from genmodels.sampling import sample_batches
from genmodels.training import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/example-gan-ring8", help="run directory to create")
    parser.add_argument("--loss", default="nonsaturating", help="GAN objective (see `genmodels train gan --help`)")
    parser.add_argument("--quick", action="store_true", help="a short run with small settings (for tests)")
    args = parser.parse_args(argv)

    config = RunConfig.default("gan").merge({
        "out": args.out,
        "data": {"name": "ring8"},
        "trainer": {"steps": 20 if args.quick else 8000, "batch_size": 100, "log_every": 5 if args.quick else 50,
                    "sample_every": 20 if args.quick else 1000, "sample_n": 300 if args.quick else 1000,
                    "progress": not args.quick, "report": False},
        # the settings that cover all 8 modes (docs/gan.md): z in R^2, batch norm in G, MLPs 4 x 400,
        # Adam 1e-4 with DCGAN betas, batch 100
        "model": {"loss": args.loss, "z_dim": 2, "g_batchnorm": True, "mlp_width": 32 if args.quick else 400,
                  "mlp_depth": 4, "lr_g": 1e-4, "lr_d": 1e-4, "betas": "dcgan"},
    }, "example")
    config.validate()

    train = load_config(config.data, "train", seed=config.seed)
    device = torch.device("cpu")
    result = Trainer(config).fit(build_model(config, train.spec, device), train)
    print(f"trained to step {result.step}: {result.values}")

    # Modes captured and high-quality samples (VEEGAN's protocol) beside the real-data floor.
    run = load_run(args.out, device=device)
    test = load("ring8", split="test", seed=config.seed)
    n = 300 if args.quick else 2000
    generator = torch.Generator(device=device).manual_seed(0)
    report = evaluate(train, test, EvalConfig(metrics="fd,modes", n=n, progress=False),
                      samples=lambda bs: sample_batches(run.model, n, bs, generator, (2,), progress=False, clamp=False),
                      n_samples=n, title=f"GAN ({args.loss}) on ring8, step {run.step}")
    print(report.format_table())
    write_text(result.run_dir / "eval.json", json.dumps(report.to_dict(), indent=2))  # atomic, as the run's own files

    # The report draws D's decision surface (RUN_DIR/views/decision_surface.png) from the checkpoint.
    print(f"report: {write_report(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
