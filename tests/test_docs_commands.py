"""Every command in the README and the docs runs, so that the docs cannot rot.

The convention (for whoever writes docs):
- Commands meant to be run go in fenced blocks tagged ```bash (or sh, shell, console). Syntax
  summaries with placeholders (RUN_DIR, [--steps N]) go in untagged or ```text blocks, which are
  not run.
- In a runnable block every line starting with `genmodels ` or `python -m genmodels ` (an
  optional leading `$ ` is dropped, a trailing `\\` continues the line) is run, in the order of
  the page, in one fresh working directory per page: `--out runs/x` on one line can be read by
  `genmodels sample runs/x` on a later one. `> FILE` redirects the command's output to FILE.
  `python examples/NAME.py ...` lines must name an existing example (test_examples.py runs them).
  Other lines (pip install, cd, ...) are not run.
  Commands chained with `&&` or `;` are split, and their `genmodels` parts run.
- Short settings are substituted: `--steps N` -> at most 20 (training or sampler steps),
  `--epochs E` -> `--steps 20`, `--n N` -> at most 200 (16 for `sample`), `--batch-size B` -> at
  most 16, `--set trainer.steps=N` -> at most 20; `train` without a step count gets `--steps 20`,
  without a batch size `--batch-size 16`, and no periodic sample grids or end-of-run
  report (`--set trainer.sample_every=0 --set trainer.report=false`: a DDPM grid takes T network
  evaluations; tests/test_report.py covers the report); `evaluate` without `--n` gets `--n 200`;
  `--sample-option steps=N` -> at most 20, and `evaluate` or `ema` of a run whose recorded sampler
  (config.toml's [sample] table) takes more than 20 steps gets `--sample-option steps=20`.
- Each page runs in a directory holding `my_images/`, a small folder of PNG digits in one
  sub-folder per class, standing for "a folder of your own images".
- A line ending in `# slow` is left out of the default run and runs (shortened the same way)
  under `pytest -m slow`; a fast line must not depend on a slow one.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = ("bash", "sh", "shell", "console")
LIMITS = {"--steps": 20, "--n": 200, "--batch-size": 16}
SAMPLE_N = 16  # `genmodels sample --n` cap
PREFIXES = ("genmodels ", "python -m genmodels ", "python3 -m genmodels ", "python examples/", "python3 examples/")


@dataclass
class Command:
    page: str        # README.md or docs/NAME.md
    line: int        # 1-based line number of the command's first line
    text: str        # as written (continuations joined)
    slow: bool


def doc_pages() -> list[Path]:
    pages = [ROOT / "README.md"] if (ROOT / "README.md").is_file() else []
    return pages + sorted((ROOT / "docs").rglob("*.md"))


def commands_in(markdown: str, page: str) -> list[Command]:
    """The runnable commands of one page (see the module docstring)."""
    out, fence, pending, start = [], None, "", 0
    for number, raw in enumerate(markdown.splitlines(), 1):
        stripped = raw.strip()
        if fence is None:
            m = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", stripped)
            if m:
                fence = (m.group(1), m.group(2).lower() in RUNNABLE)
            continue
        if stripped.startswith(fence[0]) and stripped.strip("`~") == "":
            fence = None
            continue
        if not fence[1]:
            continue
        line = stripped.removeprefix("$ ")
        if pending:
            pending, line = pending + " " + line, ""
        elif any(p in f" {line}" for p in PREFIXES):
            pending, start = line, number
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending:
            text, _, comment = pending.partition(" #")
            slow = "slow" in comment.split()
            for part in re.split(r"\s*(?:&&|;)\s*", text.strip()):
                if part.startswith(PREFIXES):
                    out.append(Command(page, start, part, slow))
            pending = ""
    return out


def shorten(argv: list[str]) -> list[str]:
    """The short settings: cap --steps, --n and --batch-size, turn --epochs into --steps, cap --set trainer.steps."""
    limits = {**LIMITS, "--n": SAMPLE_N} if argv[:1] == ["sample"] else LIMITS
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        flag, eq, inline = a.partition("=")
        if flag in limits and (eq or i + 1 < len(argv)):
            value = inline if eq else argv[i + 1]
            out += [flag, str(min(int(float(value)), limits[flag]))]
            i += 1 if eq else 2
            continue
        if flag == "--epochs":
            out += ["--epochs", "0", "--steps", str(LIMITS["--steps"])]
            i += 1 if eq else 2
            continue
        if a == "--sample-option" and i + 1 < len(argv) and argv[i + 1].startswith("steps="):
            out += [a, f"steps={min(int(argv[i + 1].partition('=')[2]), LIMITS['--steps'])}"]
            i += 2
            continue
        if a == "--set" and i + 1 < len(argv) and argv[i + 1].startswith(("trainer.steps=", "trainer.epochs=")):
            key, _, value = argv[i + 1].partition("=")
            value = str(min(int(float(value)), LIMITS["--steps"])) if key == "trainer.steps" else "0"
            out += ["--set", f"{key}={value}"]
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def with_defaults(argv: list[str]) -> list[str]:
    """Short settings for what a command leaves at a long default (see the module docstring)."""
    given = {a.partition("=")[0] for a in argv}  # flags, and the keys of --set KEY=VALUE
    if "-h" in given or "--help" in given:
        return argv
    if argv[:1] == ["train"]:
        if not given & {"--steps", "--epochs", "trainer.steps", "trainer.epochs"}:
            argv = argv + ["--steps", str(LIMITS["--steps"])]
        if not given & {"--batch-size", "trainer.batch_size"}:
            argv = argv + ["--batch-size", str(LIMITS["--batch-size"])]
        argv = argv + ["--set", "trainer.sample_every=0", "--set", "trainer.report=false"]
    if argv[:1] == ["evaluate"] and "--n" not in given:
        argv = argv + ["--n", str(LIMITS["--n"])]
    if argv[:1] in (["evaluate"], ["ema"]) and len(argv) > 1 and not any(a.startswith("steps=") for a in argv) \
            and recorded_steps(Path(argv[1])) > LIMITS["--steps"]:
        argv = argv + ["--sample-option", f"steps={LIMITS['--steps']}"]
    return argv


def recorded_steps(run: Path) -> int:
    """The sampler steps a run directory recorded in its config.toml's [sample] table (0: none)."""
    import tomllib

    config = run / "config.toml"
    return int(tomllib.loads(config.read_text()).get("sample", {}).get("steps", 0)) if config.is_file() else 0


def run_command(command: Command) -> None:
    """Run one command in-process in the current directory; AssertionError with its output on failure."""
    from genmodels.cli import main

    tokens = shlex.split(command.text)
    redirect = None
    if ">" in tokens:
        k = tokens.index(">")
        tokens, redirect = tokens[:k], tokens[k + 1]
    if tokens[0] in ("python", "python3") and len(tokens) > 1 and tokens[1].startswith("examples/"):
        assert (ROOT / tokens[1]).is_file(), f"{command.page}:{command.line}: no such example {tokens[1]}"
        return
    argv = tokens[3:] if tokens[1:3] == ["-m", "genmodels"] else tokens[1:]
    argv = with_defaults(shorten(argv))
    started = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse errors
            code = e.code
    assert code == 0, (f"{command.page}:{command.line}: `{command.text}` (run as `genmodels {' '.join(argv)}`) "
                       f"exited with {code}\n{err.getvalue()[-3000:]}")
    print(f"{time.perf_counter() - started:6.1f} s  genmodels {' '.join(argv)}")
    if redirect:
        Path(redirect).parent.mkdir(parents=True, exist_ok=True)
        Path(redirect).write_text(out.getvalue())


PAGES = {str(p.relative_to(ROOT)): commands_in(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))
         for p in doc_pages()}
WITH_COMMANDS = [name for name, cmds in PAGES.items() if cmds]


def write_my_images(folder: Path, per_class: int = 8) -> None:
    """`my_images/`, the folder of "your own images" the docs train on: real mnist5k digits as
    RGB PNGs of 32x32 in one sub-folder per class (0..2), so that the folder loader's
    resizing, colour handling and class-from-sub-folder rule are exercised."""
    from PIL import Image

    from genmodels.data import load

    data = load("mnist5k", split="test")
    for label in range(3):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        images = data.x[data.y == label][:per_class]
        for i, x in enumerate(images):
            pixels = ((x[0].numpy() + 1) * 127.5).round().clip(0, 255).astype("uint8")
            Image.fromarray(pixels).convert("RGB").resize((32, 32)).save(folder / str(label) / f"{i}.png")


def _run_page(name: str, slow: bool, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_my_images(tmp_path / "my_images")
    commands = [c for c in PAGES[name] if slow or not c.slow]
    if not commands:
        pytest.skip(f"{name}: every command is marked # slow")
    for command in commands:
        run_command(command)


@pytest.mark.parametrize("page", WITH_COMMANDS)
def test_doc_commands(page, tmp_path, monkeypatch):
    _run_page(page, False, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("page", [n for n in WITH_COMMANDS if any(c.slow for c in PAGES[n])])
def test_doc_commands_with_slow_ones(page, tmp_path, monkeypatch):
    _run_page(page, True, tmp_path, monkeypatch)


# ---------------------------------------------------------------------------------------------
# The collector itself


SAMPLE = """
Intro `genmodels train` in text is not a command.

```
genmodels train MODEL --out RUN_DIR [--steps N]
```

```bash
pip install -e .
$ genmodels train gan --data ring8 --out runs/g \\
    --steps 5000 --batch-size 128
genmodels evaluate runs/g --n 10000 --json > runs/g/eval.json
python -m genmodels sample runs/g --n 64 --out s.png   # slow
python examples/gan_ring8.py --quick
python3 -m pip install -e . && genmodels datasets && genmodels theory   # slow
```
"""


def test_collector_finds_runnable_lines_only():
    cmds = commands_in(SAMPLE, "x.md")
    assert [c.text for c in cmds] == [
        "genmodels train gan --data ring8 --out runs/g --steps 5000 --batch-size 128",
        "genmodels evaluate runs/g --n 10000 --json > runs/g/eval.json",
        "python -m genmodels sample runs/g --n 64 --out s.png",
        "python examples/gan_ring8.py --quick",
        "genmodels datasets",
        "genmodels theory",
    ]
    assert [c.slow for c in cmds] == [False, False, True, False, True, True]
    assert [c.line for c in cmds] == [10, 12, 13, 14, 15, 15]


def test_shorten_caps_long_settings():
    assert shorten(["evaluate", "r", "--steps", "5000", "--n=10000", "--batch-size", "128"]) == \
        ["evaluate", "r", "--steps", "20", "--n", "200", "--batch-size", "16"]
    assert shorten(["sample", "r", "--n", "1000"]) == ["sample", "r", "--n", "16"]
    assert shorten(["train", "vae", "--epochs", "10", "--set", "trainer.steps=1e5"]) == \
        ["train", "vae", "--epochs", "0", "--steps", "20", "--set", "trainer.steps=20"]
    assert shorten(["sample", "r", "--steps", "5"]) == ["sample", "r", "--steps", "5"]
    quick = ["--set", "trainer.sample_every=0", "--set", "trainer.report=false"]
    assert with_defaults(["train", "gan", "--set", "trainer.steps=20", "--batch-size", "8"]) == \
        ["train", "gan", "--set", "trainer.steps=20", "--batch-size", "8", *quick]
    assert with_defaults(["train", "gan"]) == ["train", "gan", "--steps", "20", "--batch-size", "16", *quick]
    assert with_defaults(["evaluate", "r"]) == ["evaluate", "r", "--n", "200"]
    assert with_defaults(["train", "gan", "--help"]) == ["train", "gan", "--help"]


def test_a_broken_command_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="exited with 2"):
        run_command(Command("x.md", 1, "genmodels report no-such-run", False))
    with pytest.raises(AssertionError, match="no such example"):
        run_command(Command("x.md", 1, "python examples/missing.py --quick", False))
