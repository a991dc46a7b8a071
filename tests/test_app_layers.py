"""The app's layers flow one way: pages -> semsim_ui -> semsim_app -> semsim -> index, with no import circle
and no Streamlit below semsim_ui. Checked on the source (every import, also those inside functions) and,
for Streamlit, by importing every semsim_app module in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("semsim", "semsim_app", "semsim_ui", "index")


def _modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of a package."""
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(module: str, path: Path) -> set[str]:
    """Every dotted name a module imports, wherever the import statement is (relative ones resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a `from package import module` counts as the module)."""
    modules = {name: path for package in PACKAGES for name, path in _modules(package).items()}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in _imported(module, path)}
        # A package importing its own submodules (or a submodule its package) is not a circle between layers.
        graph[module] = {t for t in targets if t and t != module and not module.startswith(t + ".")
                         and not t.startswith(module + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_check_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_project_packages():
    graph = _graph()
    assert {"semsim_app.run_store", "semsim_ui.widgets", "semsim.names", "index.names"} <= set(graph)
    assert _cycles(graph) == []


def test_layers_import_only_downwards():
    below = {"semsim_app": ("semsim_ui", "streamlit"), "semsim": ("semsim_app", "semsim_ui", "streamlit"),
             "index": ("semsim", "semsim_app", "semsim_ui", "streamlit")}
    wrong = []
    for package, forbidden in below.items():
        for module, path in _modules(package).items():
            for name in _imported(module, path):
                if name.split(".")[0] in forbidden:
                    wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_semsim_app_loads_without_streamlit_or_keras():
    """Importing every semsim_app module loads neither Streamlit (so the logic runs outside a page) nor
    TensorFlow or Keras (so listing models, runs and indexes stays fast): those load inside functions."""
    names = sorted(_modules("semsim_app"))
    assert "semsim_app.run_request" in names and len(names) > 5
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'streamlit', 'tensorflow', 'keras'}))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
