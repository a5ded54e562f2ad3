"""The benchmark runner (`python -m bench`): `--only` refreshes some rows and keeps the others'."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.__main__ import BEGIN, END, Bench, load_records, main, render, save_records, write  # noqa: E402


def test_only_keeps_the_other_benchmarks_rows(tmp_path, monkeypatch):
    import bench.__main__ as runner

    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nhand-written text\n", encoding="utf-8")
    old = Bench("scaling", ["-m", "bench.scaling"], "scaling", status="ok", measured="2026-01-01 00:00 UTC",
                rows=[{"benchmark": "DDP scaling", "ratio": 1.5, "detail": "old figure"}])
    save_records(out.with_suffix(".json"), [old])
    assert load_records(out.with_suffix(".json"))["scaling"].rows == old.rows

    script = tmp_path / "fake.py"
    script.write_text('print("RESULT {\\"benchmark\\": \\"fake row\\", \\"ratio\\": 2.0, \\"detail\\": \\"new\\"}")\n')
    monkeypatch.setattr(runner, "KNOWN", {"fake": ([str(script)], "a fake benchmark"),
                                          "scaling": (["-m", "bench.scaling"], "scaling")})
    monkeypatch.setattr(runner, "ROOT", tmp_path)      # no other scripts are discovered under tmp/bench
    assert main(["--only", "fake", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "hand-written text" in page and page.count(BEGIN) == 1 and page.count(END) == 1
    assert "| fake row | 2.0 | new |" in page                  # the re-run benchmark
    assert "| DDP scaling | 1.5 | old figure |" in page         # kept from the earlier run, with its date
    assert "measured 2026-01-01 00:00 UTC" in page
    assert set(load_records(out.with_suffix(".json"))) == {"fake", "scaling"}


def test_unreadable_records_are_ignored(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("{not json", encoding="utf-8")
    assert load_records(bad) == {} and load_records(tmp_path / "missing.json") == {}
    write(tmp_path / "p.md", render([Bench("x", ["x.py"], "x")], {"CPU": "c"}, "python -m bench"))
    assert "not run" in (tmp_path / "p.md").read_text(encoding="utf-8")
