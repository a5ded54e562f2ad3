"""Quality per CPU-minute of DDPM candidates on MNIST: which network, objective, noise-level
density, EMA and data give the best samples for a fixed training CPU budget, on the fp32 path
that most CPUs run (and on bf16 where the CPU has native bf16).

    python -m bench.ddpm_study list
    python -m bench.ddpm_study run --candidates base,c32 --budgets 5 --precision fp32 --out DIR
    python -m bench.ddpm_study report DIR --markdown study.md --plot curve.png

Everything goes through the command line (`genmodels train`, `evaluate`, `sample`), one thread per
process. A candidate is a set of `genmodels train` flags on top of the `ddpm-mnist-fast` recipe
(the image defaults); each (candidate, budget, precision) is its own run whose step count fills
the budget, measured by a short calibration run of the same candidate (CPU seconds per step on one
thread), so its cosine learning-rate decay completes. The x-axis is the training process's CPU
time (`cpu_time` in metrics.jsonl), which holds on a shared machine too.

Every row records the CPU model, whether it has AVX512-BF16, the torch version and the precision,
so rows from different machines are never mixed unknowingly: `report` groups by CPU. The study is
resumable: finished rows (DIR/rows.jsonl) are kept, a trained run is evaluated, not retrained, and
an interrupted run resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

RECIPE = "ddpm-mnist-fast"

# name -> (what it tests, with the paper, train flags over the recipe)
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "base": ("today's image defaults: 16 channels, levels 28/14/7, 1 block per level, attention at 7, "
             "v prediction, min-SNR-5, uniform t, mnist5k", []),
    "mnist": ("the defaults on full MNIST (60,000 digits) instead of mnist5k's 4,000", ["--data", "mnist"]),
    "c32": ("wider: 32 base channels", ["--channels", "32"]),
    "c32-2lvl": ("wider and shallower: 32 channels, levels 28/14 (mults 1,2), attention at 14 off",
                 ["--channels", "32", "--channel-mults", "1,2", "--attention-resolutions", ""]),
    "c24": ("24 base channels", ["--channels", "24"]),
    "c16-2blk": ("deeper: 2 residual blocks per level", ["--num-res-blocks", "2"]),
    "noattn7": ("no attention at 7x7 (the middle block keeps its attention)", ["--attention-resolutions", ""]),
    "bs32": ("batch 32: twice the steps for the same CPU", ["--batch-size", "32"]),
    "bs128": ("batch 128: half the steps, less gradient noise", ["--batch-size", "128"]),
    "lr2e-3": ("Adam 2e-3", ["--lr", "2e-3"]),
    "cosine": ("cosine schedule (Nichol & Dhariwal 2021)", ["--schedule", "cosine"]),
    "eps": ("eps prediction with uniform weighting (Ho et al. 2020)", ["--prediction", "eps", "--snr-gamma", "0"]),
    "c32-mnist": ("32 channels on full MNIST", ["--channels", "32", "--data", "mnist"]),
    "edm": ("Karras et al. 2022's training: preconditioning (sigma_d 0.5), lognormal sigma (-1.2, 1.2), unit "
            "weight on F", ["--prediction", "edm", "--noise-density", "lognormal"]),
    "edm-uniform": ("Karras et al.'s preconditioning with today's uniform t", ["--prediction", "edm"]),
    "v-lognormal": ("v prediction, lognormal sigma (-1.2, 1.2), no SNR weighting (EDM with sigma_d = 1)",
                    ["--noise-density", "lognormal", "--snr-gamma", "0"]),
    "v-logitnormal": ("v prediction, min-SNR-5, logit-normal(0, 1) time (Esser et al. 2024)",
                      ["--noise-density", "logit-normal"]),
    "v-softmin": ("v prediction, soft-min-SNR-5 (Crowson et al. 2024)", ["--snr-weighting", "soft-min"]),
    "m124": ("more width where it is cheap: channel multipliers 1,2,4 (64 channels at 7x7)",
             ["--channel-mults", "1,2,4"]),
    "compile": ("torch.compile of the denoiser (its compile time counts)", ["--compile"]),
    "channels-last": ("channels-last memory format", ["--channels-last"]),
}


def cpu_info() -> dict:
    """The CPU's model name and whether it has native bf16 (AVX512-BF16 or AMX-BF16 on x86)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine()):
                model = value.strip()
            if key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model, "avx512_bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
            "avx2": "avx2" in flags, "torch": torch.__version__}


def genmodels(*argv: str, log: Path) -> str:
    """Run `python -m genmodels ARGV` on one thread; its stdout (stderr goes to `log`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genmodels", *argv]
    with open(log, "a") as err:
        print("$", " ".join(["genmodels", *argv]), file=err, flush=True)
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    if done.returncode:
        raise SystemExit(f"command failed (exit {done.returncode}): {' '.join(cmd)}; see {log}")
    return done.stdout


def logged(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if "cpu_time" in r]


def train(run: Path, flags: list[str], precision: str, steps: int, extra: list[str], log: Path) -> None:
    """Train `run` to `steps` (resuming an interrupted run; a finished one is kept)."""
    done = logged(run)
    if done and done[-1]["step"] >= steps:
        return
    if (run / "checkpoints" / "latest.pt").is_file():
        genmodels("train", "--resume", "--out", str(run), "--threads", "1", "--no-progress", log=log)
        return
    genmodels("train", "--recipe", RECIPE, *flags, "--precision", precision, "--out", str(run), "--steps",
              str(steps), "--threads", "1", "--no-progress", *extra, log=log)


def calibrate(out: Path, name: str, flags: list[str], precision: str, log: Path) -> float:
    """CPU seconds per training step on one thread (steps 10..40 of a 40-step run)."""
    run = out / "calibration" / f"{name}-{precision}"
    train(run, flags, precision, 40, ["--set", "trainer.log_every=10", "--set", "trainer.sample_every=0",
                                      "--set", "trainer.report=false", "--set", "trainer.checkpoint_every=40"], log)
    rows = {r["step"]: r["cpu_time"] for r in logged(run)}
    return (rows[40] - rows[10]) / 30


def evaluate(run: Path, sampler: str, steps: int, n: int, log: Path) -> dict:
    out = genmodels("evaluate", str(run), "--metrics", "fd,prdc", "--n", str(n), "--sample-option",
                    f"sampler={sampler}", "--sample-option", f"steps={steps}", "--no-progress", "--json", log=log)
    return json.loads(out)["metrics"]


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log, rows_file = out / "commands.log", out / "rows.jsonl"
    done = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.is_file() else []
    samplers = [(s.split(":")[0], int(s.split(":")[1])) for s in args.samplers.split(",")]
    cpu = cpu_info()
    for name in args.candidates.split(","):
        if name not in CANDIDATES:
            raise SystemExit(f"unknown candidate {name!r}; `python -m bench.ddpm_study list` lists them")
        what, flags = CANDIDATES[name]
        per_step = calibrate(out, name, flags, args.precision, log)
        print(f"{name} [{args.precision}]: {per_step:.3f} CPU-s per step on one thread", flush=True)
        for minutes in (float(b) for b in args.budgets.split(",")):
            run = out / f"{name}-{args.precision}-{minutes:g}min"
            steps = max(10, round(minutes * 60 / per_step))
            train(run, flags, args.precision, steps, [], log)
            cpu_s = logged(run)[-1]["cpu_time"]
            for sampler, nfe in samplers:
                key = (name, args.precision, minutes, sampler, nfe, cpu["cpu"])
                if any((r["candidate"], r["precision"], r["budget_min"], r["sampler"], r["steps_sampler"],
                        r["cpu"]) == key for r in done):
                    continue
                m = evaluate(run, sampler, nfe, args.n, log)
                fd = m["FD-mnist"]
                row = {"candidate": name, "what": what, "flags": " ".join(flags), "precision": args.precision,
                       "budget_min": minutes, "cpu_min": round(cpu_s / 60, 2), "train_steps": steps,
                       "cpu_s_per_step": round(per_step, 4), "sampler": sampler, "steps_sampler": nfe,
                       "n": args.n, "fd": fd["value"], "floor": fd["real_floor"],
                       "precision_prdc": m.get("precision", {}).get("value"),
                       "recall_prdc": m.get("recall", {}).get("value"), "run": str(run), **cpu}
                done.append(row)
                with open(rows_file, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
            grid = run / "grid.png"
            if not grid.is_file():
                genmodels("sample", str(run), "--n", "64", "--sample-option", f"sampler={samplers[0][0]}",
                          "--sample-option", f"steps={samplers[0][1]}", "--out", str(grid), log=log)


def cmd_report(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for d in args.dirs for line in (Path(d) / "rows.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: (r["cpu"], r["precision"], r["budget_min"], r["fd"]))
    lines = ["| CPU (AVX512-BF16) | precision | candidate | budget | CPU-min | steps | CPU-s/step | sampler "
             "| FD-mnist | floor | FD / floor | precision | recall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cpu']} ({'yes' if r['avx512_bf16'] else 'no'}) | {r['precision']} | {r['candidate']} "
                     f"| {r['budget_min']:g} | {r['cpu_min']:.1f} | {r['train_steps']} | {r['cpu_s_per_step']:.3f} "
                     f"| {r['sampler']}-{r['steps_sampler']} | {r['fd']:.1f} | {r['floor']:.1f} "
                     f"| {r['fd'] / r['floor']:.2f} | {r['precision_prdc'] or 0:.2f} | {r['recall_prdc'] or 0:.2f} |")
    text = "\n".join(lines)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    print(text)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 5))
        series: dict[tuple, list[dict]] = {}
        for r in rows:
            if not args.sampler or f"{r['sampler']}-{r['steps_sampler']}" == args.sampler:
                series.setdefault((r["candidate"], r["precision"], r["sampler"], r["steps_sampler"]), []).append(r)
        markers = {"dpm++": "o", "euler-ancestral": "^"}
        for (name, precision, sampler, nfe), rs in sorted(series.items()):
            rs.sort(key=lambda r: r["cpu_min"])
            x, y = [r["cpu_min"] for r in rs], [r["fd"] for r in rs]
            if len(rs) >= 2:        # a candidate measured at several budgets: its time-to-quality curve
                ax.plot(x, y, marker=markers.get(sampler, "s"), label=f"{name} {precision} {sampler}-{nfe}")
            elif args.points:       # one budget: a labelled point, grey
                ax.plot(x, y, marker=markers.get(sampler, "s"), color="0.6", ls="none", ms=4)
                if sampler == "euler-ancestral" or not any(k[0] == name and k[2] == "euler-ancestral" for k in series):
                    ax.annotate(name, (x[0], y[0]), fontsize=6, xytext=(4, 0), textcoords="offset points",
                                color="0.35", va="center")
        floor = rows[0]["floor"]
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"real-data floor (n = {rows[0]['n']:,})")
        ax.axhline(1.5 * floor, color="grey", ls=":", lw=1, label="1.5 x floor")
        ax.axhline(3 * floor, color="grey", ls="-.", lw=1, label="3 x floor")
        ax.set_xlabel("training CPU-minutes (one thread)")
        ax.set_ylabel(f"FD-mnist (n = {rows[0]['n']:,})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        from matplotlib.ticker import ScalarFormatter

        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.set_xticks([t for t in (1, 2, 3, 5, 10, 20, 30, 60, 120) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter("")
        ax.legend(fontsize=7, loc="upper right")
        what = "grey: candidates at one budget (o DPM-Solver++ 20, ^ Euler-ancestral 50)" if args.points else ""
        ax.set_title(f"DDPM on MNIST: time to quality ({rows[0]['cpu']}, {rows[0]['precision']})\n{what}", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the candidates and their flags").set_defaults(
        func=lambda a: print("\n".join(f"{k:12s} {' '.join(v[1]) or '(recipe)':60s} {v[0]}"
                                       for k, v in CANDIDATES.items())))
    r = sub.add_parser("run", help="train and evaluate candidates at CPU budgets")
    r.add_argument("--candidates", required=True, help="comma-separated names (`list`)")
    r.add_argument("--budgets", default="2,5,10,30", help="training CPU-minutes, comma-separated")
    r.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    r.add_argument("--samplers", default="dpm++:20", help="SAMPLER:STEPS, comma-separated (the first draws the grid)")
    r.add_argument("--n", type=int, default=1000, help="samples for FD (and real images for its floor)")
    r.add_argument("--out", required=True, help="folder for the runs (outside the repository)")
    r.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="table (and plot) of the rows of finished `run` folders")
    rep.add_argument("dirs", nargs="+")
    rep.add_argument("--markdown", default="")
    rep.add_argument("--plot", default="")
    rep.add_argument("--sampler", default="", help="plot only this SAMPLER-STEPS")
    rep.add_argument("--points", action="store_true", help="also plot single-budget candidates")
    rep.set_defaults(func=cmd_report)
    args = p.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
