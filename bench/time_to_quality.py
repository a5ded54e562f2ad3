"""Time to quality: FD-mnist (n = 1,000, DPM-Solver++ 20 steps) against CPU-minutes of training,
for shipped recipes, measured entirely through the command line (`genmodels train`, `evaluate`,
`sample`).

    python bench/time_to_quality.py run --recipe ddpm-mnist-fast --budgets 2,5,10,15,30 --separate --out DIR
    python bench/time_to_quality.py run --recipe ddpm-ho2020 --budgets 2,5,10,15,30 --out DIR
    python bench/time_to_quality.py report DIR [DIR ...] --plot docs/images/ddpm_time_to_quality.png

The x-axis is the training process's CPU time (`cpu_time` in metrics.jsonl), with one thread per
run, so the figures hold on a shared machine too: a one-thread step costs the same CPU time
whatever else runs (its wall time does not). Two modes:
  --separate  one run per budget, each with the step count that fills that budget (the recipe's
              learning-rate schedule then completes in every run: what a user gets who trains for
              that long);
  (default)   one run of the largest budget, with checkpoints kept along the way; each budget is
              the checkpoint nearest it (right for schedules that do not depend on the run length,
              e.g. a constant learning rate after warm-up).
The step count of a budget comes from a short calibration run (CPU seconds per step after its
first 10 steps). Each budget's row: CPU-minutes actually used, steps, FD-mnist and the real-data
floor at the same n (`genmodels evaluate`), and a grid of 64 samples (`genmodels sample`).
This is a quality study, not a speed benchmark: `python -m bench` does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLER = ["--sample-option", "sampler=dpm++", "--sample-option", "steps=20"]


def genmodels(*argv: str, log: Path | None = None) -> str:
    """Run `python -m genmodels ARGV` on one thread; its stdout (stderr goes to `log`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genmodels", *argv]
    print("$", " ".join(["genmodels", *argv]), flush=True)
    with open(log or os.devnull, "a") as err:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    if done.returncode:
        raise SystemExit(f"command failed (exit {done.returncode}): {' '.join(cmd)}; see {log}")
    return done.stdout


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()
            and "cpu_time" in json.loads(line)]


def train(recipe: str, run: Path, steps: int, extra: list[str], log: Path) -> None:
    if (run / "checkpoints" / "latest.pt").is_file():
        print(f"{run}: already trained, kept", flush=True)
        return
    genmodels("train", "--recipe", recipe, "--out", str(run), "--steps", str(steps), "--threads", "1",
              "--no-progress", *extra, log=log)


def calibrate(recipe: str, out: Path, log: Path) -> float:
    """CPU seconds per training step of the recipe on one thread (steps 10..40 of a 40-step run)."""
    run = out / "calibration"
    train(recipe, run, 40, ["--set", "trainer.log_every=10", "--set", "trainer.sample_every=0",
                            "--set", "trainer.report=false"], log)
    rows = {r["step"]: r["cpu_time"] for r in metrics(run)}
    return (rows[40] - rows[10]) / 30


def evaluate(run: Path, checkpoint: Path, n: int, log: Path) -> dict:
    out = genmodels("evaluate", str(run), "--checkpoint", str(checkpoint), "--metrics", "fd", "--n", str(n),
                    *SAMPLER, "--no-progress", "--json", log=log)
    return json.loads(out)


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    budgets = [float(b) for b in args.budgets.split(",")]
    per_step = calibrate(args.recipe, out, log)     # an existing calibration run is kept
    print(f"{args.recipe}: {per_step:.3f} CPU-s per step on one thread", flush=True)
    rows = []
    if args.separate:
        for minutes in budgets:
            steps = max(10, round(minutes * 60 / per_step))
            run = out / f"{minutes:g}min"
            train(args.recipe, run, steps, [], log)
            cpu = metrics(run)[-1]["cpu_time"]
            rows.append(measure(run, run / "checkpoints" / "latest.pt", minutes, steps, cpu, args.n, log))
    else:
        steps = round(max(budgets) * 60 / per_step)
        keep = max(10, steps // 60)                          # about 60 kept checkpoints, each on a logged step
        run = out / "run"
        if not args.evaluate_only:
            train(args.recipe, run, steps, ["--set", f"trainer.keep_every={keep}", "--set",
                                            f"trainer.log_every={keep}"], log)
        logged = {r["step"]: r["cpu_time"] for r in metrics(run)}
        kept = sorted(s for s in (int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
                      if s in logged)
        for minutes in budgets:
            if logged[kept[-1]] < 0.95 * minutes * 60:
                print(f"{minutes:g} CPU-minutes: not reached (the run was stopped at "
                      f"{logged[kept[-1]] / 60:.1f})", flush=True)
                continue
            step = min(kept, key=lambda s: abs(logged[s] - minutes * 60))
            rows.append(measure(run, run / "checkpoints" / f"step_{step:07d}.pt", minutes, step, logged[step],
                                args.n, log))
    result = {"recipe": args.recipe, "mode": "separate runs" if args.separate else "checkpoints of one run",
              "cpu_seconds_per_step": round(per_step, 4), "n": args.n, "rows": rows}
    (out / "time_to_quality.json").write_text(json.dumps(result, indent=2))
    print("RESULT " + json.dumps(result), flush=True)


def measure(run: Path, checkpoint: Path, minutes: float, steps: int, cpu: float, n: int, log: Path) -> dict:
    scores = evaluate(run, checkpoint, n, log)
    grid = run / f"grid_{minutes:g}min.png"
    genmodels("sample", str(run), "--checkpoint", str(checkpoint), "--n", "64", "--sampler", "dpm++", "--steps",
              "20", "--out", str(grid), log=log)
    fd, floor = scores["metrics"]["FD-mnist"]["value"], scores["metrics"]["FD-mnist"]["real_floor"]
    row = {"budget_min": minutes, "cpu_min": round(cpu / 60, 2), "steps": steps, "fd": fd, "floor": floor,
           "grid": str(grid), "checkpoint": str(checkpoint)}
    print(json.dumps(row), flush=True)
    return row


def cmd_report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results: list[dict] = []
    for d in args.dirs:                 # folders of one recipe and mode (e.g. budgets run side by side) merge
        r = json.loads((Path(d) / "time_to_quality.json").read_text())
        same = [q for q in results if (q["recipe"], q["mode"]) == (r["recipe"], r["mode"])]
        if same:
            same[0]["rows"] = sorted(same[0]["rows"] + r["rows"], key=lambda row: row["budget_min"])
        else:
            results.append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    lines = ["| recipe | budget (CPU-min) | used (CPU-min) | steps | FD-mnist | floor | FD / floor |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        xs = [row["cpu_min"] for row in r["rows"]]
        ax.plot(xs, [row["fd"] for row in r["rows"]], "o-", label=f"{r['recipe']} ({r['mode']})")
        for row in r["rows"]:
            ratio = f"{row['fd'] / row['floor']:.2f}" if row["floor"] else "-"
            lines.append(f"| {r['recipe']} | {row['budget_min']:g} | {row['cpu_min']:.1f} | {row['steps']} | "
                         f"{row['fd']:.1f} | {row['floor']:.1f} | {ratio} |")
    floor = results[0]["rows"][0]["floor"]
    if floor:
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"real-data floor (n = {results[0]['n']})")
        ax.axhline(1.5 * floor, color="grey", ls=":", lw=1, label="1.5 x floor")
    ax.set_xlabel("training CPU-minutes (one thread)")
    ax.set_ylabel("FD-mnist (n = 1,000, DPM-Solver++ 20)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("DDPM on mnist5k: time to quality")
    fig.tight_layout()
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate one recipe at several budgets")
    r.add_argument("--recipe", required=True)
    r.add_argument("--budgets", default="2,5,10,15,30", help="CPU-minutes, comma-separated")
    r.add_argument("--separate", action="store_true", help="one run per budget (see the module docstring)")
    r.add_argument("--n", type=int, default=1000, help="samples for FD (and real images for the floor)")
    r.add_argument("--out", required=True, help="folder for the runs (outside the repository)")
    r.add_argument("--evaluate-only", action="store_true",
                   help="without --separate: evaluate the kept checkpoints of a run that was stopped early "
                        "(budgets it did not reach are skipped)")
    r.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="table and plot from finished `run` folders")
    rep.add_argument("dirs", nargs="+")
    rep.add_argument("--plot", default="", help="write the plot to this PNG")
    rep.set_defaults(func=cmd_report)
    args = p.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
