"""A run's sampling defaults: the [sample] table a new run records (its family's measured
recommendation, `GenerativeModel.recommended_sample_options`), read back by `sample`/`evaluate`,
overridden by flags, carried to a zoo card by `zoo export`, and refused with the file named when bad."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from genmodels.cli import main
from genmodels.errors import ConfigError
from genmodels.models.ddpm.model import RECOMMENDED_IMAGE_SAMPLING
from genmodels.run import load_run
from genmodels.run.sample_options import run_sample_options
from genmodels.zoo import load_zoo

pytestmark = pytest.mark.usefixtures("one_thread")

# the tiny runs below have T = 20: the recommended steps are capped at T
RECORDED = {**RECOMMENDED_IMAGE_SAMPLING, "steps": min(RECOMMENDED_IMAGE_SAMPLING["steps"], 20)}

TINY = ["--T", "20", "--channels", "8", "--channel-mults", "1,2", "--attention-resolutions", "", "--steps", "2",
        "--batch-size", "8", "--device", "cpu", "--threads", "1", "--no-progress", "--set", "trainer.sample_every=0",
        "--set", "trainer.report=false"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "ddpm", "--data", "digits", "--out", str(run), *TINY]) == 0
    return run


def test_a_new_image_run_records_the_recommended_sampler(image_run):
    doc = tomllib.loads((image_run / "config.toml").read_text())
    assert doc["sample"] == RECORDED
    loaded = load_run(image_run)
    assert loaded.sample_defaults == RECORDED
    opts = run_sample_options(loaded)
    assert (opts.sampler, opts.steps) == (RECORDED["sampler"], RECORDED["steps"])
    # flags override one field; naming another sampler drops the recorded steps with it (Algorithm 4.2)
    assert run_sample_options(loaded, {"steps": "7"}).steps == 7
    ancestral = run_sample_options(loaded, {"sampler": "ancestral"})
    assert (ancestral.sampler, ancestral.steps) == ("ancestral", 0)


def test_the_recorded_sampler_is_what_sample_uses(image_run, tmp_path):
    """`genmodels sample` without options equals the same call with the recorded options spelled out."""
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert main(["sample", str(image_run), "--n", "4", "--out", str(a), "--device", "cpu"]) == 0
    assert main(["sample", str(image_run), "--n", "4", "--out", str(b), "--device", "cpu",
                 *[f"--sample-option={k}={v}" for k, v in RECORDED.items()]]) == 0
    assert np.array_equal(np.load(a), np.load(b))


def test_set_sample_and_zoo_export_carry_the_defaults(image_run, tmp_path):
    run = tmp_path / "set"
    assert main(["train", "ddpm", "--data", "digits", "--out", str(run), *TINY, "--set", "sample.sampler=ddim",
                 "--set", "sample.steps=5"]) == 0
    assert tomllib.loads((run / "config.toml").read_text())["sample"] == {"sampler": "ddim", "steps": 5}
    root = tmp_path / "zoo"
    assert main(["zoo", "export", str(image_run), "--name", "tiny-ddpm", "--dest", str(root)]) == 0
    entry = load_zoo("tiny-ddpm", root=root)
    assert entry.sample_defaults == RECORDED


def test_points_runs_keep_algorithm_4_2(tmp_path):
    run = tmp_path / "ring"
    assert main(["train", "ddpm", "--data", "ring8", "--out", str(run), "--T", "20", "--steps", "2",
                 "--batch-size", "8", "--device", "cpu", "--threads", "1", "--no-progress",
                 "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]) == 0
    assert "sample" not in tomllib.loads((run / "config.toml").read_text())
    assert run_sample_options(load_run(run)).sampler == "ancestral"


def test_a_bad_sample_table_names_the_file_and_the_field(image_run, tmp_path):
    text = (image_run / "config.toml").read_text().replace(f'sampler = "{RECORDED["sampler"]}"', 'sampler = "nosuch"')
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"config.toml: sample.*sampler.*nosuch"):
        load_run(bad)
    text = (image_run / "config.toml").read_text().replace("steps = 20", "steps = -3")
    (bad / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"config.toml: sample.*steps"):
        load_run(bad)
