"""The index package's shape: cheap light imports, one list of kind names, lazy exports, no import circle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import index
from index.names import KIND_NAMES

ROOT = Path(__file__).resolve().parent.parent


def loaded_after(code: str) -> list[str]:
    """Top-level modules among faiss/numpy/pyarrow that `code` loads, in a fresh interpreter."""
    probe = f"{code}; import json, sys; print(json.dumps(sorted({{'faiss', 'numpy', 'pyarrow'}} & set(sys.modules))))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("code", ["import index.names", "from index.names import META_FILE",
                                  "import index.atomic", "from index import META_FILE, KIND_NAMES, VectorIndexError"])
def test_light_imports_do_not_load_faiss(code):
    assert loaded_after(code) == []


def test_a_heavy_export_still_loads_on_first_use():
    assert "faiss" in loaded_after("from index import IndexStore")


def test_the_kind_names_match_the_kinds():
    from index.kinds import KINDS

    assert len(KIND_NAMES) == len(set(KIND_NAMES))
    assert sorted(KINDS) == sorted(KIND_NAMES)


def test_every_export_resolves():
    for name in index.__all__:
        assert getattr(index, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        index.nonsense  # noqa: B018


def _imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that a file imports anywhere (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith(package + ".")}


def test_no_import_circle_inside_the_package():
    modules = {f"index.{p.stem}": p for p in (ROOT / "index").glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path, "index") & set(modules) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise AssertionError("import circle: " + " -> ".join((*trail[trail.index(name):], name)))
        if name not in done:
            for target in graph[name]:
                visit(target, (*trail, name))
            done.add(name)

    for name in graph:
        visit(name, ())
    assert graph["index.base"] <= {"index.errors"}, "the interface imports nothing heavier than its error"
