"""`python -m bench`: run every benchmark under bench/ and write docs/benchmarks.md.

Each benchmark runs as its own process (its command is written next to its figures), on this
machine, in this one invocation, so every ratio in the table compares numbers measured side by
side. A benchmark prints human-readable lines and, optionally, `RESULT {json}` lines with
"benchmark", "ratio" and "detail" keys, which become rows of the table; a script without them
is still run and its output kept. Scripts in bench/ that are not listed in KNOWN run with no
arguments. Peers such as diffusers are installed only into the benchmark's own environment.

    python -m bench                      # everything, then docs/benchmarks.md
    python -m bench --only precision,scaling     # refresh these rows, keep the others' last results
    python -m bench --list

The generated part of the page sits between two marker comments; text outside them is kept. Each
benchmark's last result is also kept in docs/benchmarks.json, from which `--only` restores the rest.

A benchmark marked `needs_cuda` (its KNOWN entry ends with {"needs_cuda": True}) runs only where torch
sees a CUDA GPU; elsewhere it is not started: it keeps the figures of its last run on a GPU, if any,
or is listed with the status "no GPU". bench/gpu_check.sh runs them on a GPU machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench:begin (written by python -m bench) -->", "<!-- bench:end -->"
NO_GPU = "no GPU"


@dataclass
class Bench:
    name: str
    argv: list[str]                    # after the python interpreter
    about: str
    rows: list[dict] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    status: str = "not run"
    measured: str = ""                 # when it ran, and the load average at its start
    needs_cuda: bool = False           # runs only where torch sees a CUDA GPU (else status NO_GPU)

    @property
    def command(self) -> str:
        return " ".join(["python", *self.argv])


# name -> (argv after `python`, what it measures[, Bench options]); scripts in bench/ not listed here run bare
KNOWN: dict[str, tuple] = {
    "ddpm_vs_diffusers": (["bench/ddpm_vs_diffusers.py", "--threads", "1"], "DDPM train/sample throughput vs "
                          "diffusers at a matched U-Net"),
    "ddpm_vs_diffusers_bf16": (["bench/ddpm_vs_diffusers.py", "--threads", "1", "--precision", "bf16"],
                               "the same in bf16 autocast on both sides"),
    "gan_overhead": (["bench/gan_overhead.py", "--steps", "20", "--blocks", "5", "--threads", "1"],
                     "GAN training loop overhead vs a plain PyTorch loop"),
    "precision": (["-m", "bench.precision", "--threads", "1"], "CPU bf16 autocast / channels-last / compile vs "
                  "fp32 for DDPM training and sampling, with a quality check"),
    "scaling": (["-m", "bench.scaling", "--steps", "20", "--repeats", "3", "--batch-size", "64"],
                "data-parallel scaling 1 -> 2 processes with torchrun"),
    "scaling_overlap": (["-m", "bench.scaling", "--compare", "overlap", "--steps", "20", "--repeats", "3",
                         "--batch-size", "64"], "gradient all-reduce under torchrun (2 processes): one flat "
                        "all-reduce vs buckets overlapped with the backward pass vs bf16 buckets"),
    # on a CUDA GPU (bench/gpu_check.sh): blocks of 20 steps, long enough for a GPU's timers
    "ddpm_vs_diffusers_cuda": (["bench/ddpm_vs_diffusers.py", "--device", "cuda", "--blocks", "3", "--train-steps",
                                "20"], "DDPM train/sample throughput vs diffusers at a matched U-Net on one CUDA "
                               "GPU (fp32; torch's default TF32 convolutions)", {"needs_cuda": True}),
    "ddpm_vs_diffusers_cuda_bf16": (["bench/ddpm_vs_diffusers.py", "--device", "cuda", "--blocks", "3",
                                     "--train-steps", "20", "--precision", "bf16"],
                                    "the same in CUDA bf16 autocast on both sides", {"needs_cuda": True}),
}
# not run by `python -m bench`: time_to_quality and fd_vs_nfe are quality studies, profile_bf16 a profile,
# zoo_table writes docs/zoo.md's table from the zoo cards
NOT_BENCHMARKS = {"__main__", "__init__", "precision", "scaling", "time_to_quality", "fd_vs_nfe", "profile_bf16",
                  "zoo_table", "ddpm_study", "readme_job"}


def discover() -> list[Bench]:
    benches = []
    for name, (argv, about, *options) in KNOWN.items():
        b = Bench(name, argv, about, **(options[0] if options else {}))
        if argv[0].endswith(".py") and not (ROOT / argv[0]).is_file():
            b.status = "missing (script not in bench/)"
        benches.append(b)
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.stem not in KNOWN and path.stem not in NOT_BENCHMARKS and not path.stem.startswith("_"):
            benches.append(Bench(path.stem, [f"bench/{path.name}"], "(no description registered)"))
    return benches


def parse_rows(name: str, text: str) -> list[dict]:
    """RESULT {json} lines; for gan_overhead, its "overhead : +x%" line."""
    rows = []
    for line in text.splitlines():
        if line.startswith("RESULT "):
            try:
                row = json.loads(line[len("RESULT "):])
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "benchmark" in row:
                rows.append(row)
    if not rows and name == "gan_overhead":
        ref = re.search(r"reference loop:\s*([\d.]+)", text)
        lib = re.search(r"genmodels GAN\s*:\s*([\d.]+)", text)
        if ref and lib:
            r, g = float(ref.group(1)), float(lib.group(1))
            rows.append({"benchmark": "GAN training loop vs plain PyTorch loop (DCGAN 28x28)",
                         "ratio": round(g / r, 3),
                         "detail": f"{g:.1f} vs {r:.1f} images/s, overhead {100 * (1 - g / r):+.1f}%"})
    return rows


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def without_gpu(benches: list[Bench], to_run: set[str], earlier: dict[str, Bench]) -> list[Bench]:
    """No CUDA here: the GPU benchmarks to run keep the figures of their last run (on a GPU), if
    they have any, or get the status NO_GPU; either way they are not started."""
    kept = []
    for b in benches:
        if b.name in to_run and b.needs_cuda and b.status == "not run":
            last = earlier.get(b.name)
            if last is not None and last.rows:
                b = last
            else:
                b.status = NO_GPU
        kept.append(b)
    return kept


def run(b: Bench) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"== {b.name}: {b.command}", flush=True)
    b.measured = f"{now()}, load average at start {load_average()}"
    if b.needs_cuda:
        b.measured += f", on {gpu_name()}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *b.argv], cwd=ROOT, env=env, capture_output=True, text=True)
    b.seconds = time.perf_counter() - started
    b.output = done.stdout + (("\n[stderr]\n" + done.stderr[-3000:]) if done.returncode else "")
    b.status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
    b.rows = parse_rows(b.name, done.stdout)
    print(done.stdout[-3000:], flush=True)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr, flush=True)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def save_records(path: Path, benches: list[Bench]) -> None:
    """Every benchmark's last result, next to the page, so that `--only` refreshes some rows and keeps the rest."""
    keep = [b for b in benches if b.status != "not run"]
    path.write_text(json.dumps([vars(b) for b in keep], indent=1) + "\n", encoding="utf-8")


def load_records(path: Path) -> dict[str, Bench]:
    """The results saved by an earlier run (see save_records); {} when there are none or they are unreadable."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
        return {r["name"]: Bench(**r) for r in records}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def machine() -> dict[str, str]:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = ", ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16") if re.search(rf"\b{f}\b", text))
    except OSError:
        pass
    gpu = (gpu_name() if cuda_available()
           else "none: no GPU was available to this run; the CUDA paths (AMP, NCCL, compile on GPU) are "
                "tested only where one is, and their tests skip here")
    return {"CPU": f"{cpu or 'unknown'} ({os.cpu_count()} logical cores{'; ' + flags if flags else ''})",
            "GPU": gpu, "torch": torch.__version__, "Python": platform.python_version(), "date": now(),
            "load average at start": load_average()}


def render(benches: list[Bench], info: dict[str, str], command: str) -> str:
    lines = [BEGIN, "", f"Generated by `{command}` on one machine; every ratio compares two numbers measured side "
             "by side in one benchmark process (alternating blocks, medians). `--only` re-runs some benchmarks and "
             "keeps the others' last results (their dates are in their sections below). Re-run `python -m bench` "
             "to refresh everything.", ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    lines += ["", "| benchmark | ratio | measured | command |", "|---|---|---|---|"]
    for b in benches:
        if not b.rows:
            lines.append(f"| {b.name}: {b.about} | - | {b.status} | `{b.command}` |")
        for row in b.rows:
            lines.append(f"| {row['benchmark']} | {row.get('ratio', '-')} | {row.get('detail', '')} | `{b.command}` |")
    lines += ["", "Ratios are *new / baseline* as named in the first column (above 1 = faster, or for the quality "
              "row, a larger share of high-quality samples)."]
    for b in benches:
        lines += ["", f"### {b.name}", "", f"{b.about}. Command: `{b.command}` ({b.status}"
                  + (f", {b.seconds:.0f} s" if b.seconds else "") + (f"; measured {b.measured}" if b.measured else "")
                  + ")."]
        if b.output.strip():
            shown = "\n".join(line for line in b.output.strip().splitlines() if not line.startswith("RESULT "))
            lines += ["", "```", shown[-4000:], "```"]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write(path: Path, section: str) -> None:
    """Replace the generated section of `path`, keeping everything outside the markers."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    elif old.strip():
        text = old.rstrip("\n") + "\n\n" + section
    else:
        text = "# Benchmarks\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="page to write")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    args = parser.parse_args(argv)
    benches = discover()
    records = Path(args.out).with_suffix(".json")
    earlier = load_records(records)
    wanted = {b.name for b in benches}
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {b.name for b in benches}
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: {', '.join(b.name for b in benches)}")
        # the others keep their last results (or stay "not run")
        benches = [b if b.name in wanted else earlier.get(b.name, b) for b in benches]
    if args.list:
        for b in benches:
            print(f"{b.name:28s} {b.command}   [{b.status}{'; ' + b.measured if b.measured else ''}"
                  f"{'; needs a CUDA GPU' if b.needs_cuda else ''}]")
        return 0
    if any(b.needs_cuda for b in benches if b.name in wanted) and not cuda_available():
        benches = without_gpu(benches, wanted, earlier)
    to_run = [b for b in benches if b.name in wanted]
    info = machine()
    command = "python -m bench" + (f" --only {args.only}" if args.only else "")
    for b in to_run:
        if b.status == "not run":
            run(b)
            write(Path(args.out), render(benches, info, command))     # after each one: nothing is lost
            save_records(records, benches)
    write(Path(args.out), render(benches, info, command))
    print(f"wrote {args.out} and {records}")
    return 0 if all(not b.status.startswith("failed") for b in to_run) else 1


if __name__ == "__main__":
    raise SystemExit(main())
