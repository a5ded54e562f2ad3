"""`RUN_DIR/report.html`: one self-contained page (every image embedded as a base64 data URI,
no scripts, no network) that explains a run: its config, loss curves, sample grids over
training (latest first), the family's own views and the evaluation table with the real-data
floor (from `RUN_DIR/eval.json`, as written by `genmodels evaluate RUN_DIR --json`)."""

from __future__ import annotations

import base64
import datetime
import json
import re
from html import escape
from pathlib import Path
from string import Template

from genmodels.report.curves import series_of
from genmodels.report.views import View
from genmodels.run.layout import EVAL, SAMPLES
from genmodels.run.metrics_file import NOT_SERIES
from genmodels.viz import curves_png

MAX_SAMPLE_GRIDS = 24  # at most this many sample grids (evenly spread, the latest always kept)

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.configs { display: flex; flex-wrap: wrap; gap: 1.5em; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
figure.grid img { width: 300px; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; }
.note { background: #fff8e1; border-left: 4px solid #f0c040; padding: 0.4em 0.8em; margin: 0.5em 0; }
.muted { color: #777; font-size: 0.85em; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="muted">$subtitle</p>
<nav><a href="#config">config</a><a href="#curves">loss curves</a><a href="#samples">samples</a><a
  href="#views">model views</a><a href="#evaluation">evaluation</a></nav>
<h2 id="summary">Summary</h2>
$summary
<h2 id="config">Config</h2>
<div class="configs">$config</div>
<h2 id="curves">Loss curves</h2>
$curves
<h2 id="samples">Samples over training (latest first)</h2>
$samples
<h2 id="views">Model views</h2>
$views
<h2 id="evaluation">Evaluation</h2>
$evaluation
</body>
</html>
""")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(png: bytes, caption: str, alt: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (f'<figure{cls}><img src="{data_uri(png)}" alt="{escape(alt)}">'
            f'<figcaption>{escape(caption)}</figcaption></figure>')


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


NUM = ' class="num"'


def table(head: list[str] | None, rows: list[list], numeric_from: int = 1) -> str:
    """An HTML table of escaped cells; columns from `numeric_from` on are right-aligned."""
    out = ["<table>" + ("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" if head else "")]
    for row in rows:
        cells = [f"<td{NUM if i >= numeric_from else ''}>{escape(fmt(v))}</td>" for i, v in enumerate(row)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


# ---------------------------------------------------------------------------------------------
# Sections


def config_section(config: dict) -> str:
    """One table per section of config.toml ([data], [trainer], [model], [spec]) plus the top level."""
    top = [[k, v] for k, v in config.items() if not isinstance(v, dict)]
    parts = [table(["run", ""], top, numeric_from=2)] if top else []
    for section, values in config.items():
        if isinstance(values, dict):
            parts.append(table([f"[{section}]", ""], [[k, v] for k, v in values.items()], numeric_from=2))
    return "".join(f"<div>{p}</div>" for p in parts)


def summary_section(config: dict, records: list[dict], checkpoint_step: int | None) -> str:
    model = config.get("model", {}).get("name", "?")
    data = config.get("data", {}).get("name", "?")
    total = config.get("trainer", {}).get("steps", "?")
    last = records[-1] if records else {}
    rows = [["model", model], ["data", data], ["steps logged", f"{last.get('step', 0)} of {total}"]]
    if checkpoint_step is not None:
        rows.append(["checkpoint step", checkpoint_step])
    if "time" in last:
        rows.append(["training time (s)", last["time"]])
    rows += [[f"last {k}", v] for k, v in last.items() if k not in NOT_SERIES]
    return table(None, rows, numeric_from=1)


def curves_section(records: list[dict], title: str) -> str:
    series = series_of(records)
    if not series:
        return note("nothing logged yet (metrics.jsonl is empty or missing)")
    return figure(curves_png(series, title), f"Logged values against the step ({len(records)} records "
                  f"of metrics.jsonl).", "loss curves")


def step_of(path: Path) -> int:
    m = re.fullmatch(r"step_(\d+)", path.stem)
    return int(m.group(1)) if m else -1


def pick_grids(paths: list[Path], limit: int = MAX_SAMPLE_GRIDS) -> list[Path]:
    """The sample grids to show, latest first: all of them, or `limit` evenly spread (latest kept)."""
    paths = sorted(paths, key=step_of, reverse=True)
    if len(paths) <= limit:
        return paths
    idx = sorted({round(i * (len(paths) - 1) / (limit - 1)) for i in range(limit)})
    return [paths[i] for i in idx]


def samples_section(samples_dir: Path) -> str:
    paths = [p for p in samples_dir.glob("step_*.png") if step_of(p) >= 0] if samples_dir.is_dir() else []
    if not paths:
        return note("no sample grids yet (samples/step_XXXXXXX.png; see trainer.sample_every)")
    shown = pick_grids(paths)
    parts = [figure(p.read_bytes(), f"step {step_of(p)}", f"samples at step {step_of(p)}", "grid") for p in shown]
    if len(shown) < len(paths):
        parts.insert(0, f'<p class="muted">{len(shown)} of {len(paths)} grids, evenly spread.</p>')
    return "".join(parts)


def views_section(views: list[View], notes: list[str]) -> str:
    parts = [figure(v.path.read_bytes(), v.caption, v.name) for v in views]
    parts += [note(n) for n in notes]
    return "".join(parts) or note("no model views")


def read_eval(path: Path) -> tuple[dict | None, str]:
    """(the evaluation report, '') or (None, why it is missing)."""
    if not path.is_file():
        return None, (f"no evaluation yet: run `genmodels evaluate RUN_DIR --json > RUN_DIR/{EVAL}` "
                      f"and rebuild the report to see the metrics beside the real-data floor")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"{path.name} is not readable JSON ({e}): the evaluation is left out"
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        return None, f"{path.name} holds no 'metrics' table (write it with `genmodels evaluate RUN_DIR --json`)"
    return report, ""


def _pm(value, std) -> str:
    if value is None:
        return "-"
    text = fmt(float(value)) if isinstance(value, (int, float)) else str(value)
    return text + (f" ± {float(std):.2g}" if isinstance(std, (int, float)) else "")


def evaluation_section(path: Path) -> str:
    report, why = read_eval(path)
    if report is None:
        return note(why)
    rows = []
    for name, m in report["metrics"].items():
        m = m if isinstance(m, dict) else {"value": m}
        rows.append([name, _pm(m.get("value"), m.get("std")), _pm(m.get("real_floor"), m.get("real_floor_std"))])
    sizes = (f"{report.get('n_samples', '?')} samples; reference: {report.get('n_reference', '?')} test examples; "
             f"floor: {report.get('n_floor', '?')} training examples; features: {report.get('extractor', '?')}")
    parts = [f"<p>{escape(str(report.get('title', '')))}</p>", f'<p class="muted">{escape(sizes)}</p>',
             table(["metric", "model", "real-data floor"], rows),
             '<p class="muted">The floor is the same metric between real test and real training examples at the '
             'same sizes: a perfect model scores the floor, not zero.</p>']
    parts += [note(n) for n in report.get("notes", []) if isinstance(n, str)]
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# The page


def build_page(run_dir: Path, config: dict, records: list[dict], views: list[View], view_notes: list[str],
               checkpoint_step: int | None) -> str:
    """The HTML text of the report (all strings escaped, images inlined)."""
    model = config.get("model", {}).get("name", "?")
    data = config.get("data", {}).get("name", "?")
    title = f"{model} on {data}: {run_dir.resolve().name}"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return PAGE.substitute(
        title=escape(title),
        subtitle=escape(f"genmodels run report, written {stamp}"),
        summary=summary_section(config, records, checkpoint_step),
        config=config_section(config),
        curves=curves_section(records, title),
        samples=samples_section(run_dir / SAMPLES),
        views=views_section(views, view_notes),
        evaluation=evaluation_section(run_dir / EVAL),
    )
