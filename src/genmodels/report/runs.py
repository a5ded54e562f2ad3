"""Listing run directories (`genmodels runs [DIR]`): model, data, steps, the last logged losses
and the last evaluation (RUN_DIR/eval.json) of every run under a folder. Reads only
config.toml, metrics.jsonl and eval.json (no checkpoint is loaded), so it is fast."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from genmodels.errors import ConfigError
from genmodels.run.layout import CONFIG, EVAL, METRICS
from genmodels.run.metrics_file import NOT_SERIES


@dataclass
class RunSummary:
    """One line of `genmodels runs`."""

    path: Path
    model: str
    data: str
    step: int                                                 # last logged step (0 if none)
    steps: int | None                                         # trainer.steps of the config
    losses: dict[str, float] = field(default_factory=dict)    # the last metrics.jsonl record
    metrics: dict[str, float] = field(default_factory=dict)   # eval.json values
    problem: str = ""                                         # why the run could not be read fully

    def to_dict(self) -> dict:
        return {"path": str(self.path), "model": self.model, "data": self.data, "step": self.step,
                "steps": self.steps, "losses": self.losses, "metrics": self.metrics, "problem": self.problem}


def find_runs(root: str | Path) -> list[Path]:
    """Run directories (folders holding config.toml) at or under `root`, sorted by path; hidden
    folders and the insides of runs are not searched. ConfigError if `root` is not a directory."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such directory")
    found = []
    for here, dirs, files in os.walk(root):
        if CONFIG in files:
            found.append(Path(here))
            dirs[:] = []  # a run's own folders (samples, checkpoints) hold no runs
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found)


def _last_record(path: Path) -> dict:
    """The last complete JSON line of logged values in metrics.jsonl ({} if none), read from the end."""
    if not path.is_file():
        return {}
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 65536))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line, or the first, cut, line of the window
        if isinstance(record, dict) and "step" in record and "event" not in record:  # events log no values
            return record
    return {}


def _numbers(d: dict) -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if k in NOT_SERIES or isinstance(v, bool):
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _eval_values(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    metrics = report.get("metrics", {}) if isinstance(report, dict) else {}
    out = {}
    for name, m in metrics.items() if isinstance(metrics, dict) else ():
        value = m.get("value") if isinstance(m, dict) else m
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def summarize(run_dir: str | Path) -> RunSummary:
    """What `genmodels runs` shows of one run directory."""
    run_dir = Path(run_dir)
    try:
        config = tomllib.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
        problem = ""
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        config, problem = {}, f"{CONFIG} unreadable: {e}"
    model = config.get("model", {}).get("name", "?")
    data = config.get("data", {}).get("name", "?")
    steps = config.get("trainer", {}).get("steps")
    last = _last_record(run_dir / METRICS)
    return RunSummary(path=run_dir, model=model, data=data, step=int(last.get("step", 0)),
                      steps=steps if isinstance(steps, int) else None, losses=_numbers(last),
                      metrics=_eval_values(run_dir / EVAL), problem=problem)


def _values(d: dict[str, float], limit: int = 4) -> str:
    items = [f"{k} {v:.4g}" for k, v in list(d.items())[:limit]]
    if len(d) > limit:
        items.append(f"+{len(d) - limit} more")
    return ", ".join(items) or "-"


def format_runs(runs: list[RunSummary], root: Path | None = None) -> str:
    """A plain-text table, one run per line (paths relative to `root` when given)."""
    head = ["run", "model", "data", "steps", "last losses", "last metrics"]
    rows = []
    for r in runs:
        name = str(r.path.relative_to(root)) if root is not None and r.path != root and r.path.is_relative_to(root) \
            else str(r.path)
        steps = f"{r.step}/{r.steps}" if r.steps is not None else str(r.step)
        rows.append([name, r.model, r.data, steps, _values(r.losses),
                     _values(r.metrics) if not r.problem else r.problem])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
