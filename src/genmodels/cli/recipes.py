"""`genmodels recipes [NAME]`: the shipped run recipes (`genmodels train --recipe NAME` starts from one).

Without NAME: one line per recipe (name, model, data, what it is). With NAME: its whole comment
block (what it reproduces, the figure it reached, the time and the machine) and its config.
"""

from __future__ import annotations

import argparse

import tomli_w

from genmodels.atomic import json_report
from genmodels.recipes import load_recipe, recipe_names


def register(subparsers) -> None:
    p = subparsers.add_parser("recipes", help="list the shipped run recipes", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="show this recipe in full")
    p.add_argument("--json", action="store_true", help="print as JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    recipes = [load_recipe(args.name)] if args.name else [load_recipe(n) for n in recipe_names()]
    if args.json:
        print(json_report([{"name": r.name, "model": r.config.model_name, "data": r.config.data.name,
                           "description": r.description, "config": r.config.to_dict()} for r in recipes], indent=2))
        return 0
    if args.name:
        r = recipes[0]

        print(r.description + "\n")
        config = r.config.to_dict()
        config.pop("out", None)
        print(tomli_w.dumps(config))
        return 0
    rows = [(r.name, r.config.model_name, r.config.data.name, r.summary) for r in recipes]
    widths = [max(len(row[i]) for row in rows + [("name", "model", "data", "")]) for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "model", "data"), widths, strict=True)) + "  what it is")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    print("\nStart from one with `genmodels train --recipe NAME --out RUN_DIR [flags]` (flags override it).")
    return 0
