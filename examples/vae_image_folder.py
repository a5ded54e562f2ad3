"""Train a VAE on a folder of your own images with the Python API and look at its
reconstructions and interpolations in the run report.

    python examples/vae_image_folder.py --images path/to/folder     # your images (png/jpg, any sizes); 3,000 steps
    python examples/vae_image_folder.py                             # writes a demo folder of digits first
    python examples/vae_image_folder.py --quick                     # a few steps: checks that it runs

The folder may hold images at its top level or one sub-folder per class; images are scaled and
centre-cropped to --size pixels and converted to grey (--channels 1) or RGB (--channels 3).
Then open RUN_DIR/report.html in a browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genmodels.atomic import atomic_file
from genmodels.config import RunConfig
from genmodels.data import load, load_config
from genmodels.report import write_report
from genmodels.run import build_model
from genmodels.training import Trainer


def write_demo_folder(folder: Path, n: int) -> Path:
    """n digits of the built-in `digits` set as PNG files in one sub-folder per class."""
    from PIL import Image

    digits = load("digits")
    for i in range(n):
        pixels = ((digits.x[i, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
        path = folder / str(int(digits.y[i])) / f"{i:04d}.png"
        with atomic_file(path) as f:
            Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(f, format="PNG")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=None, help="folder of images (default: a demo folder of digits)")
    parser.add_argument("--out", default="runs/example-vae-folder", help="run directory to create")
    parser.add_argument("--size", type=int, default=16, help="image height and width after resizing")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3), help="1 = grey, 3 = RGB")
    parser.add_argument("--quick", action="store_true", help="a short run with small settings (for tests)")
    args = parser.parse_args(argv)

    images = Path(args.images) if args.images else write_demo_folder(Path(args.out) / "demo-images",
                                                                     200 if args.quick else 1437)
    # A Gaussian decoder suits photographs and other grey-level images (data in [-1, 1]);
    # `decoder = "bernoulli"` is the choice for (nearly) binary images such as MNIST.
    config = RunConfig.default("vae").merge({
        "out": args.out,
        "data": {"name": str(images), "image_size": args.size, "channels": args.channels},
        "trainer": {"steps": 20 if args.quick else 3000, "batch_size": 64, "log_every": 5 if args.quick else 50,
                    "sample_every": 20 if args.quick else 500, "progress": not args.quick},
        "model": {"decoder": "gaussian", "latent_dim": 2 if args.quick else 16,
                  "hidden": [64] if args.quick else [500, 500]},
    }, "example")
    config.validate()

    train = load_config(config.data, "train", seed=config.seed)
    print(f"{len(train)} training images of shape {tuple(train.x.shape[1:])} from {images}")
    model = build_model(config, train.spec, torch.device("cpu"))
    result = Trainer(config, on_finish=write_report).fit(model, train)  # writes RUN_DIR/report.html at the end
    print(f"trained to step {result.step}: {result.values}")
    print(f"report: {Path(args.out) / 'report.html'} (reconstructions and interpolations of held-out images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
