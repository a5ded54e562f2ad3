"""Train the digit classifier that defines FD-mnist / FD-fashion-mnist, reproducibly.

    python -m genmodels.metrics.train_classifier --data mnist --out src/genmodels/assets/mnist_classifier.safetensors

Full training split (60,000 images), AdamW with a cosine learning-rate decay, a fixed seed
driving one explicit `torch.Generator` (weight init and shuffling; no dropout, no global RNG).
The test split is used once, at the end, to state the accuracy written into the card
(`<out>.json`). Same seed, same torch version, same thread count -> the same weights.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from genmodels.config_fields import check_choices, param, require
from genmodels.data import load
from genmodels.errors import DataError
from genmodels.metrics.classifier import ClassifierCard, DigitClassifier, init_weights, save_classifier

DATASETS = ("mnist", "fashion-mnist", "mnist5k")


@dataclass
class ClassifierTrainConfig:
    data: str = param("mnist", "built-in data set to train on", choices=DATASETS)
    out: str = param("mnist_classifier.safetensors", "where to write the weights (a .json card goes next to it)")
    epochs: int = param(4, "passes over the training split")
    batch_size: int = param(128, "minibatch size")
    lr: float = param(2e-3, "Adam learning rate at the start of the cosine decay")
    weight_decay: float = param(1e-4, "AdamW weight decay")
    seed: int = param(0, "seed of the one generator used for init and shuffling")
    threads: int = param(1, "torch CPU threads (fixed, since the thread count changes the float sums)")

    def validate(self) -> None:
        check_choices(self)
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.threads >= 1, f"threads must be >= 1, got {self.threads}")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of (N, 1, 28, 28) images `x` whose argmax logit equals the label `y` (N,)."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return correct / len(x)


def train(
    x: torch.Tensor, y: torch.Tensor, cfg: ClassifierTrainConfig, generator: torch.Generator, num_classes: int = 10
) -> DigitClassifier:
    """Fit a DigitClassifier on images x (N, 1, 28, 28) in [-1, 1] with labels y (N,) by
    cross-entropy; init and minibatch order come from `generator`."""
    model = DigitClassifier(num_classes=num_classes)
    init_weights(model, generator)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    bar = tqdm(total=total, desc=f"train classifier ({cfg.data})", unit="step")
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    bar.close()
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m genmodels.metrics.train_classifier",
                                     description=__doc__.splitlines()[0])
    for f in fields(ClassifierTrainConfig):
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
            choices=f.metadata.get("choices"), help=f.metadata["help"],
        )
    cfg = ClassifierTrainConfig(**vars(parser.parse_args(argv)))
    cfg.validate()

    torch.set_num_threads(cfg.threads)
    train_set, test_set = load(cfg.data, split="train"), load(cfg.data, split="test")
    if train_set.y is None or test_set.y is None:
        raise DataError(f"{cfg.data}: the classifier trains on labelled data, and this data set has no labels")
    num_classes = max(train_set.num_classes, 10)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = train(train_set.x, train_set.y, cfg, generator, num_classes)
    acc = accuracy(model, test_set.x, test_set.y)
    command = "python -m genmodels.metrics.train_classifier " + " ".join(shlex.quote(a) for a in argv)
    card = ClassifierCard(
        dataset=cfg.data, test_accuracy=acc, num_classes=num_classes, command=command,
        extra={"train_size": len(train_set), "test_size": len(test_set), "epochs": cfg.epochs, "seed": cfg.seed,
               "torch": torch.__version__, "threads": cfg.threads},
    )
    card_path = save_classifier(model, card, Path(cfg.out))
    print(f"test accuracy on {cfg.data} ({len(test_set)} held-out images): {acc:.4f}; wrote {cfg.out} and {card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
