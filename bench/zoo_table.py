"""`python -m bench.zoo_table`: the table of the shipped zoo entries, written from their cards.

Reads every `genmodels/zoo/models/NAME/card.json` of the installed package (nothing else, no
weights) and prints a markdown table: name, family, data, parameters, size, training CPU-minutes
and the precision the run trained in, and the headline metrics each card records. docs/zoo.md
holds this table between two marker comments; `--write` rewrites that part of the page, and
tests/test_docs_figures.py checks that the page holds what this prints.

    python -m bench.zoo_table                 # print the table
    python -m bench.zoo_table --write         # rewrite it in docs/zoo.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import genmodels

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "zoo.md"
BEGIN, END = "<!-- zoo-table:begin (written by python -m bench.zoo_table) -->", "<!-- zoo-table:end -->"


def cards(root: Path | None = None) -> list[dict]:
    """The shipped cards, sorted by name (root: a zoo folder; default the installed package's)."""
    root = root or Path(genmodels.__file__).resolve().parent / "zoo" / "models"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*/card.json"))]


def _value(metrics: dict, name: str) -> float | None:
    entry = metrics.get(name)
    return None if entry is None else float(entry["value"])


def headline(card: dict) -> str:
    """The card's headline figures, in words (those it records; '-' when it records none)."""
    m = card.get("metrics") or {}
    out = []
    if "nll" in m and "nll:k" in m:         # VAE: -(IWAE bound), Burda et al.'s protocol
        out.append(f"NLL {_value(m, 'nll'):.2f} nats (IWAE, K = {_value(m, 'nll:k'):.0f}, "
                   f"{_value(m, 'nll:n'):,.0f} test digits)")
    if "elbo" in m:
        out.append(f"ELBO {_value(m, 'elbo'):.2f}")
    if "FD-mnist" in m:
        out.append(f"FD-mnist {_value(m, 'FD-mnist'):.4g} (floor {m['FD-mnist']['real_floor']:.3g}, "
                   f"n = {m['FD-mnist']['n_samples']:,})")
    if "precision" in m and "recall" in m:
        out.append(f"precision {_value(m, 'precision'):.2f}, recall {_value(m, 'recall'):.2f}")
    if "parzen_ll" in m:
        out.append(f"Parzen {_value(m, 'parzen_ll'):.1f} ± {m['parzen_ll']['std']:.1f}")
    if "nll:bpd_total" in m:                # DDPM: the Theorem 8 bound
        out.append(f"Theorem 8 bound {_value(m, 'nll:bpd_total'):.3f} bits/dim ({_value(m, 'nll:n'):,.0f} test digits)")
    if "nll:bpd_ode" in m:                  # flow: the ODE likelihood (instantaneous change of variables)
        out.append(f"ODE likelihood {_value(m, 'nll:bpd_ode'):.3f} bits/dim ({_value(m, 'nll:n'):,.0f} test digits)")
    if "code-accuracy" in m:
        out.append(f"code accuracy {_value(m, 'code-accuracy'):.3f} ({m['code-accuracy']['n_samples']:,} test digits)")
    return "; ".join(out) or "-"


def table(entries: list[dict]) -> str:
    """The markdown table of `entries` (cards)."""
    lines = ["| entry | family | data | params | size | training | headline metrics (from the card) |",
             "|---|---|---|---:|---:|---|---|"]
    for c in entries:
        stored = f" (stored: {', '.join(c['networks'])})" if c.get("networks") else ""
        precision = c.get("config", {}).get("trainer", {}).get("precision", "?")
        lines.append(f"| `zoo:{c['name']}` | {c['family']} | {c['data']} | {c['params'] / 1e6:.2f}M{stored} | "
                     f"{c['size_bytes'] / 1e6:.1f} MB | {c['train_cpu_minutes']:.1f} CPU-min, {precision}, "
                     f"step {c['step']:,} | {headline(c)} |")
    return "\n".join(lines) + "\n"


def page_table(page: str) -> str:
    """The part of `page` between the markers (ValueError without them)."""
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[start:end].strip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {PAGE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    text = table(cards())
    if not args.write:
        print(text, end="")
        return
    page = PAGE.read_text(encoding="utf-8")
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    PAGE.write_text(page[:start] + "\n\n" + text + "\n" + page[end:], encoding="utf-8")
    print(f"wrote the table of {len(text.splitlines()) - 2} entries into {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
