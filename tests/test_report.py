"""The run report: `genmodels report RUN_DIR` on tiny real runs, the family views, and the page
loaded in headless Chromium (Debian package `chromium`) with no console errors and every image
loaded. The Chromium test saves a screenshot (its path is printed; run pytest with -s to see it).

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no extra package is needed.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from genmodels.cli import main
from genmodels.config import RunConfig
from genmodels.data import load_config
from genmodels.errors import ConfigError
from genmodels.report import write_report
from genmodels.report.html import pick_grids, read_eval
from genmodels.report.views import render_views
from genmodels.run import build_model
from genmodels.training import Trainer

TRAINER = {"batch_size": 32, "log_every": 2, "sample_every": 3, "sample_n": 16, "device": "cpu",
           "progress": False, "tensorboard": False, "report": False}


def tiny_run(root: Path, family: str, data: str, steps: int = 6, trainer: dict | None = None, **model) -> Path:
    """Train `family` on `data` for a few steps with small nets; returns the run directory."""
    out = root / f"{family}-{data}"
    cfg = RunConfig.default(family).merge({"out": str(out), "data": {"name": data},
                                           "trainer": {**TRAINER, "steps": steps, **(trainer or {})},
                                           "model": model}, "test")
    cfg.validate()
    dataset = load_config(cfg.data, "train", seed=cfg.seed)
    Trainer(cfg).fit(build_model(cfg, dataset.spec, torch.device("cpu")), dataset)
    return out


def run_cli(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    """A tiny GAN on ring8 with its evaluation written by `genmodels evaluate --json`."""
    run = tiny_run(tmp_path_factory.mktemp("runs"), "gan", "ring8", steps=8, z_dim=8, mlp_width=32, mlp_depth=2)
    text = run_cli(["evaluate", str(run), "--metrics", "fd,prdc,modes", "--n", "300", "--no-progress"] + ["--json"])
    (run / "eval.json").write_text(text)
    return run


# ---------------------------------------------------------------------------------------------
# The page


def test_report_shows_config_curves_samples_views_and_evaluation(gan_run):
    text = run_cli(["report", str(gan_run)])
    path = gan_run / "report.html"
    assert f"wrote {path}" in text
    page = path.read_text()
    for section in ("Config", "Loss curves", "Samples over training (latest first)", "Model views", "Evaluation"):
        assert f">{section}</h2>" in page
    assert "nonsaturating" in page and "ring8" in page                     # the config
    # sample grids latest first: steps 8, 6, 3
    assert page.index("samples at step 8") < page.index("samples at step 6") < page.index("samples at step 3")
    assert (gan_run / "views" / "decision_surface.png").is_file()          # the GAN's 2-D view
    assert 'alt="decision_surface"' in page
    assert "real-data floor" in page and "FD-raw" in page and "modes_captured" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    assert page.count('src="data:image/png;base64,') == 1 + 3 + 1           # curves, 3 grids, 1 view


def test_config_values_are_escaped(gan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    cfg = (run / "config.toml").read_text().replace('out = "', 'out = "<b>bold</b>', 1)
    (run / "config.toml").write_text(cfg)
    page = write_report(run, views=False).read_text()
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "model views not drawn" in page


def test_missing_evaluation_and_samples_are_explained(gan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    (run / "eval.json").unlink()
    shutil.rmtree(run / "samples")
    page = write_report(run, views=False).read_text()
    assert "no evaluation yet" in page and "--json &gt; RUN_DIR/eval.json" in page
    assert "no sample grids yet" in page
    (run / "eval.json").write_text("{not json")
    assert "not readable JSON" in write_report(run, views=False).read_text()


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(ConfigError, match="not a run directory"):
        write_report(tmp_path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in err.getvalue()


def test_pick_grids_latest_first_and_spread(tmp_path):
    paths = [tmp_path / f"step_{s:07d}.png" for s in range(100, 5100, 100)]   # 50 grids
    shown = pick_grids(paths, limit=5)
    assert [p.name for p in shown] == ["step_0005000.png", "step_0003800.png", "step_0002600.png",
                                       "step_0001300.png", "step_0000100.png"]
    assert pick_grids(paths[:3], limit=5) == paths[:3][::-1]


def test_read_eval_needs_a_metrics_table(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps({"title": "x"}))
    report, why = read_eval(tmp_path / "eval.json")
    assert report is None and "no 'metrics' table" in why


# ---------------------------------------------------------------------------------------------
# The views of the image families


@pytest.mark.parametrize("family, model, expected", [
    ("vae", {"latent_dim": 2, "hidden": [32]}, {"samples", "reconstructions", "interpolations", "latent_map"}),
    ("ddpm", {"T": 20, "channels": 8, "channel_mults": [1], "attention_resolutions": []}, {"denoising"}),
    ("infogan", {"arch": "mlp", "mlp_width": 32, "z_dim": 4, "categorical": [10], "continuous": 1},
     {"traversal_cont0"}),
])
def test_image_family_views(tmp_path, family, model, expected):
    from PIL import Image

    run = tiny_run(tmp_path, family, "digits", steps=2, trainer={"sample_every": 0}, **model)
    result = render_views(run)
    assert {v.name for v in result.views} == expected, result.notes
    for v in result.views:
        with Image.open(v.path) as im:
            assert im.width >= 256  # small grids are enlarged for the page
    if family == "ddpm":  # 8 rows of 10 frames x_T .. x_0 of 8x8 images, 2 px padding, enlarged
        with Image.open(run / "views" / "denoising.png") as im:
            assert im.width / im.height == pytest.approx((2 + 10 * 10) / (2 + 8 * 10), rel=0.02)


# ---------------------------------------------------------------------------------------------
# Headless Chromium


class Chromium:
    """Headless Chromium spoken to over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, exe: str, user_data_dir: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={user_data_dir}",
                "--remote-debugging-pipe", "--window-size=1200,900", "about:blank"]

        def to_fds_3_and_4():
            a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(3, 4, cmd_r, res_w),
                                     preexec_fn=to_fds_3_and_4)
        os.close(cmd_r)
        os.close(res_w)
        self._buf, self._id, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}, **({"sessionId": session} if session else {})}
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events):
            self._read(deadline)
        return next(e for e in self.events if e["method"] == method)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        m = json.loads(raw)
        if "method" in m:
            self.events.append(m)
        return m

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)


def errors_of(events: list[dict]) -> list[dict]:
    """Console errors, uncaught exceptions and failed loads among the DevTools events."""
    return [e for e in events
            if e["method"] == "Runtime.exceptionThrown"
            or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]


def load_page(path: Path, screenshot: Path, user_data_dir: Path) -> tuple[list, list[dict]]:
    """Open `path` in headless Chromium; returns ([alt, complete, naturalWidth] of every image,
    the error events) and saves a full-page screenshot."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    browser = Chromium(exe, user_data_dir)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        images = browser.send("Runtime.evaluate", {
            "expression": "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])",
            "returnByValue": True}, session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        return images, errors_of(browser.events)
    finally:
        browser.close()


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="headless Chromium not installed (Debian: apt-get install -y chromium)")
def test_report_loads_in_headless_chromium(gan_run, tmp_path):
    from PIL import Image

    path = write_report(gan_run)
    screenshot = tmp_path / "report.png"
    images, errors = load_page(path, screenshot, tmp_path / "profile")
    print(f"screenshot: {screenshot}")
    assert errors == []
    assert len(images) == 5 and all(complete and width > 0 for _, complete, width in images), images
    with Image.open(screenshot) as im:
        assert im.width >= 1000 and im.height > 1500  # the whole page, not just the first screen
