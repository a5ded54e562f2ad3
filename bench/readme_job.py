"""The README's first command, timed and measured, so that the README states what it does on the CPU
it ran on: `genmodels train` and `genmodels sample` exactly as the README's first block writes them
(read from README.md, the run directory moved to DIR), on every core of an otherwise idle machine,
then FD-mnist and precision/recall of 1,000 samples drawn as the README draws them
(`genmodels evaluate RUN --metrics fd,prdc --n 1000`, which uses the run's recorded sampler).

    python -m bench.readme_job run --out DIR                     # as written: --precision auto
    python -m bench.readme_job run --out DIR --precision fp32    # the fp32 path (what a CPU without bf16 runs)
    python -m bench.readme_job table [--write]                   # the README's table, from the rows

Each run appends a row to docs/figures/readme_job.json (one per CPU model, native bf16 or not, and
precision; a new run of the same three replaces its row): the CPU model, whether it has native bf16, the precision the
run resolved, threads, the training's wall seconds and seconds per step, the grid's seconds, FD and
its real-data floor. tests/test_readme_job.py checks that the README's table is `table`'s output.
This is a measurement of the product, not a timed test: `python -m bench` does not run it.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench.ddpm_study import cpu_info

ROOT = Path(__file__).resolve().parent.parent
ROWS = ROOT / "docs" / "figures" / "readme_job.json"
PRECISION_LINE = re.compile(r"genmodels: precision (\w+) \((.*)\), (\d+) thread")   # the reason may hold parentheses
BEGIN, END = "<!-- readme-job:begin (python -m bench.readme_job table) -->", "<!-- readme-job:end -->"


def readme_commands(readme: Path = ROOT / "README.md") -> tuple[list[str], list[str], str]:
    """(train argv, sample argv, run directory) of the first ```bash block's genmodels commands."""
    block = re.search(r"```bash\n(.*?)```", readme.read_text(), re.S)
    if block is None:
        raise SystemExit("README.md has no ```bash block")
    parts = [shlex.split(p.strip()) for line in block.group(1).splitlines() if not line.startswith("#")
             for p in line.split("&&")]
    train = next(p for p in parts if p[:2] == ["genmodels", "train"])
    sample = next(p for p in parts if p[:2] == ["genmodels", "sample"])
    run_dir = train[train.index("--out") + 1]
    return train[1:], sample[1:], run_dir


def genmodels(argv: list[str]) -> tuple[float, str]:
    """Wall seconds and stderr of `python -m genmodels ARGV` (every core: the README's setting)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "genmodels", *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"genmodels {' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stderr + done.stdout


def cmd_run(args: argparse.Namespace) -> None:
    train, sample, run_dir = readme_commands()
    as_written = {"train_argv": list(train), "sample_argv": list(sample)}   # what the README shows, for the test
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; name a new folder")
    train = [str(out) if a == run_dir else a for a in train] + (["--precision", args.precision]
                                                                if args.precision != "auto" else [])
    sample = [a.replace(run_dir, str(out)) for a in sample]
    train_s, log = genmodels(train + ["--no-progress"])
    chosen = PRECISION_LINE.search(log)
    if chosen is None:
        raise SystemExit(f"no 'genmodels: precision ...' line in the training's output:\n{log[-2000:]}")
    sample_s, _ = genmodels(sample)
    done = subprocess.run([sys.executable, "-m", "genmodels", "evaluate", str(out), "--metrics", "fd,prdc", "--n",
                           "1000", "--json", "--no-progress"], stdout=subprocess.PIPE, text=True, check=True)
    metrics = json.loads(done.stdout)["metrics"]
    steps = int(train[train.index("--steps") + 1])
    row = {**cpu_info(), "precision": chosen.group(1), "why": chosen.group(2), "threads": int(chosen.group(3)),
           "command_precision": args.precision, "steps": steps, "train_s": round(train_s, 1),
           "s_per_step": round(train_s / steps, 3), "sample_s": round(sample_s, 1),
           "fd": round(metrics["FD-mnist"]["value"], 1), "floor": round(metrics["FD-mnist"]["real_floor"], 1),
           "precision_prdc": metrics["precision"]["value"], "recall_prdc": metrics["recall"]["value"],
           "date": time.strftime("%Y-%m-%d"), **as_written}
    rows = json.loads(ROWS.read_text()) if ROWS.is_file() else []
    rows = [r for r in rows if key(r) != key(row)] + [row]
    ROWS.parent.mkdir(parents=True, exist_ok=True)
    ROWS.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(row))


def key(row: dict) -> tuple:
    """A row's identity: the CPU's model name (one name covers several generations, "AMD EPYC" both
    Zen 2 and Zen 4), whether it has native bf16, and the precision the run resolved."""
    return row["cpu"], row["avx512_bf16"], row["precision"]


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60):02d} s"


def table(rows: list[dict]) -> str:
    """The README's timing table (markdown) from the rows."""
    lines = ["| CPU | native bf16 | precision | training | per step | grid of 64 | FD-mnist (floor) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cpu']}, {r['threads']} threads | {'yes' if r['avx512_bf16'] else 'no'} | "
                     f"{r['precision']} ({'auto' if r['command_precision'] == 'auto' else 'forced'}) | "
                     f"{minutes(r['train_s'])} | {r['s_per_step']:.3f} s | {r['sample_s']:.1f} s | "
                     f"{r['fd']:.1f} ({r['floor']:.1f}) |")
    return "\n".join(lines)


def cmd_table(args: argparse.Namespace) -> None:
    text = table(json.loads(ROWS.read_text()))
    print(text)
    if args.write:                      # into README.md, between the markers
        readme = ROOT / "README.md"
        head, rest = readme.read_text().split(BEGIN, 1)
        readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the README's first command's genmodels steps and measure them")
    r.add_argument("--out", required=True, help="a new folder for the run (outside the repository)")
    r.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    r.set_defaults(func=cmd_run)
    t = sub.add_parser("table", help="print the README's table")
    t.add_argument("--write", action="store_true", help="also write it into README.md between its markers")
    t.set_defaults(func=cmd_table)
    args = p.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
