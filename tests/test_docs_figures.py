"""Pages that quote the same figure agree with its source.

Figures that appear on several pages (a zoo model's measured metrics, a leaderboard row, the
figures a recipe's comment records) are listed below, each with its source of truth and, for every
page that quotes it, a pattern whose one group captures the number as the page writes it. The
quoted number must equal the source rounded to as many decimals as the page writes (and, when the
source is itself a rounded text such as the leaderboard, to its own decimals too). A pattern that
no longer finds its figure fails as well: reword a page, and its pattern here follows.

Sources: `card(NAME, KEY)` a value of a zoo card (src/genmodels/zoo/models/NAME/card.json; KEY a
metric, or `train_cpu_minutes`); `table(ROW, COLUMN[, PAGE])` a cell of the leaderboard,
docs/results_table.md, or of another table written by `genmodels compare`; `text(FILE, PATTERN)` a
figure in a file, e.g. a recipe's comment.
Not listed on purpose: the README's first-command figures and docs/ddpm.md's time-to-quality
figures, which are being re-measured.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "src" / "genmodels" / "zoo" / "models"
RECIPES = "src/genmodels/recipes/"
NUMBER = r"(-?[\d,]*\d(?:\.\d+)?)"  # the group every pattern uses for its figure


def card(name: str, key: str) -> tuple[float, int | None]:
    """(value, decimals) of a zoo card's metric or top-level number; None decimals: full precision."""
    c = json.loads((ZOO / name / "card.json").read_text(encoding="utf-8"))
    return float(c["metrics"][key]["value"] if key in c["metrics"] else c[key]), None


def table(row: str, column: str, page: str = "docs/results_table.md") -> tuple[float, int | None]:
    """(value, decimals) of a cell of a table `genmodels compare --markdown` wrote (the leaderboard,
    docs/results_table.md, by default): its first number, as written."""
    lines = [ln for ln in (ROOT / page).read_text(encoding="utf-8").splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == row:
            return parse(re.match(NUMBER, cells[header.index(column)]).group(1))
    raise KeyError(f"{page} has no row {row!r}")


def text(path: str, pattern: str) -> tuple[float, int | None]:
    """(value, decimals) of the figure that `pattern` (one group) finds in a file of the repository."""
    m = re.search(pattern, (ROOT / path).read_text(encoding="utf-8"))
    assert m, f"{path}: the source pattern {pattern!r} finds nothing"
    return parse(m.group(1))


def parse(written: str) -> tuple[float, int]:
    """A number as written on a page ('1,561', '0.872', '-92.27') -> (value, decimals)."""
    digits = written.replace(",", "")
    return float(digits), len(digits.partition(".")[2])


@dataclass
class Figure:
    name: str
    source: tuple[float, int | None]
    quotes: list[tuple[str, str]]     # (page, pattern with one group around the number)


def w(*words: str) -> str:
    """Words of a pattern separated by any whitespace, so that a line break inside a quote still matches."""
    return r"\s+".join(words)


FIGURES = [
    # ---- zoo cards (the entries' measured figures) ----
    Figure("vae-mnist NLL (IWAE, K = 5000, 10,000 digits)", card("vae-mnist", "nll"), [
        ("docs/results.md", r"`vae-mnist` \|[^\n]*?\*\*" + NUMBER + r" nats\*\*"),
        ("docs/results.md", w("on", "all", "10,000", "they", "are") + r"\s+" + NUMBER),
        ("docs/results.md", w(r"ELBO-trained", r"`vae-mnist`") + r"\s+\(" + NUMBER + r"\)"),
        ("docs/vae.md", w(r"\*\*test", "NLL") + r"\s+" + NUMBER + r" nats\*\*"),
        ("docs/your_images.md", r"NLL " + NUMBER + r" nats \|"),
        ("docs/zoo.md", r"`zoo:vae-mnist`[^\n]*NLL " + NUMBER),
        ("docs/tutorials/01_vae.ipynb", w("on", "all", "10,000", "test", "digits:") + r"\s+" + NUMBER + " nats"),
        (RECIPES + "vae-mnist.toml", r"test NLL " + NUMBER + " nats"),
        (RECIPES + "iwae-mnist.toml", r"vae-mnist's " + NUMBER + " is beaten"),
    ]),
    Figure("vae-mnist test ELBO", card("vae-mnist", "elbo"), [
        ("docs/results.md", r"`vae-mnist` \|[^\n]*?test ELBO " + NUMBER),
        ("docs/vae.md", w("test", "ELBO") + r"\s+" + NUMBER + r", against"),
        ("docs/zoo.md", r"`zoo:vae-mnist`[^\n]*ELBO " + NUMBER),
        (RECIPES + "vae-mnist.toml", r"test ELBO " + NUMBER),
    ]),
    Figure("vae-mnist training CPU-minutes", card("vae-mnist", "train_cpu_minutes"), [
        ("docs/results.md", r"`vae-mnist` \|[^\n]*?; " + NUMBER + " CPU-min of training"),
        ("docs/vae.md", w(r"fp32;", NUMBER, "CPU-minutes", "of", "training")),
        ("docs/your_images.md", r"70 epochs \(fp32\) \| " + NUMBER + " CPU-minutes"),
        ("docs/zoo.md", r"`zoo:vae-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
        (RECIPES + "vae-mnist.toml", w(r"-92\.27\.", NUMBER, "CPU-minutes")),
    ]),
    Figure("iwae-mnist NLL (IWAE, K = 5000, 10,000 digits)", card("iwae-mnist", "nll"), [
        ("docs/results.md", r"`iwae-mnist` \|[^\n]*?\*\*" + NUMBER + r" nats\*\*"),
        ("docs/results.md", w("on", "all", "10,000", "they", "are", r"[\d.]+", "and") + r"\s+" + NUMBER),
        ("docs/vae.md", w("IWAE", "bound:") + r"\s+" + NUMBER),
        ("docs/zoo.md", r"`zoo:iwae-mnist`[^\n]*NLL " + NUMBER),
        (RECIPES + "iwae-mnist.toml", r"IWAE-5000 NLL " + NUMBER),
    ]),
    Figure("iwae-mnist test ELBO", card("iwae-mnist", "elbo"), [
        ("docs/results.md", r"`iwae-mnist` \|[^\n]*?test ELBO " + NUMBER),
        ("docs/zoo.md", r"`zoo:iwae-mnist`[^\n]*ELBO " + NUMBER),
        (RECIPES + "iwae-mnist.toml", w("test", "ELBO") + r"\s+#?\s*" + NUMBER),
    ]),
    Figure("iwae-mnist training CPU-minutes", card("iwae-mnist", "train_cpu_minutes"), [
        ("docs/results.md", r"`iwae-mnist` \|[^\n]*?; " + NUMBER + " CPU-min of training"),
        ("docs/results.md", w(r"`iwae-mnist`", "trained", "to", "step", "21,000", r"\(35", r"epochs\)", "in")
         + r"\s+" + NUMBER),
        ("docs/zoo.md", r"`zoo:iwae-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
        (RECIPES + "iwae-mnist.toml", r"Measured \(seed 0\): " + NUMBER + " CPU-minutes"),
    ]),
    Figure("dcgan-mnist FD-mnist of the run (card)", card("dcgan-mnist", "FD-mnist"), [
        ("docs/results.md", r"`dcgan-mnist` \|[^\n]*?; " + NUMBER + r" for the run's fp32 weights"),
        ("docs/zoo.md", r"`zoo:dcgan-mnist`[^\n]*FD-mnist " + NUMBER),
        (RECIPES + "dcgan-mnist.toml", r"FD-mnist " + NUMBER + r" \(floor"),
    ]),
    Figure("dcgan-mnist precision (card)", card("dcgan-mnist", "precision"), [
        ("docs/zoo.md", r"`zoo:dcgan-mnist`[^\n]*precision " + NUMBER),
        (RECIPES + "dcgan-mnist.toml", r"precision " + NUMBER + ", recall"),
    ]),
    Figure("dcgan-mnist recall (card)", card("dcgan-mnist", "recall"), [
        ("docs/zoo.md", r"`zoo:dcgan-mnist`[^\n]*recall " + NUMBER),
        (RECIPES + "dcgan-mnist.toml", r"recall " + NUMBER + r"\. "),
    ]),
    Figure("dcgan-mnist Parzen (card)", card("dcgan-mnist", "parzen_ll"), [
        ("docs/results.md", r"`dcgan-mnist` \|[^\n]*?\*\*Parzen " + NUMBER),
        ("docs/gan.md", r"EMA of G\) \| 0\.215 \| \*\*" + NUMBER),
        ("docs/zoo.md", r"`zoo:dcgan-mnist`[^\n]*Parzen " + NUMBER),
        (RECIPES + "dcgan-mnist.toml", r"Parzen " + NUMBER + r" \+- "),
    ]),
    Figure("dcgan-mnist training CPU-minutes", card("dcgan-mnist", "train_cpu_minutes"), [
        ("docs/results.md", r"`dcgan-mnist` \|[^\n]*?; " + NUMBER + " CPU-min \\|"),
        ("docs/your_images.md", r"batch 64 \| " + NUMBER + " CPU-minutes"),
        ("docs/zoo.md", r"`zoo:dcgan-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
        (RECIPES + "dcgan-mnist.toml", w(r"recall\s+0\.79\.", NUMBER, "CPU-minutes")),
    ]),
    Figure("gan-goodfellow2014-mnist FD-mnist", card("gan-goodfellow2014-mnist", "FD-mnist"), [
        ("docs/results.md", r"`gan-goodfellow2014-mnist` \|[^\n]*?FD-mnist " + NUMBER),
        ("docs/zoo.md", r"`zoo:gan-goodfellow2014-mnist`[^\n]*FD-mnist " + NUMBER),
        (RECIPES + "gan-goodfellow2014-mnist.toml", r"FD-mnist " + NUMBER + r" \(floor"),
    ]),
    Figure("gan-goodfellow2014-mnist Parzen", card("gan-goodfellow2014-mnist", "parzen_ll"), [
        ("docs/results.md", r"`gan-goodfellow2014-mnist` \|[^\n]*?\*\*Parzen " + NUMBER),
        ("docs/zoo.md", r"`zoo:gan-goodfellow2014-mnist`[^\n]*Parzen " + NUMBER),
        (RECIPES + "gan-goodfellow2014-mnist.toml", r"Parzen " + NUMBER + r" \+- "),
    ]),
    Figure("gan-goodfellow2014-mnist training CPU-minutes", card("gan-goodfellow2014-mnist", "train_cpu_minutes"), [
        ("docs/results.md", r"`gan-goodfellow2014-mnist` \|[^\n]*?54,000 steps, " + NUMBER + " CPU-min"),
        ("docs/gan.md", w(r"54,000", r"steps", r"\(90", r"epochs\):") + r"\s+" + NUMBER + " CPU-minutes"),
        ("docs/zoo.md", r"`zoo:gan-goodfellow2014-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
        (RECIPES + "gan-goodfellow2014-mnist.toml", w("after", NUMBER, r"CPU-minutes", r"\(the", "run")),
    ]),
    Figure("infogan-mnist code accuracy, 10,000 digits (seed 0)", card("infogan-mnist", "code-accuracy"), [
        ("docs/results.md", r"\*\*code accuracy " + NUMBER + ", 0.958"),
        ("docs/results.md", r"\(" + NUMBER + r"\s+on all 10,000, below\)"),
        ("docs/infogan.md", r"\*\*" + NUMBER + r"\*\* at 10,000 steps"),
        ("docs/infogan.md", w("seeds", r"\(above\):") + r"\s+" + NUMBER),
        ("docs/your_images.md", r"with accuracy " + NUMBER),
        ("docs/zoo.md", r"`zoo:infogan-mnist`[^\n]*code accuracy " + NUMBER),
        (RECIPES + "infogan-mnist.toml", r"\(`--seed S`\): " + NUMBER),
    ]),
    Figure("infogan-mnist training CPU-minutes", card("infogan-mnist", "train_cpu_minutes"), [
        ("docs/results.md", r"10,000 steps each, " + NUMBER),
        ("docs/infogan.md", r"every code used; " + NUMBER + " CPU-minutes"),
        ("docs/your_images.md", r"batch 128 \| " + NUMBER + " CPU-minutes"),
        ("docs/zoo.md", r"`zoo:infogan-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
    ]),
    Figure("ddpm-mnist FD-mnist (n = 10,000, Euler-ancestral 50)", card("ddpm-mnist", "FD-mnist"), [
        ("docs/results.md", r"`ddpm-mnist` \|[^\n]*?FD-mnist " + NUMBER),
        ("docs/your_images.md", r"30,000 steps \| [\d.]+ CPU-minutes \| FD-mnist " + NUMBER),
        ("docs/zoo.md", r"`zoo:ddpm-mnist`[^\n]*FD-mnist " + NUMBER),
        ("docs/ddpm.md", r"\*\*FD-mnist " + NUMBER + r"\*\* against the floor"),
        ("docs/flow.md", r"`zoo:ddpm-mnist` \| Euler-ancestral 50 \(50\), its recorded sampler \| " + NUMBER),
        (RECIPES + "ddpm-mnist.toml", w("recorded", r"sampler\)", "FD-mnist") + r"\s+" + NUMBER),
    ]),
    Figure("ddpm-mnist Parzen", card("ddpm-mnist", "parzen_ll"), [
        ("docs/results.md", r"`ddpm-mnist` \|[^\n]*?\*\*Parzen " + NUMBER),
        ("docs/zoo.md", r"`zoo:ddpm-mnist`[^\n]*Parzen " + NUMBER),
        ("docs/ddpm.md", w("coverage", r"[\d.]+,", "Parzen") + r"\s+" + NUMBER),
    ]),
    Figure("ddpm-mnist Theorem 8 bound (200 digits)", card("ddpm-mnist", "nll:bpd_total"), [
        ("docs/zoo.md", r"`zoo:ddpm-mnist`[^\n]*Theorem 8 bound " + NUMBER),
        ("docs/flow.md", r"\| " + NUMBER + r" bits/dim \(Theorem 8 bound\)"),
    ]),
    Figure("ddpm-mnist training CPU-minutes", card("ddpm-mnist", "train_cpu_minutes"), [
        ("docs/results.md", r"`ddpm-mnist` \|[^\n]*?; " + NUMBER + " CPU-min of training"),
        ("docs/your_images.md", r"30,000 steps \| " + NUMBER + " CPU-minutes"),
        ("docs/zoo.md", r"`zoo:ddpm-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
        ("docs/ddpm.md", w("Training", "took", NUMBER, "CPU-minutes.", "`genmodels", "ema")),
        (RECIPES + "ddpm-mnist.toml", w("Measured:", NUMBER, "CPU-minutes", "of", "training")),
    ]),
    Figure("flow-mnist FD-mnist (n = 10,000, Heun 10)", card("flow-mnist", "FD-mnist"), [
        ("docs/flow.md", r"`zoo:flow-mnist` \| Heun 10 \(20\) \| \*\*" + NUMBER),
        ("docs/your_images.md", r"same network and steps \| [\d.]+ CPU-minutes \| FD-mnist " + NUMBER),
        ("docs/zoo.md", r"`zoo:flow-mnist`[^\n]*FD-mnist " + NUMBER),
    ]),
    Figure("flow-mnist ODE likelihood (200 digits)", card("flow-mnist", "nll:bpd_ode"), [
        ("docs/flow.md", r"`zoo:flow-mnist` \|[^\n]*\| " + NUMBER + r" bits/dim \(ODE"),
        ("docs/zoo.md", r"`zoo:flow-mnist`[^\n]*ODE likelihood " + NUMBER),
    ]),
    Figure("flow-mnist training CPU-minutes", card("flow-mnist", "train_cpu_minutes"), [
        ("docs/flow.md", w("bf16", "autocast,", "native", r"there\):") + r"\s+" + NUMBER),
        ("docs/your_images.md", r"same network and steps \| " + NUMBER + " CPU-minutes"),
        ("docs/zoo.md", r"`zoo:flow-mnist`[^\n]*\| " + NUMBER + " CPU-min"),
        (RECIPES + "flow-mnist.toml", w("Measured:", NUMBER, "CPU-minutes", "of", "training")),
    ]),
    # ---- the leaderboard (docs/results_table.md, written by genmodels compare) ----
    Figure("leaderboard: real-data floor FD-mnist", table("real-data floor", "FD-mnist"), [
        ("docs/results.md", w("against", "a", "floor", "of") + r"\s+" + NUMBER),
        ("docs/results.md", r"`dcgan-mnist` \|[^\n]*?\(floor " + NUMBER),
        ("docs/metrics.md", r"159\.1 against " + NUMBER),
        ("docs/your_images.md", w("digits", r"\(the", "real-data", r"floor\)", "score") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: real-data floor Parzen", table("real-data floor", "Parzen LL"), [
        ("docs/results.md", w("above", "the", "real", "training", "images'") + r"\s+" + NUMBER),
        ("docs/gan.md", r"10,000 real training images \(the same protocol's reference\) \| 0\.167 \| " + NUMBER),
        (RECIPES + "dcgan-mnist.toml", r"10,000 real training images: " + NUMBER),
        (RECIPES + "gan-goodfellow2014-mnist.toml", r"real training images " + NUMBER),
    ]),
    Figure("leaderboard: infogan FD-mnist", table("zoo:infogan-mnist", "FD-mnist"), [
        ("docs/results.md", w("FD-mnist") + r"\s+" + NUMBER + w("", "against", "a")),
        ("docs/results.md", r"`zoo:infogan-mnist` \(FD-mnist " + NUMBER),
        ("docs/your_images.md", r"batch 128 \| [\d.]+ CPU-minutes \| FD-mnist " + NUMBER),
    ]),
    Figure("leaderboard: infogan precision", table("zoo:infogan-mnist", "precision"), [
        ("docs/results.md", w("precision") + r"\s+" + NUMBER + w("", "and", "Parzen")),
    ]),
    Figure("leaderboard: infogan Parzen", table("zoo:infogan-mnist", "Parzen LL"), [
        ("docs/results.md", w("and", "Parzen") + r"\s+" + NUMBER + r" \+- 2\.2 nats\."),
        ("docs/results.md", r"Parzen " + NUMBER + " at n = 10,000, the leaderboard\\)"),
    ]),
    Figure("leaderboard: infogan code accuracy (200 digits)", table("zoo:infogan-mnist", "code-accuracy"), [
        ("docs/results.md", w("code", "accuracy", "of", "the", "InfoGAN,") + r"\s+" + NUMBER + " here"),
    ]),
    Figure("leaderboard: ddpm FD-mnist", table("zoo:ddpm-mnist", "FD-mnist"), [
        ("docs/results.md", w("comes", "second,", "FD-mnist") + r"\s+" + NUMBER),
        ("docs/results.md", w("on", "sample", r"quality", r"\(") + NUMBER + w("", "against")),
    ]),
    Figure("leaderboard: ddpm precision", table("zoo:ddpm-mnist", "precision"), [
        ("docs/results.md", w("comes", "second,", r"FD-mnist\s+[\d.]+,", "precision") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: ddpm recall", table("zoo:ddpm-mnist", "recall"), [
        ("docs/results.md", w("comes", "second,", r"[^;]*?recall") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: ddpm Parzen", table("zoo:ddpm-mnist", "Parzen LL"), [
        ("docs/results.md", w("comes", "second,", r"[^;]*?Parzen") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: ddpm Theorem 8 bound (200 digits)", table("zoo:ddpm-mnist", "NLL"), [
        ("docs/results.md", w("comes", "second,", r"[^;]*?Theorem", "8", "bound", "of") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: flow FD-mnist", table("zoo:flow-mnist", "FD-mnist"), [
        ("docs/results.md", w("Heun", r"10\)", "third,", "FD-mnist") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: flow recall", table("zoo:flow-mnist", "recall"), [
        ("docs/results.md", w("the", "highest", "recall,") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: flow Parzen", table("zoo:flow-mnist", "Parzen LL"), [
        ("docs/results.md", w("third,", r"[^;]*?Parzen") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: flow ODE likelihood (200 digits)", table("zoo:flow-mnist", "NLL"), [
        ("docs/results.md", w("ODE", "likelihood", "of") + r"\s+" + NUMBER + r"\s+bits/dim"),
    ]),
    Figure("leaderboard: dcgan FD-mnist", table("zoo:dcgan-mnist", "FD-mnist"), [
        ("docs/results.md", w("the", "DCGAN", "FD") + r"\s+" + NUMBER),
        ("docs/results.md", r"`dcgan-mnist` \|[^\n]*?FD-mnist " + NUMBER),
        ("docs/your_images.md", r"malformed strokes; FD-mnist " + NUMBER),
        ("docs/zoo.md", r"the DCGAN's FD-mnist is " + NUMBER + " there"),
    ]),
    Figure("leaderboard: dcgan Parzen", table("zoo:dcgan-mnist", "Parzen LL"), [
        ("docs/results.md", w("the", "DCGAN", "FD", r"[\d.]+", "and") + r"\s+" + w("Parzen") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: gan-goodfellow2014 FD-mnist", table("zoo:gan-goodfellow2014-mnist", "FD-mnist"), [
        ("docs/results.md", w("MLP", "GAN", "has", "FD") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: gan-goodfellow2014 Parzen", table("zoo:gan-goodfellow2014-mnist", "Parzen LL"), [
        ("docs/results.md", w("MLP", "GAN", "has", "FD", r"[\d.]+", "and", "Parzen") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: vae FD-mnist", table("zoo:vae-mnist", "FD-mnist"), [
        ("docs/results.md", w("The", "VAE", "has", "FD") + r"\s+" + NUMBER),
        ("docs/metrics.md", w("comparison", "is") + r"\s+" + NUMBER),
        ("docs/your_images.md", r"blurred digits \(FD-mnist " + NUMBER),
    ]),
    Figure("leaderboard: vae Parzen", table("zoo:vae-mnist", "Parzen LL"), [
        ("docs/results.md", w("highest", "Parzen", "figure,") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: iwae Parzen", table("zoo:iwae-mnist", "Parzen LL"), [
        ("docs/results.md", w("IWAE-trained", "VAE:") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: vae IWAE bound (200 digits)", table("zoo:vae-mnist", "NLL"), [
        ("docs/results.md", w("IWAE", "bound", "on", "those", "200", "digits", "is") + r"\s+" + NUMBER),
    ]),
    Figure("leaderboard: iwae IWAE bound (200 digits)", table("zoo:iwae-mnist", "NLL"), [
        ("docs/results.md", w("nats,", "the", "IWAE's") + r"\s+" + NUMBER),
    ]),
    # ---- recipes' comments (the figures their runs measured) ----
    Figure("gan-ring8: high-quality share", text(RECIPES + "gan-ring8.toml", r"8 of 8 modes, " + NUMBER + "%"), [
        ("docs/gan.md", r"8 of 8 `ring8` modes with " + NUMBER + "%"),
        ("docs/gan.md", w(r"\*\*8", "of", "8", "modes", "captured,") + r"\s+" + NUMBER + "%"),
        ("docs/report.md", w(r"modes\*\*", "with") + r"\s+" + NUMBER + "%"),
    ]),
    Figure("gan-ring8: reverse KL", text(RECIPES + "gan-ring8.toml", r"reverse KL " + NUMBER), [
        ("docs/gan.md", w("reverse", "KL", "of", "the", "mode", "histogram") + r"\s+" + NUMBER),
    ]),
    Figure("gan-ring8: training seconds", text(RECIPES + "gan-ring8.toml", NUMBER + " s of training"), [
        ("docs/gan.md", r"batch 64, " + NUMBER + " s on one thread"),
    ]),
    Figure("ddpm-grid25: high-quality share", text(RECIPES + "ddpm-grid25.toml", r"25 of 25 modes, " + NUMBER + "%"),
           [("docs/ddpm.md", r"\*\*25 of 25 modes, " + NUMBER + "%"),
            ("docs/ddpm.md", r"\| grid25 \| 3 octaves \(the default\) \| 25 / 25, " + NUMBER + "%")]),
    Figure("ddpm-grid25: reverse KL", text(RECIPES + "ddpm-grid25.toml", r"reverse KL " + NUMBER), [
        ("docs/ddpm.md", w("reverse", "KL", "of", "the", "mode", "histogram") + r"\s+" + NUMBER + r" \(real data: 25"),
    ]),
    Figure("ddpm-grid25: Theorem 8 bound", text(RECIPES + "ddpm-grid25.toml", r"Theorem 8 bound " + NUMBER), [
        ("docs/ddpm.md", r"\| grid25 \| 3 octaves \(the default\) \| [^|]+ \| \*\*" + NUMBER),
    ]),
    Figure("ddpm-grid25: ODE likelihood", text(RECIPES + "ddpm-grid25.toml", w("probability-flow", "ODE") + r"\s+"
                                               + NUMBER), [
        ("docs/ddpm.md", r"\| grid25 \| 3 octaves \(the default\) \|(?: [^|]+ \|){3} \*\*" + NUMBER),
    ]),
    Figure("ddpm-grid25: ODE likelihood with 6 octaves", text(RECIPES + "ddpm-grid25.toml",
                                                              w("ODE", "figure", "of") + r"\s+" + NUMBER), [
        ("docs/ddpm.md", r"\| grid25 \| 6 octaves[^\n]*\| " + NUMBER + r" \(887\)"),
    ]),
    Figure("ddpm-grid25: training seconds", text(RECIPES + "ddpm-grid25.toml", w(r"0\.0038;", NUMBER, "s", "of")), [
        ("docs/ddpm.md", w("in", NUMBER, "CPU-seconds", "of", "training")),
    ]),
    Figure("infogan-mnist: seed 1", text(RECIPES + "infogan-mnist.toml", r"\(`--seed S`\): [\d.]+, " + NUMBER), [
        ("docs/results.md", r"\*\*code accuracy [\d.]+, " + NUMBER),
        ("docs/infogan.md", r"Seeds 1 and 2\s+of the recipe reached \*\*" + NUMBER),
    ]),
    Figure("infogan-mnist: seed 2", text(RECIPES + "infogan-mnist.toml",
                                         r"\(`--seed S`\): [\d.]+, [\d.]+, " + NUMBER), [
        ("docs/results.md", r"\*\*code accuracy [\d.]+, [\d.]+ and " + NUMBER),
        ("docs/infogan.md", r"reached \*\*[\d.]+\*\* and \*\*" + NUMBER),
    ]),
    Figure("iwae-mnist: CPU-s per step in bf16", text(RECIPES + "iwae-mnist.toml",
                                                      NUMBER + r" CPU-s per step in bf16"), [
        ("docs/vae.md", w("one", "step", "took", NUMBER, "CPU-seconds", "in", "bf16")),
    ]),
    Figure("flow-mnist-reflow: straightness", text(RECIPES + "flow-mnist-reflow.toml", r"straightness " + NUMBER), [
        ("docs/flow.md", r"\*\*" + NUMBER + r"\*\*\s+after\s+one\s+reflow,\s+25\s+times"),
    ]),
    Figure("flow-mnist-reflow: FD-mnist at 50 steps", text(RECIPES + "flow-mnist-reflow.toml", r"23\.2, " + NUMBER), [
        ("docs/flow.md", r"\| 50 \|[^\n]*\| \*\*" + NUMBER),
        ("docs/flow.md", w("30.7", "against", "2", "x") + r"\s+" + NUMBER),
    ]),
    Figure("flow-mnist-reflow: training CPU-minutes", text(RECIPES + "flow-mnist-reflow.toml",
                                                           r"the training " + NUMBER + " CPU-minutes"), [
        ("docs/flow.md", w("the", "training", NUMBER, r"CPU-minutes")),
    ]),
    Figure("ddpm-mnist: Theorem 8 bound (1,000 digits)", text(RECIPES + "ddpm-mnist.toml", NUMBER + " bits/dim"), [
        ("docs/results.md", r"Theorem 8 bound \*\*" + NUMBER + r" bits/dim on 1,000"),
    ]),
]


def _id(figure: Figure) -> str:
    return figure.name


def rounded(value: float, decimals: int) -> Decimal:
    """`value` rounded half up to `decimals` decimals, as people round when they quote."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def agrees(quoted: float, decimals: int, source: tuple[float, int | None]) -> bool:
    """Whether a number written with `decimals` decimals is the source, rounded: the source rounded to
    the quote's decimals, or, where the source has fewer decimals than the quote, the quote rounded to
    the source's."""
    value, source_decimals = source
    if source_decimals is not None and source_decimals < decimals:
        return rounded(quoted, source_decimals) == rounded(value, source_decimals)
    return rounded(value, decimals) == rounded(quoted, decimals)


@pytest.mark.parametrize("figure", FIGURES, ids=_id)
def test_pages_quote_the_figure_as_its_source_has_it(figure):
    problems = []
    for page, pattern in figure.quotes:
        matches = list(re.finditer(pattern, (ROOT / page).read_text(encoding="utf-8")))
        if not matches:
            problems.append(f"{page}: the pattern {pattern!r} no longer finds the figure (update it here)")
        for m in matches:
            quoted, decimals = parse(m.group(1))
            if not agrees(quoted, decimals, figure.source):
                line = (ROOT / page).read_text(encoding="utf-8")[: m.start(1)].count("\n") + 1
                problems.append(f"{page}:{line}: quotes {m.group(1)}, the source has {figure.source[0]:g}")
    assert not problems, f"{figure.name}:\n" + "\n".join(problems)


def test_the_zoo_table_is_what_the_cards_say():
    """docs/zoo.md's table of entries is what `python -m bench.zoo_table` prints from the cards."""
    sys.path.insert(0, str(ROOT))           # bench/ is a folder of scripts, not an installed package
    from bench import zoo_table

    page = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    assert zoo_table.page_table(page) == zoo_table.table(zoo_table.cards(ZOO)), \
        "docs/zoo.md's table differs from the cards: run `python -m bench.zoo_table --write`"


def test_a_stale_figure_fails():
    """The check itself: a page quoting another number than its source is caught."""
    assert agrees(106.7, 1, (106.654, None)) and agrees(13.33, 2, (13.326, None))
    assert not agrees(106.6, 1, (106.654, None)) and not agrees(89.38, 2, (88.266, None))
    assert agrees(106.6, 1, (106.6, 1)) and not agrees(106.7, 1, (106.6, 1))
    assert agrees(1.78, 2, (1.776, 3)) and parse("1,561") == (1561.0, 0)
