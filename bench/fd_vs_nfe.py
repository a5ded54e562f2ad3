"""Sample quality against sampling cost: FD-mnist (n = 1,000, beside the real-data floor) against the
number of network evaluations (NFE) for every DDPM sampler, on one trained model, measured entirely
through the command line (`genmodels evaluate SOURCE --metrics fd --sample-option ...`).

    python bench/fd_vs_nfe.py run zoo:ddpm-mnist --out DIR
    python bench/fd_vs_nfe.py run zoo:ddpm-mnist --out DIR --samplers "dpm++:spacing=uniform;dpm++:clip_x0=false"
    python bench/fd_vs_nfe.py report DIR --plot docs/images/ddpm_fd_vs_nfe.png

A sampler SPEC is a sampler name with optional `:KEY=VALUE` sample options (e.g. `ddim:eta=1`). For every
sampler but Heun the NFE is the number of visited noise levels (`steps`); Heun (Karras et al. 2022,
Algorithm 1) evaluates the network 2N - 1 times for N levels, so it runs N = (NFE + 1) / 2 rounded and
reports its actual NFE. Every point is one `genmodels evaluate` process on one thread, with the same
seed, so all samplers start from the same x_T; its row (FD, the CPU seconds it took, the command) is
appended to DIR/points.jsonl as soon as it is measured, and points already there are skipped, so a
stopped run resumes where it was. The points run cheapest first, so a partial run already covers
every sampler. The floor (two disjoint real samples of n digits) is measured once, by the first point.
This is a quality study, not a speed benchmark: `python -m bench` does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

SAMPLERS = "ancestral;ddim;dpm++;heun;euler-ancestral"
NFES = "10,20,35,50,100,250,1000"


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'dpm++:spacing=uniform' -> ('dpm++', {'spacing': 'uniform'})."""
    name, *pairs = spec.strip().split(":")
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"sampler spec {spec!r}: expected NAME[:KEY=VALUE...]")
        options[key] = value
    return name, options


def steps_for(sampler: str, nfe: int) -> tuple[int, int]:
    """(steps, actual NFE) for a target number of network evaluations."""
    if sampler == "heun":
        steps = max(1, round((nfe + 1) / 2))
        return steps, 2 * steps - 1
    return nfe, nfe


def evaluate(source: str, options: dict[str, str], n: int, floor: bool, log: Path) -> tuple[dict, float, str]:
    """Run one `genmodels evaluate` on one thread: (its JSON, the CPU seconds it used, the command)."""
    argv = ["evaluate", source, "--metrics", "fd", "--n", str(n), "--json", "--no-progress"]
    for key, value in options.items():
        argv += ["--sample-option", f"{key}={value}"]
    if not floor:
        argv.append("--no-floor")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = " ".join(["genmodels", *argv])
    print("$", command, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "a") as err:
        done = subprocess.run([sys.executable, "-m", "genmodels", *argv], env=env, stdout=subprocess.PIPE,
                              stderr=err, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"command failed (exit {done.returncode}): {command}; see {log}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout), cpu, command


def read_points(out: Path) -> list[dict]:
    path = out / "points.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    specs = [s for s in args.samplers.split(";") if s.strip()]
    nfes = [int(x) for x in args.nfe.split(",")]
    done = {(p["spec"], p["target_nfe"]) for p in read_points(out)}
    have_floor = any(p.get("floor") for p in read_points(out))
    plan = sorted(((steps_for(parse_spec(spec)[0], nfe)[1], spec, nfe) for spec in specs for nfe in nfes),
                  key=lambda item: (item[0], specs.index(item[1])))
    for _cost, spec, nfe in plan:
        if (spec, nfe) in done:
            continue
        name, options = parse_spec(spec)
        steps, actual = steps_for(name, nfe)
        scores, cpu, command = evaluate(args.source, {"sampler": name, "steps": str(steps), **options}, args.n,
                                        not have_floor, log)
        fd = scores["metrics"]["FD-mnist"]
        row = {"spec": spec, "sampler": name, "options": options, "target_nfe": nfe, "steps": steps, "nfe": actual,
               "fd": fd["value"], "floor": fd["real_floor"], "n": args.n, "cpu_s": round(cpu, 1),
               "source": args.source, "title": scores["title"], "command": command}
        have_floor = have_floor or bool(fd["real_floor"])
        with open(out / "points.jsonl", "a") as f:          # one whole line per point
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def cmd_report(args: argparse.Namespace) -> None:
    import matplotlib.figure

    points = [p for d in args.dirs for p in read_points(Path(d))]
    if not points:
        raise SystemExit(f"no points in {', '.join(args.dirs)}")
    floor = next((p["floor"] for p in points if p.get("floor")), None)
    specs = list(dict.fromkeys(p["spec"] for p in points))
    nfes = sorted({p["target_nfe"] for p in points})
    by = {(p["spec"], p["target_nfe"]): p for p in points}
    fig = matplotlib.figure.Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for spec in specs:
        rows = sorted((p for p in points if p["spec"] == spec), key=lambda p: p["nfe"])
        ax.plot([p["nfe"] for p in rows], [p["fd"] for p in rows], "o-", ms=4, label=spec)
    if floor:
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"real-data floor (n = {points[0]['n']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("network evaluations per sample (NFE)")
    ax.set_ylabel(f"FD-mnist (n = {points[0]['n']:,})")
    ax.set_title(points[0]["title"].split(":")[0], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
    head = "| sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " |"
    lines = [head, "|---" * (len(nfes) + 1) + "|"]
    for spec in specs:
        cells = []
        for n in nfes:
            p = by.get((spec, n))
            cells.append("-" if p is None else (f"{p['fd']:.1f}" + (f" ({p['nfe']})" if p["nfe"] != n else "")))
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    if floor:
        lines.append(f"\nReal-data floor at n = {points[0]['n']:,}: {floor:.2f}. "
                     f"CPU time of all points: {sum(p['cpu_s'] for p in points) / 60:.0f} CPU-minutes.")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"floor": floor, "points": points}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure FD against NFE for every sampler (resumable)")
    r.add_argument("source", help="a DDPM run directory or zoo:NAME")
    r.add_argument("--out", required=True, help="folder for points.jsonl and the log (outside the repository)")
    r.add_argument("--samplers", default=SAMPLERS, help=f"';'-separated sampler specs (default {SAMPLERS!r})")
    r.add_argument("--nfe", default=NFES, help=f"target network evaluations, comma-separated (default {NFES})")
    r.add_argument("--n", type=int, default=1000, help="samples per point, and real digits for the floor")
    rep = sub.add_parser("report", help="table (markdown) and plot from `run` folders")
    rep.add_argument("--plot", default="", help="write the plot to this PNG")
    rep.add_argument("--json", default="", help="also write every point to this JSON file (for the docs)")
    rep.add_argument("dirs", nargs="+", help="folders written by `run`")
    parsed = p.parse_args(argv)
    {"run": cmd_run, "report": cmd_report}[parsed.command](parsed)


if __name__ == "__main__":
    main()
