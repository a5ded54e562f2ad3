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

    from genmodels.run import load_run

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


def test_cached_rows_come_back_equal_and_only_new_rows_are_measured(runs, tmp_path, capsys, monkeypatch):
    import genmodels.evaluation.compare as ev
    from genmodels.evaluation import measure as E

    cache = tmp_path / "cache"
    small = ["--metrics", "fd,prdc,nll", "--n", "50", "--nll-n", "10", "--k", K, *COMMON, "--json"]
    first = cli_json(capsys, ["compare", runs["vae"], runs["ddpm"], *small, "--cache", str(cache)])
    assert len(list(cache.glob("*.json"))) == 3   # the floor and two rows

    measured: list[str] = []
    real_loaded, real_floor = ev.evaluate_loaded, E.evaluate

    def counting(loaded, *a, **kw):
        measured.append(loaded.config.model_name)
        return real_loaded(loaded, *a, **kw)

    def no_floor(*a, **kw):
        assert not str(kw.get("title", "")).startswith("real-data floor"), "the floor was measured again"
        return real_floor(*a, **kw)

    monkeypatch.setattr(ev, "evaluate_loaded", counting)
    monkeypatch.setattr(E, "evaluate", no_floor)
    # a source added to the table: only its row is measured; the others come back as they were
    second = cli_json(capsys, ["compare", runs["vae"], runs["gan"], runs["ddpm"], *small, "--cache", str(cache)])
    assert measured == ["gan"]
    rows = {r["name"]: r for r in second["rows"]}
    for row in first["rows"]:
        assert rows[row["name"]]["metrics"] == row["metrics"] and rows[row["name"]]["likelihood"] == row["likelihood"]
    assert second["floor"] == first["floor"] and second["n_likelihood"] == first["n_likelihood"]
    # and they equal a fresh measurement without the cache
    monkeypatch.setattr(E, "evaluate", real_floor)
    fresh = cli_json(capsys, ["compare", runs["vae"], runs["gan"], runs["ddpm"], *small])
    assert [r["metrics"] for r in fresh["rows"]] == [r["metrics"] for r in second["rows"]]
    assert fresh["columns"] == second["columns"]   # in the evaluation's order, not the file's
    assert fresh["floor"]["metrics"] == second["floor"]["metrics"]

    # a metric that is one family's own (the VAE's elbo) re-measures that family's rows only
    measured.clear()
    monkeypatch.setattr(E, "evaluate", no_floor)
    elbo = ["--metrics", "fd,prdc,nll,elbo", *small[2:]]
    cli_json(capsys, ["compare", runs["vae"], runs["ddpm"], *elbo, "--cache", str(cache)])
    assert measured == ["vae", "vae"]   # its samples and its own metrics; the DDPM's row and the floor from the cache
    monkeypatch.setattr(E, "evaluate", real_floor)

    # another seed is another row; a damaged file is measured again (and rewritten), with a message
    measured.clear()
    cli_json(capsys, ["compare", runs["vae"], *small, "--seed", "1", "--cache", str(cache)])
    assert measured == ["vae", "vae"]   # its samples and its likelihood
    for path in cache.glob("*.json"):
        path.write_text("{not json")
    measured.clear()
    capsys.readouterr()
    assert main(["compare", runs["vae"], *small, "--cache", str(cache)]) == 0
    captured = capsys.readouterr()
    assert "unusable" in captured.err and json.loads(captured.out)["rows"][0]["metrics"] == first["rows"][0]["metrics"]
    assert measured == ["vae", "vae"]


def test_cache_keys_and_command_name_the_resolved_device_not_the_launch(runs, tmp_path, capsys, monkeypatch):
    """Rows measured with `--device cpu` serve `--device auto` on a CPU and a torchrun rank's explicit
    device (compare_sources(device=...)), and the table's command shows only the flags given."""
    import torch

    import genmodels.evaluation.compare as ev
    from genmodels.report.compare import CompareConfig
    from genmodels.report.compare_cache import RowCache

    cache = tmp_path / "cache"
    small = ["--metrics", "fd", "--n", "50", "--k", K, "--no-progress", "--json", "--cache", str(cache)]
    first = cli_json(capsys, ["compare", runs["vae"], *small, "--device", "cpu"])
    assert "--device cpu" in first["command"]
    measured: list[str] = []
    real_loaded = ev.evaluate_loaded

    def counting(loaded, *a, **kw):
        measured.append(loaded.config.model_name)
        return real_loaded(loaded, *a, **kw)

    monkeypatch.setattr(ev, "evaluate_loaded", counting)
    second = cli_json(capsys, ["compare", runs["vae"], *small])   # --device auto: the CPU here
    assert measured == [] and second["rows"][0]["metrics"] == first["rows"][0]["metrics"]
    assert "--device" not in second["command"]
    cfg = CompareConfig(metrics="fd", n=50, k=int(K), progress=False)
    table = ev.compare_sources([runs["vae"]], cfg, cache=RowCache(cache), device=torch.device("cpu"))
    assert measured == [] and "--device" not in table.command and cfg.device == CompareConfig().device
    assert table.to_dict()["rows"][0]["metrics"] == first["rows"][0]["metrics"]


def test_cache_keys_follow_the_weights_not_the_path(runs, tmp_path):
    import torch

    from genmodels.run import load_run
    from genmodels.run.digest import weights_digest

    copy = tmp_path / "renamed"
    shutil.copytree(runs["ddpm"], copy)
    a, b = load_run(runs["ddpm"]).model, load_run(str(copy)).model
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        next(next(iter(b.modules().values())).parameters()).add_(1e-3)
    assert weights_digest(a) != weights_digest(b)


def test_weights_digest_reads_every_buffer_and_dtype():
    """0-dim buffers (BatchNorm's step count) and bf16 tensors are hashed too, and any of them changes
    the digest."""
    import torch

    from genmodels.run.digest import weights_digest

    class Model:
        def __init__(self):
            self.net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).to(torch.bfloat16)

        def modules(self):
            return {"net": self.net}

    a, b = Model(), Model()
    b.net.load_state_dict(a.net.state_dict())
    assert weights_digest(a) == weights_digest(b)
    b.net[1].num_batches_tracked += 1
    assert weights_digest(a) != weights_digest(b)
    b.net.load_state_dict(a.net.state_dict())
    b.net[1].running_var.mul_(2)
    assert weights_digest(a) != weights_digest(b)
    b.net.load_state_dict(a.net.state_dict())
    b.net.float()
    assert weights_digest(a) != weights_digest(b)
