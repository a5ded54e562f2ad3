"""`genmodels zoo [NAME] [--json]`: the trained models shipped with the package; `genmodels zoo export`.

  genmodels zoo                       list the entries (name, family, data, parameters, metrics, size)
  genmodels zoo NAME                  show one entry's card (how it was made, its metrics, its config)
  genmodels zoo record NAME --metrics FILE.json [--command KEY=TEXT ...]
                                      add measured metrics (`genmodels evaluate --json` or `genmodels compare
                                      --json` output) to an entry's card; its weights stay as they are
  genmodels zoo export RUN_DIR --name NAME [--dtype bf16|fp16|fp32] [--recipe R] [--metrics FILE.json ...]
                [--note TEXT] [--command KEY=TEXT ...] [--networks all|sampling] [--dest DIR] [--force]
                                      write an entry from a run directory (its EMA weights where it kept them;
                                      --networks sampling: only the networks sampling needs, e.g. no GAN D)
Every command that reads a run directory also takes `zoo:NAME`: `genmodels sample zoo:NAME --n 64
--out grid.png`, `genmodels evaluate zoo:NAME`, `genmodels train --init zoo:NAME`. --zoo-root DIR
reads the entries of another folder (one written by `genmodels zoo export --dest DIR`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

import tomli_w

from genmodels.atomic import json_report
from genmodels.cli import require_arg
from genmodels.errors import ConfigError, GenmodelsError
from genmodels.run.sample_options import parse_pairs
from genmodels.zoo import (
    CARD,
    WEIGHTS,
    ZooNetworks,
    export_run,
    metrics_summary,
    read_card,
    read_metrics_file,
    record_metrics,
    zoo_card,
    zoo_names,
    zoo_root,
)

EXPORT_ONLY = ("dtype", "recipe", "metrics", "note", "command", "networks", "dest", "force", "checkpoint")


def register(subparsers) -> None:
    lines = __doc__.strip().splitlines()
    p = subparsers.add_parser("zoo", help="list, show and export the trained models shipped with the package",
                              description=lines[0] + "\n\n" + "\n".join(lines[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="*", metavar="NAME | export RUN_DIR | record NAME",
                   help="an entry to show, `export RUN_DIR` to make one, or `record NAME` to add measured metrics "
                        "to one (default: list the entries)")
    p.add_argument("--json", action="store_true", help="print the list or the card as JSON")
    p.add_argument("--zoo-root", default=None, metavar="DIR",
                   help="read the entries of DIR instead of the package's zoo (default: the package's)")
    g = p.add_argument_group("export options (genmodels zoo export RUN_DIR ...)")
    g.add_argument("--name", default=None, metavar="NAME", help="the entry's name (required)")
    g.add_argument("--dtype", default=None, choices=("bf16", "fp16", "fp32"),
                   help="dtype of the stored floating-point tensors; loading casts them back to the model's "
                        "(default: bf16)")
    g.add_argument("--recipe", default=None, metavar="R", help="the recipe the run was trained from (default: none)")
    g.add_argument("--metrics", action="append", default=None, metavar="FILE.json",
                   help="measured metrics: `genmodels evaluate --json` output, `genmodels compare --json` "
                        "output (the entry's row) or a {name: number} table; "
                        "repeatable, the files are merged (default: none)")
    g.add_argument("--note", default=None, metavar="TEXT", help="free text for the card (default: empty)")
    g.add_argument("--command", action="append", default=None, metavar="KEY=TEXT",
                   help="a command that made the entry, e.g. \"evaluate=genmodels evaluate RUN_DIR --metrics fd\" "
                        "(repeatable; default: a train command derived from the run's config)")
    g.add_argument("--networks", default=None, choices=get_args(ZooNetworks),
                   help="which networks to store: all (what `train --init zoo:NAME` needs to fine-tune) or "
                        "sampling (only those sampling and sample-based evaluation need, e.g. a GAN's generator "
                        "without its discriminator: a smaller entry) (default: all)")
    g.add_argument("--dest", default=None, metavar="DIR",
                   help="the zoo folder to write into (default: --zoo-root, else the installed package's zoo)")
    g.add_argument("--force", action="store_true", help="replace an existing entry of that name")
    g.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="export this checkpoint of the run, e.g. one `genmodels ema` rebuilt (default: the latest)")
    g.add_argument("--sample-option", action="append", default=None, metavar="KEY=VALUE",
                   help="a sampling option the entry uses by default in `genmodels sample` / `evaluate` "
                        "(e.g. sampler=dpm++); repeatable (default: the family's defaults)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = list(args.target)
    if target[:1] == ["export"]:
        return _export(args, target[1:])
    if target[:1] == ["record"]:
        return _record(args, target[1:])
    given = [f"--{k}" for k in EXPORT_ONLY if getattr(args, k) not in (None, False)]
    if args.name is not None:
        given.insert(0, "--name")
    if given:
        raise ConfigError(f"{', '.join(given)} go(es) with `genmodels zoo export RUN_DIR --name NAME`")
    if len(target) > 1:
        raise ConfigError(f"expected at most one entry name, got {' '.join(target)}")
    if target:
        return _show(target[0], args)
    return _list(args)


def _size_mb(folder: Path) -> float | None:
    path = folder / WEIGHTS
    return path.stat().st_size / 1e6 if path.is_file() else None


def _list(args: argparse.Namespace) -> int:
    root = args.zoo_root
    names = zoo_names(root)
    rows, cards = [], []
    for name in names:
        size = _size_mb(zoo_root(root) / name)
        try:
            card = zoo_card(name, root)
        except GenmodelsError as e:
            rows.append([name, "?", "?", "?", f"unreadable card: {e}", "-" if size is None else f"{size:.2f}"])
            cards.append({"name": name, "error": str(e)})
            continue
        cards.append({**card, "size_mb": None if size is None else round(size, 3)})
        rows.append([name, card["family"], str(card["data"]), _params(card["params"]), metrics_summary(card),
                     "-" if size is None else f"{size:.2f}"])
    if args.json:
        print(json_report(cards, indent=2))
        return 0
    if not names:
        where = f" at {root}" if root is not None else ""
        print(f"the zoo{where} is empty: no trained models ship with it yet "
              f"(`genmodels zoo export RUN_DIR --name NAME` adds one)")
        return 0
    head = ["name", "family", "data", "params", "metrics", "MB"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    for line in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    print(f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}; `genmodels zoo NAME` shows one, "
          f"`genmodels sample zoo:NAME --n 64 --out grid.png` samples it")
    return 0


def _params(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(n)


def _show(name: str, args: argparse.Namespace) -> int:
    card = zoo_card(name, args.zoo_root)
    size = _size_mb(zoo_root(args.zoo_root) / name)
    if args.json:
        print(json_report({**card, "size_mb": None if size is None else round(size, 3)}, indent=2))
        return 0
    minutes = card.get("train_cpu_minutes")
    lines = [
        f"zoo:{card['name']}: {card['family']} on {card['data']}, step {card['step']}, {_params(card['params'])} "
        f"parameters",
        f"  weights     {card['dtype']}{' (EMA)' if card['ema'] else ''}, "
        f"{'-' if size is None else f'{size:.2f} MB'}, sha256 {card['sha256']}",
        f"  networks    {', '.join(card['networks']) if card.get('networks') else 'all'}",
        f"  training    {'-' if minutes is None else f'{minutes:.3g} CPU-minutes'}"
        f"{', recipe ' + card['recipe'] if card.get('recipe') else ''}",
    ]
    for key, command in (card.get("commands") or {}).items():
        lines.append(f"  {key:<11} {command}")
    if card.get("sample_options"):
        lines.append("  sampling    " + ", ".join(f"{k} = {v}" for k, v in card["sample_options"].items())
                     + " (the entry's defaults; flags override)")
    metrics = card.get("metrics") or {}
    if metrics:
        lines.append("  metrics")
        for metric, record in metrics.items():
            if isinstance(record, dict):
                value = record.get("value")
                extra = ", ".join(f"{k} {v}" for k, v in record.items() if k != "value")
                lines.append(f"    {metric:<12} {value}{'  (' + extra + ')' if extra else ''}")
            else:
                lines.append(f"    {metric:<12} {record}")
    else:
        lines.append("  metrics     none measured")
    if card.get("note"):
        lines.append(f"  note        {card['note']}")
    lines.append("  config (the run's config.toml tables):")
    lines += ["    " + line if line else "" for line in tomli_w.dumps(card["config"]).splitlines()]
    print("\n".join(lines).rstrip())
    return 0


def _export(args: argparse.Namespace, rest: list[str]) -> int:
    if len(rest) != 1:
        raise ConfigError("usage: genmodels zoo export RUN_DIR --name NAME [...] (one run directory)")
    name = require_arg(args.name, "--name")
    metrics: dict = {}
    for path in args.metrics or []:
        metrics.update(read_metrics_file(path, name))
    commands = _commands(args)
    sample_options = parse_pairs(args.sample_option or [])
    dest = args.dest if args.dest is not None else args.zoo_root
    folder = export_run(rest[0], name, dtype=args.dtype or "bf16", recipe=args.recipe, commands=commands,
                        metrics=metrics, note=args.note or "", dest=dest, overwrite=args.force,
                        sample_options=sample_options, networks=args.networks or "all", checkpoint=args.checkpoint)

    card = read_card(folder / CARD)
    size = (folder / WEIGHTS).stat().st_size
    print(f"exported {rest[0]} (step {card['step']}{', EMA weights' if card['ema'] else ''}) as zoo:{name}: "
          f"networks {', '.join(card['networks'])}, {card['params']} parameters in {card['dtype']}, "
          f"{size / 1e6:.2f} MB, sha256 {card['sha256'][:16]}...; "
          f"{folder}")
    if dest is not None:
        print(f"read it with --zoo-root {dest}, e.g. "
              f"genmodels sample zoo:{name} --zoo-root {dest} --n 64 --out grid.png")
    return 0


def _commands(args: argparse.Namespace) -> dict[str, str]:
    commands = {}
    for item in args.command or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ConfigError(f"--command {item!r}: expected KEY=TEXT, e.g. \"evaluate=genmodels evaluate RUN_DIR\"")
        commands[key.strip()] = text.strip()
    return commands


def _record(args: argparse.Namespace, rest: list[str]) -> int:
    if len(rest) != 1:
        raise ConfigError("usage: genmodels zoo record NAME --metrics FILE.json [--command KEY=TEXT ...] (one entry)")
    other = [f"--{k}" for k in EXPORT_ONLY if k not in ("metrics", "command", "dest")
             and getattr(args, k) not in (None, False)] + (["--name"] if args.name is not None else [])
    if other:
        raise ConfigError(f"{', '.join(other)} go(es) with `genmodels zoo export`; `zoo record` takes --metrics "
                          f"and --command")
    if not args.metrics:
        raise ConfigError("genmodels zoo record NAME needs --metrics FILE.json (what to add to the card)")
    name = rest[0]
    metrics: dict = {}
    for path in args.metrics:
        metrics.update(read_metrics_file(path, name))
    card = record_metrics(name, metrics, _commands(args), root=args.dest if args.dest is not None else args.zoo_root)
    print(f"zoo:{name}: {len(metrics)} metric(s) recorded ({', '.join(metrics)}); the card now holds "
          f"{len(card['metrics'])}; weights unchanged (sha256 {card['sha256'][:16]}...)")
    return 0
