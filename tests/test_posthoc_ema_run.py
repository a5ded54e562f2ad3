"""Post-hoc EMA in a run: the trainer stores power-function EMAs at every checkpoint, `genmodels ema`
rebuilds another width from them (close to the same width tracked directly in the same run), writes a
checkpoint that `sample` reads, picks the best by FD, and a resumed run stores the same averages."""

from __future__ import annotations

import json

import pytest
import torch

from genmodels.cli import main
from genmodels.run import RunDir, load_run
from genmodels.run.checkpoint import load_checkpoint
from genmodels.sources import load_source
from genmodels.training.posthoc_ema import read_snapshots, reconstruct

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["ddpm", "--data", "digits", "--T", "20", "--channels", "8", "--channel-mults", "1,2",
        "--attention-resolutions", "", "--batch-size", "16", "--device", "cpu", "--threads", "1", "--no-progress",
        "--set", "trainer.sample_every=0", "--set", "trainer.report=false", "--set", "trainer.checkpoint_every=5",
        "--set", "trainer.log_every=5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("posthoc") / "run"
    assert main(["train", *TINY, "--steps", "60", "--out", str(out),
                 "--set", "trainer.ema_sigma_rels=0.05,0.1,0.07"]) == 0
    return out


def test_snapshots_are_stored_at_every_checkpoint(run):
    snaps = read_snapshots(RunDir(run).ema_snapshots)
    assert sorted({s for s, _, _ in snaps}) == list(range(5, 61, 5))
    assert len(snaps) == 3 * 12


def test_rebuilt_width_is_near_the_one_tracked_directly(run):
    """0.07 rebuilt from the 0.05 and 0.10 snapshots, against the 0.07 average the trainer tracked."""
    snaps = read_snapshots(RunDir(run).ema_snapshots)
    gamma_07 = min({g for _, g, _ in snaps}, key=lambda g: abs(g - 10.67))     # sigma_rel 0.07: gamma ~ 10.7
    stored = [snap for snap in snaps if snap[1] != gamma_07]
    direct = next(t for s, g, t in snaps if s == 60 and g == gamma_07)
    rebuilt = reconstruct(stored, 60, 0.07)
    last = load_checkpoint(RunDir(run).latest)["modules"]["denoiser"]
    num = sum(float((rebuilt[k] - direct[k]).norm() ** 2) for k in direct) ** 0.5
    spread = sum(float((direct[k] - last[k.partition("/")[2]].float()).norm() ** 2) for k in direct) ** 0.5
    assert num < 0.1 * spread


def test_cli_rebuilds_picks_and_the_checkpoint_samples(run, tmp_path):
    assert main(["ema", str(run), "--sigma-rel", "0.03,0.15", "--pick", "--n", "64", "--extractor", "raw"]) == 0
    best = json.loads((RunDir(run).ema_snapshots / "best.json").read_text())
    assert best["sigma_rel"] in (0.03, 0.15) and best["metric"].startswith("FD")
    ckpt = RunDir(run).posthoc_checkpoint(0.03, 60)
    assert ckpt.is_file() and load_checkpoint(ckpt)["posthoc_ema"]["sigma_rel"] == 0.03
    a, b = load_run(run, checkpoint=ckpt), load_run(run, checkpoint=RunDir(run).posthoc_checkpoint(0.15, 60))
    wa, wb = (dict(x.model.modules()["denoiser"].named_parameters()) for x in (a, b))
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)         # two widths, two sets of weights
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--checkpoint", str(ckpt), "--n", "4", "--out", str(out)]) == 0
    # the rebuilt average ships: `zoo export --checkpoint` stores those weights and names the file on the card
    zoo = tmp_path / "zoo"
    assert main(["zoo", "export", str(run), "--name", "posthoc", "--dtype", "fp32", "--checkpoint", str(ckpt),
                 "--dest", str(zoo)]) == 0
    card = json.loads((zoo / "posthoc" / "card.json").read_text())
    assert card["commands"]["export"].endswith(f"--checkpoint RUN_DIR/checkpoints/{ckpt.name}")
    shipped = dict(load_source("zoo:posthoc", zoo_root=zoo).model.modules()["denoiser"].named_parameters())
    assert all(torch.equal(shipped[k], wa[k]) for k in wa)
    # --sample-option reaches the FD: another sampler, another figure; a bad option is refused
    assert main(["ema", str(run), "--sigma-rel", "0.03", "--pick", "--n", "64", "--extractor", "raw",
                 "--sample-option", "sampler=ddim", "--sample-option", "steps=5"]) == 0
    other = json.loads((RunDir(run).ema_snapshots / "best.json").read_text())
    assert other["sigma_rel"] == 0.03 and (best["sigma_rel"] != 0.03 or other["value"] != best["value"])
    assert main(["ema", str(run), "--sigma-rel", "0.03", "--pick", "--sample-option", "sampler=nope"]) == 2
    assert main(["ema", str(run), "--sigma-rel", "0.5"]) == 2
    assert main(["ema", str(run), "--sigma-rel", "0.05", "--step", "999"]) == 2


def test_resume_stores_the_same_averages(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    extra = ["--set", "trainer.ema_sigma_rels=0.05,0.1"]
    assert main(["train", *TINY, "--steps", "20", "--out", str(whole), *extra]) == 0
    assert main(["train", *TINY, "--steps", "10", "--out", str(split), *extra]) == 0
    assert main(["train", "--resume", "--out", str(split), "--steps", "20"]) == 0
    a, b = read_snapshots(RunDir(whole).ema_snapshots), read_snapshots(RunDir(split).ema_snapshots)
    assert [(s, g) for s, g, _ in a] == [(s, g) for s, g, _ in b]
    for (_, _, ta), (_, _, tb) in zip(a, b, strict=True):
        assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_a_run_without_snapshots_is_told_how_to_make_them(tmp_path):
    out = tmp_path / "plain"
    assert main(["train", *TINY, "--steps", "5", "--out", str(out)]) == 0
    assert main(["ema", str(out), "--sigma-rel", "0.05"]) == 2
