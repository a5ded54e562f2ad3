"""`genmodels compare`: tiny runs of three families on one data set, each row equal to what
`genmodels evaluate` gives for that run, the floor row equal to evaluate's floor, the outputs
(Markdown with the command, HTML, JSON), the refusal of mixed data sets and the option checks;
and `genmodels evaluate zoo:NAME` through genmodels.sources."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil

import pytest

from genmodels.cli import build_parser, main
from genmodels.errors import DataError

N, NLL_N, K = "100", "50", "2"
TINY = ["--data", "mnist5k", "--steps", "20", "--batch-size", "16", "--precision", "fp32", "--no-progress",
        "--set", "trainer.sample_every=0", "--set", "trainer.report=false"]
FAMILIES = {
    "vae": ["--hidden", "32", "--latent-dim", "4"],
    "gan": ["--arch", "mlp", "--mlp-width", "32", "--mlp-depth", "1", "--z-dim", "8"],
    "ddpm": ["--channels", "4", "--T", "10"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from genmodels import data

    try:
        data.load("mnist5k", split="test")
    except DataError as e:
        pytest.skip(str(e))
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("compare")
    out = {}
    for family, flags in FAMILIES.items():
        out[family] = str(root / family)
        assert main(["train", family, *TINY, *flags, "--out", out[family]]) == 0
    yield out
    torch.set_num_threads(before)


def cli_json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


COMMON = ["--device", "cpu", "--no-progress"]


def test_each_row_is_what_evaluate_gives(runs, tmp_path, capsys):
    md, html = tmp_path / "table.md", tmp_path / "table.html"
    argv = ["compare", runs["vae"], runs["gan"], runs["ddpm"], "--n", N, "--nll-n", NLL_N, "--k", K, *COMMON,
            "--markdown", str(md), "--html", str(html), "--json"]
    table = cli_json(capsys, argv)
    rows = {r["name"]: r for r in table["rows"]}
    assert list(rows) == ["vae", "gan", "ddpm"]
    assert table["sample_metrics"] == ["fd", "prdc", "parzen"] and table["model_metrics"] == ["nll"]
    assert table["n_samples"] == 100 and table["n_likelihood"] == 50

    for family, source in runs.items():
        row = rows[family]
        report = cli_json(capsys, ["evaluate", source, "--metrics", "fd,prdc,parzen", "--n", N, *COMMON, "--json"])
        for key, m in report["metrics"].items():
            assert row["metrics"][key] == {"value": m["value"], "std": m["std"]}, (family, key)
            assert table["floor"]["metrics"][key] == {"value": m["real_floor"], "std": m["real_floor_std"]}, key
        assert row["family"] == family and row["step"] == 20 and row["train_cpu_minutes"] > 0
        if family == "gan":
            assert row["likelihood"] is None and not any(k.startswith("nll") for k in row["metrics"])
            continue
        nll = cli_json(capsys, ["evaluate", source, "--metrics", "nll", "--n", NLL_N, "--k", K,
                                "--nll-estimates", "bound", *COMMON, "--json"])["metrics"]
        for key, m in nll.items():
            assert row["metrics"][key] == {"value": m["value"], "std": m["std"]}, (family, key)
        expected = nll["nll"] if family == "vae" else nll["nll:bpd_total"]
        assert row["likelihood"]["value"] == expected["value"]
        assert row["likelihood"]["unit"] == ("nats" if family == "vae" else "bits/dim")

    from genmodels.training.run_dir import load_run

    model = load_run(runs["gan"]).model
    assert rows["gan"]["params"] == sum(p.numel() for m in model.modules().values() for p in m.parameters())

    # the Markdown: one row per source and the floor, the settings, and a command that parses to the same settings
    text = md.read_text(encoding="utf-8")
    for name in ("real-data floor", "vae", "gan", "ddpm"):
        assert sum(line.startswith(f"| {name} |") for line in text.splitlines()) == 1, name
    assert table["command"] in text and "100 samples per model (seed 0)" in text and "k = 2" in text
    command = shlex.split(table["command"])
    assert command[:2] == ["genmodels", "compare"] and command[2:5] == [runs["vae"], runs["gan"], runs["ddpm"]]
    again = build_parser(command[1:]).parse_args(command[1:])
    from genmodels.cli.compare import _config

    given = _config(build_parser(argv).parse_args(argv))
    assert dataclasses.replace(_config(again), metrics="", progress=False) == given  # the metrics come resolved
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and page.count("<tr") == 5
    assert "nats</td>" in page and "bits/dim</td>" in page  # each likelihood with its unit

    # the plain table (smaller settings): a row per source, '-' for the GAN's likelihood
    capsys.readouterr()
    assert main(["compare", runs["vae"], runs["gan"], runs["ddpm"], "--metrics", "fd,nll", "--n", "50",
                 "--nll-n", "10", "--k", K, *COMMON]) == 0
    lines = capsys.readouterr().out.splitlines()
    gan_line = next(line for line in lines if line.startswith("gan "))
    assert gan_line.rstrip().endswith("-") and any(line.startswith("real-data floor") for line in lines)
    assert any("nats" in line for line in lines if line.startswith("vae "))


def test_different_data_sets_are_refused(runs, tmp_path, capsys):
    other = tmp_path / "vae-on-mnist"
    shutil.copytree(runs["vae"], other)
    config = other / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert 'name = "mnist5k"' in text
    config.write_text(text.replace('name = "mnist5k"', 'name = "mnist"'), encoding="utf-8")
    capsys.readouterr()
    assert main(["compare", runs["vae"], str(other), "--n", N, *COMMON]) == 2
    err = capsys.readouterr().err
    assert "same data set" in err and f"{runs['vae']}: mnist5k" in err and f"{other}: mnist." in err


@pytest.mark.parametrize("extra, message", [
    (["--sample-option", "steps=5"], "FAMILY:KEY=VALUE"),
    (["--sample-option", "ddpm:bogus=1"], "bogus"),
    (["--sample-option", "infogan:code_value=1"], "no source is of family infogan"),
    (["--metrics", "fd,bogus"], "valid choices"),
    (["--metrics", "code-accuracy"], "valid choices"),
    (["--nll-n", "1"], "nll_n"),
])
def test_bad_options_fail_before_any_evaluation(runs, capsys, extra, message):
    capsys.readouterr()
    assert main(["compare", runs["vae"], runs["ddpm"], "--n", N, *COMMON, *extra]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_and_compare_take_zoo_sources(runs, tmp_path, capsys):
    """`genmodels evaluate zoo:NAME` and `compare zoo:NAME` read the zoo (here a folder given by --zoo-root
    holding an fp32 export of the tiny VAE run): the same figures as the run directory's."""
    from genmodels.zoo import export_run

    root = tmp_path / "zoo"
    export_run(runs["vae"], "tiny-vae", dtype="fp32", dest=root)
    args = ["--metrics", "fd", "--n", "50", *COMMON, "--json"]
    zoo = cli_json(capsys, ["evaluate", "zoo:tiny-vae", "--zoo-root", str(root), *args])
    run = cli_json(capsys, ["evaluate", runs["vae"], *args])
    assert zoo["metrics"] == run["metrics"]
    rows = cli_json(capsys, ["compare", "zoo:tiny-vae", runs["vae"], "--zoo-root", str(root), "--metrics", "fd",
                             "--n", "50", *COMMON, "--json"])
    values = [r["metrics"]["FD-mnist"]["value"] for r in rows["rows"]]
    assert len(values) == 2 and values[0] == values[1] == run["metrics"]["FD-mnist"]["value"]
