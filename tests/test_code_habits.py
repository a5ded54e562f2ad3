"""The lint and the type check that .ci/run runs before the tests, run here too.

`ruff check` (pyflakes, pycodestyle, import order, bugbear, pyupgrade) over the paths that
`[tool.ruff]` includes and `mypy` over the files that `[tool.mypy]` lists, both configured in
pyproject.toml; any finding fails the test with the tool's own report. Without ruff or mypy (they
come with the `test` extra, `pip install -e ".[test]"`) the test is skipped, saying so.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tool(name: str) -> str:
    """The installed version of `name`, or a skip naming the extra that brings it."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed: pip install -e '.[test]' brings the pinned version")
    return importlib.metadata.version(name)


def _pinned(name: str) -> str:
    pins = [r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if r.startswith(name + "==")]
    return pins[0].split("==", 1)[1] if pins else "unpinned"


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing():
    version = _tool("ruff")
    result = _run(["ruff", "check", "--output-format", "concise"], timeout=120)
    assert result.returncode == 0, (
        f"ruff {version} (pinned: {_pinned('ruff')}) found problems; fix them (`python3 -m ruff check --fix` "
        f"sorts imports) or, for a deliberate exception, add `# noqa: CODE` with the reason:\n"
        f"{result.stdout}{result.stderr}"
    )


def test_mypy_finds_nothing():
    version = _tool("mypy")
    result = _run(["mypy"], timeout=600)
    assert result.returncode == 0, (
        f"mypy {version} (pinned: {_pinned('mypy')}) found type errors in the files [tool.mypy] lists:\n"
        f"{result.stdout}{result.stderr}"
    )


def test_the_checks_cover_what_contributing_promises():
    """The rule families and the type-checked parts stay configured (so the two tests above cannot
    pass by checking less), and CI runs both before the tests."""
    ruff, mypy = PYPROJECT["tool"]["ruff"], PYPROJECT["tool"]["mypy"]
    assert {"E", "F", "W", "I", "B", "UP"} <= set(ruff["lint"]["select"])
    assert ruff["lint"]["isort"]["known-first-party"] == ["genmodels"]
    assert {"src/**/*.py", "tests/**/*.py", "bench/**/*.py", "examples/**/*.py"} <= set(ruff["include"])
    assert {"src/genmodels/diffusion", "src/genmodels/metrics", "src/genmodels/models/base.py"} <= set(mypy["files"])
    assert mypy["check_untyped_defs"] and mypy["warn_unused_ignores"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    lines = {cmd: next((i for i, line in enumerate(ci) if line.strip() == cmd), None)
             for cmd in ("python3 -m ruff check", "python3 -m mypy", "python3 -m pytest")}
    assert None not in lines.values(), f".ci/run lacks one of {list(lines)} as a line of its own"
    assert lines["python3 -m ruff check"] < lines["python3 -m pytest"] > lines["python3 -m mypy"], \
        ".ci/run must run `ruff check` and `mypy` before the tests"


def test_no_long_function_or_file_in_the_package():
    """One idea per file, steps with names (STYLE.md): no function of src/ over 80 lines and no file
    over 400, docstrings and comments counted (a function's length is `end_lineno - lineno + 1`)."""
    src = ROOT / "src" / "genmodels"
    found = []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(src)
        if len(text.splitlines()) > 400:
            found.append(f"{name}: {len(text.splitlines())} lines (at most 400): split it by idea")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                found.append(f"{name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines "
                             f"(at most 80): cut it into named steps")
    assert not found, "\n".join(found)
