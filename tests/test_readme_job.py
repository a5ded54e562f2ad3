"""The README's timing table is what `python -m bench.readme_job table` prints from the measured rows
(docs/figures/readme_job.json), and every row measured the command the README shows now: a change of
the first command's steps or sampler without re-timing it fails here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # bench/ is a folder of scripts
from bench.readme_job import BEGIN, END, ROOT, ROWS, readme_commands, table  # noqa: E402


def test_the_readme_table_is_the_measured_rows():
    readme = (ROOT / "README.md").read_text()
    assert BEGIN in readme and END in readme, "README.md lacks the readme-job table markers"
    shown = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert shown == table(json.loads(ROWS.read_text()))


def test_every_row_timed_the_readme_command_as_written():
    train, sample, _ = readme_commands()
    rows = json.loads(ROWS.read_text())
    assert rows, "no measured rows"
    steps = int(train[train.index("--steps") + 1])
    for row in rows:
        assert row["steps"] == steps, (row["cpu"], row["precision"], row["steps"], steps)
        assert row["train_argv"] == train and row["sample_argv"] == sample, (row["cpu"], row["precision"])
    assert {"fp32"} <= {row["precision"] for row in rows}     # the path most CPUs run is always measured
