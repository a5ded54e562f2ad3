"""Every script in examples/ runs in its short mode (`--quick --out DIR`) and leaves a run
directory with its report. Examples added later are picked up automatically; each must accept
`--quick` and `--out` and define `main(argv) -> int`."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))

# What each example must leave behind, beyond config.toml, metrics.jsonl and report.html.
EXPECTED = {
    "ddpm_grid25.py": ["eval.json", "samples/step_0000030.png"],
    "gan_ring8.py": ["eval.json", "views/decision_surface.png"],
    "vae_image_folder.py": ["views/reconstructions.png", "views/interpolations.png"],
}


def test_examples_exist():
    assert {p.name for p in EXAMPLES} >= set(EXPECTED)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_quick(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location(f"example_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        # the trainer turns a failed end-of-run report into a warning: make it an error here
        warnings.filterwarnings("error", message=".*report could not be written", category=RuntimeWarning)
        assert module.main(["--quick", "--out", "run"]) == 0
    run = tmp_path / "run"
    for name in ["config.toml", "metrics.jsonl", "report.html", *EXPECTED.get(script.name, [])]:
        assert (run / name).is_file(), f"{script.name} --quick did not write {name}\n{out.getvalue()}"
    page = (run / "report.html").read_text()
    assert "no model views:" not in page, page[page.find("no model views:"):][:300]
    assert "report" in out.getvalue()
