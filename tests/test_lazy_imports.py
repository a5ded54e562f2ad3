"""Imports inside functions: allowed only to spare the start-up cost of a heavy or optional module,
with the reason on the line (`# lazy: matplotlib is slow to import`); every other import is at the
top of its module, where a reader sees what the module depends on (CONTRIBUTING.md, "Imports")."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "genmodels"

# The modules an import inside a function may name: slow to import, optional, or only needed for one
# kind of file; the families the model registry loads on first use (each package under models/); and
# genmodels.api, which the package face (`genmodels.train`, `load`, `evaluate`, `compare`) imports on
# first call so that `import genmodels` does not pay for the trainer, the evaluation and scipy.
FAMILIES = tuple(sorted(f"genmodels.models.{d.name}" for d in (SRC / "models").iterdir()
                        if (d / "__init__.py").is_file()))
LAZY = ("matplotlib", "scipy", "safetensors", "PIL", "torch.distributed", "torch.utils.tensorboard",
        "torch_fidelity", "mlxtend", "sklearn", "genmodels.api", *FAMILIES)
MARK = "# lazy:"


def function_imports(source: str) -> list[tuple[int, str, str]]:
    """(line, module, the statement's text) of every import inside a function."""
    lines, out, seen = source.splitlines(), [], set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)) and sub.lineno not in seen:
                seen.add(sub.lineno)
                modules = [a.name for a in sub.names] if isinstance(sub, ast.Import) else [sub.module or "."]
                text = "\n".join(lines[sub.lineno - 1:sub.end_lineno])
                out += [(sub.lineno, m, text) for m in modules]
    return out


def problems(source: str) -> list[str]:
    out = []
    for line, module, text in function_imports(source):
        if not module.startswith(LAZY):
            out.append(f"line {line}: {module} is no heavy optional module: import it at the top of the module")
        elif MARK not in text:
            out.append(f"line {line}: import of {module} inside a function without `{MARK} reason` on its line")
    return out


def test_the_checker_finds_what_it_should():
    assert problems("def f():\n    from genmodels.run import load_run\n")
    assert problems("def f():\n    import matplotlib\n")                               # no reason
    assert problems("def f():\n    import scipy  # lazy: scipy is slow to import\n") == []
    assert problems("import json\n\ndef f():\n    return json\n") == []


def test_imports_inside_functions_are_lazy_heavy_modules_with_a_reason():
    files = sorted(SRC.rglob("*.py"))
    found = [f"{p.relative_to(SRC)} {x}" for p in files for x in problems(p.read_text("utf-8"))]
    assert not found, "\n".join(found)
