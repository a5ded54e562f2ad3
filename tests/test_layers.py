"""The package's layers, read from the source with `ast` (module- and function-level imports alike):
each part imports only from its own layer or the ones below it, no module imports itself back
through others (no import circle, at any depth), the trainer never imports the report, and nothing
probes a model or a step context for what it has (`getattr(model, ...)`, `hasattr(model, ...)`,
`inspect.signature`): the contract of `genmodels.models.base` says what there is. CONTRIBUTING.md
draws the same picture."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "genmodels"

# Lowest first. A module may import from its own layer and the layers below.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "config_fields", "atomic", "viz", "version"}),
    ("nets", {"nets"}),
    ("data, diffusion", {"data", "diffusion"}),
    ("metrics", {"metrics"}),
    ("models", {"models"}),
    ("config, recipes", {"config", "recipes"}),
    ("run", {"run"}),
    ("training", {"training"}),
    ("report, theory", {"report", "theory"}),
    ("sources, zoo, latent_run", {"sources", "zoo", "latent_run"}),
    ("sampling, evaluation", {"sampling", "evaluation"}),
    ("api, cli", {"api", "cli", "__init__", "__main__"}),
]
LAYER_OF = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}

ROOT_NAMES_BELOW_EVERYTHING = {"__version__"}   # `from genmodels import __version__` is no layer


def part_of(path: Path) -> str:
    """The top-level part a source file belongs to: "training" for training/trainer.py, "viz" for viz.py."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_parts(tree: ast.AST, path: Path) -> list[tuple[int, str]]:
    """(line, top-level part of genmodels) of every import in the file, at any depth."""
    package = ["genmodels", *path.relative_to(SRC).parts[:-1]]     # the package holding the file
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [(base, a.name) for a in node.names]
        else:
            continue
        for module, name in names:
            parts = module.split(".")
            if parts[0] != "genmodels":
                continue
            if len(parts) > 1:
                out.append((node.lineno, parts[1]))
            elif name is not None and name not in ROOT_NAMES_BELOW_EVERYTHING:
                # `from genmodels import data` imports a part; `from genmodels import load` the root package
                out.append((node.lineno, name if name in LAYER_OF and name != "__init__" else "__init__"))
            elif name is None:
                out.append((node.lineno, "__init__"))
    return out


def source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "egg-info" not in str(p))


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(p) for p in source_files()}
    assert parts <= set(LAYER_OF), f"give these a layer in LAYERS (and in CONTRIBUTING.md): {parts - set(LAYER_OF)}"


def layer_violations(path: Path, source: str) -> list[str]:
    own = part_of(path)
    rel = str(path.relative_to(SRC))
    out = []
    for line, part in imported_parts(ast.parse(source), path):
        if part not in LAYER_OF:
            continue
        if LAYER_OF[part] > LAYER_OF[own]:
            out.append(f"{rel}:{line}: {own} ({LAYERS[LAYER_OF[own]][0]}) imports {part} "
                       f"({LAYERS[LAYER_OF[part]][0]}), a higher layer")
    return out


def test_no_layer_imports_a_higher_one():
    problems = [v for p in source_files() for v in layer_violations(p, p.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)


def test_the_trainer_never_imports_the_report():
    problems = [f"{p.relative_to(SRC)}:{line}" for p in (SRC / "training").rglob("*.py")
                for line, part in imported_parts(ast.parse(p.read_text(encoding="utf-8")), p) if part == "report"]
    assert not problems, problems


PROBED = re.compile(r"(^|\W)(model|models|ctx|model_cls)(\W|$)")


def probes(source: str) -> list[str]:
    """getattr/hasattr calls whose object is a model (any expression naming `model`, e.g.
    loaded.model or get_model(name)[0]) or a step context (`ctx`), and any use of `inspect`."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and node.args:
            target = ast.unparse(node.args[0])
            if PROBED.search(target) or "get_model(" in target or target.endswith(".model"):
                out.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if "inspect" in names:
                out.append(f"line {node.lineno}: imports inspect")
    return out


def test_probes_are_found():
    """The checker itself finds what it is meant to (so the next test can fail)."""
    assert len(probes("getattr(model, 'views', None)\nhasattr(loaded.model, 'sample_nrow')\n"
                      "getattr(get_model(n)[0], 'metric_names', ())\nhasattr(ctx, 'global_batch')\n"
                      "import inspect\n")) == 5
    assert probes("getattr(cfg, 'lr')\nhasattr(self.config, 'validate')\ngetattr(args, 'init', None)\n") == []


def test_nothing_probes_a_model_or_a_context():
    problems = [f"{p.relative_to(SRC)} {v}" for p in source_files() for v in probes(p.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source, bad", [
    ("from genmodels.report import write_report\n", True),           # training -> report
    ("def f():\n    from genmodels.cli import main\n", True),         # function-level counts too
    ("from genmodels.run import RunDir\n", False),
    ("from genmodels import __version__\n", False),
])
def test_the_layer_check_reads_function_level_imports(source, bad):
    assert bool(layer_violations(SRC / "training" / "trainer.py", source)) == bad


def module_of(path: Path) -> str:
    """The dotted module of a source file: genmodels.zoo for zoo/__init__.py, genmodels.zoo.card for zoo/card.py."""
    parts = ["genmodels", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, path: Path, modules: set[str]) -> set[str]:
    """The genmodels modules (of `modules`) the file imports, at any depth: `from genmodels.zoo import
    card` imports genmodels.zoo.card, `from genmodels.zoo import load_zoo` the package genmodels.zoo."""
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules}
    return out


def import_graph(sources: dict[Path, str]) -> dict[str, set[str]]:
    """{module: the modules it imports} over the given source files."""
    modules = {module_of(p) for p in sources}
    return {module_of(p): imported_modules(ast.parse(text), p, modules) - {module_of(p)} for p, text in sources.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): each is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles():
    graph = import_graph({p: p.read_text(encoding="utf-8") for p in source_files()})
    circles = import_circles(graph)
    assert not circles, "import circles (module- or function-level imports):\n" + "\n".join(
        " <-> ".join(c) for c in circles)


def test_the_circle_check_finds_a_circle_through_a_function_level_import():
    sources = {SRC / "sources.py": "from genmodels.zoo import load_zoo\n",
               SRC / "zoo" / "__init__.py": "from genmodels.zoo.export import export_run\n",
               SRC / "zoo" / "export.py": "def f():\n    from genmodels.sources import is_zoo\n",
               SRC / "zoo" / "card.py": "from genmodels.zoo import weights\n",
               SRC / "zoo" / "weights.py": "import json\n"}
    assert import_circles(import_graph(sources)) == [["genmodels.sources", "genmodels.zoo", "genmodels.zoo.export"]]
    del sources[SRC / "zoo" / "export.py"]
    assert import_circles(import_graph(sources)) == []
