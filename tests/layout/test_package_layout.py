"""The package's shape (issue: the house): no import cycles, counting imports inside functions; no two
modules with the same file name; no module over 300 lines; moved modules still import from their old path."""

from __future__ import annotations

import ast
import importlib
from collections import Counter
from pathlib import Path

import pytest

from sae_lab._moved import MOVED

PKG = Path(__file__).resolve().parents[2] / "sae_lab"
MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the sae_lab modules it imports anywhere in its body (a package import counts as its
    __init__; `from pkg import name` counts the submodule when `name` is one). Imports under
    `if TYPE_CHECKING:` never run, so they are not edges."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        tree = ast.parse(path.read_text())
        for block in [n for n in ast.walk(tree) if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]:
            block.body = []
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                           for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t.startswith("sae_lab") and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None. A package's __init__ importing its own
    submodules is how packages re-export, so edges from a package into itself are not followed back up."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep == node.rpartition(".")[0] or node.startswith(dep + "."):
                continue  # a submodule importing its own package: the package's __init__ re-exports it
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_finds_a_cycle_through_a_function_level_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_no_two_modules_share_a_file_name():
    names = Counter(p.name for p in PKG.rglob("*.py") if p.name != "__init__.py")
    assert [n for n, c in names.items() if c > 1] == []


def test_no_module_over_300_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_module_imports_from_its_old_path_as_the_same_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_no_module_imports_a_package_above_it():
    """A module importing its own package's __init__ (which re-exports that module) is a loop in disguise."""
    graph = import_graph()
    up = {m: sorted(d for d in deps if m.startswith(d + ".")) for m, deps in graph.items()}
    assert {m: d for m, d in up.items() if d} == {}
