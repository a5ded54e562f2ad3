"""`genmodels datasets`: the built-in data sets, their shapes and sizes, and whether each is installed.

`genmodels datasets NAME_OR_PATH ...` loads each one (both splits) and shows what a model would see.
`genmodels datasets NAME --export FILE.npy [--split test] [--n N]` writes N examples spread evenly
over a split (so a split ordered by class gives every class) as `genmodels sample --out FILE.npy`
would (images (N, C, H, W) in [0, 1]), e.g. held-out images for `genmodels sample RUN --inpaint FILE.npy`.
"""

from __future__ import annotations

import argparse

import torch

from genmodels.atomic import json_report
from genmodels.data.builtins import BUILTINS
from genmodels.data.files import PATH_HELP
from genmodels.errors import ConfigError
from genmodels.run import load_data
from genmodels.sampling import write_samples


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list the built-in data sets", description=__doc__)
    p.add_argument("data", nargs="*", metavar="NAME_OR_PATH",
                   help="load these built-ins or paths and describe them instead of listing the built-ins")
    p.add_argument("--json", action="store_true", help="print the list as JSON instead of a table")
    p.add_argument("--export", default=None, metavar="FILE.npy",
                   help="write --n examples spread evenly over --split of the one NAME_OR_PATH to FILE.npy")
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="the split --export reads (default: test)")
    p.add_argument("--n", default=16, type=int, metavar="N", help="examples --export writes (default: 16)")
    p.set_defaults(func=run)


def export(name_or_path: str, path: str, split: str, n: int) -> None:
    """n examples of one split, at indices spread evenly over it (i len / n), to a .npy file: images float32
    (n, C, H, W) in [0, 1], points (n, D)."""

    if not path.lower().endswith(".npy"):
        raise ConfigError(f"--export {path}: the file name must end in .npy")
    if n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    data = load_data(name_or_path, split=split)
    index = (torch.arange(min(n, len(data))) * len(data)) // min(n, len(data))
    write_samples(data.x[index], path, data.kind)
    print(f"wrote {len(index)} {split} examples of {name_or_path} to {path}")


def rows() -> list[dict]:
    """One plain dict per built-in (what the table and --json show)."""
    out = []
    for b in BUILTINS.values():
        installed = b.installed()
        out.append({
            "name": b.name, "kind": b.kind, "shape": list(b.shape), "train": b.sizes[0], "test": b.sizes[1],
            "classes": b.num_classes, "source": b.source, "installed": installed,
            "install": "" if installed else b.install,
        })
    return out


def describe(name_or_path: str) -> dict:
    """Load both splits of one data source and summarise them (raises DataError when it is bad)."""

    train, test = load_data(name_or_path, split="train"), load_data(name_or_path, split="test")
    return {"name": name_or_path, "kind": train.kind, "shape": list(train.spec.shape), "train": len(train),
            "test": len(test), "classes": train.num_classes, "source": train.meta.get("source", ""),
            "installed": True, "install": ""}


def run(args: argparse.Namespace) -> int:
    if args.export is not None:
        if len(args.data) != 1:
            raise ConfigError(f"--export needs exactly one NAME_OR_PATH, got {len(args.data)}")
        export(args.data[0], args.export, args.split, args.n)
        return 0
    table = [describe(d) for d in args.data] if args.data else rows()
    if args.json:
        print(json_report(table, indent=2))
        return 0
    header = ("name", "kind", "shape", "train", "test", "classes", "installed", "source")
    lines = [header]
    for r in table:
        installed = "yes" if r["installed"] else f"no: {r['install']}"
        shape = "x".join(str(s) for s in r["shape"])
        lines.append((r["name"], r["kind"], shape, str(r["train"]), str(r["test"]), str(r["classes"] or "-"),
                      installed, r["source"]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1])
    if not args.data:
        print(f"\nPaths work too: {PATH_HELP}.")
    return 0
