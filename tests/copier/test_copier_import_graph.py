"""copier/ imports in layers, never in a circle.

The import graph is read from the source (every ``import`` / ``from ... import`` of a
copier module, at module level, inside functions and under ``TYPE_CHECKING`` alike), so a
lazy import that hides a cycle at run time counts as the cycle it is. Each module is also
imported alone (in a child interpreter, with every copier module unloaded before each):
none depends on another being imported first.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIER = ROOT / "copier"


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = COPIER) -> dict[str, set[str]]:
    """module -> the copier modules it imports (package imports of a submodule count as
    importing that submodule, ``from copier import retcodes`` included)."""
    files = {_module_name(p, root.parent): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and not (is_package is False and name.startswith(target + ".")):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(graph):
        if colour[start] == WHITE:
            found = visit(start)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "copier"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from copier.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from copier import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from copier.a import y\n")
    graph = import_graph(pkg)
    assert graph["copier.a"] == {"copier.b"} and graph["copier.b"] == {"copier.c"} and graph["copier.c"] == {"copier.a"}
    assert find_cycle(graph) == ["copier.a", "copier.b", "copier.c", "copier.a"]
    graph["copier.c"].clear()
    assert find_cycle(graph) is None


def test_copier_has_no_import_cycle():
    graph = import_graph()
    assert "copier.planner" in graph and "copier.planner_state" in graph["copier.planner"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in copier/: " + " -> ".join(cycle or [])


def test_planner_modules_import_only_downwards():
    """The planner's layers: state, common, then the rules, then the pass."""
    graph = import_graph()
    assert not {m for m in graph["copier.planner_state"] if m.startswith("copier.planner") or m == "copier.pending_fills"}
    assert {m for m in graph["copier.planner_common"] if m.startswith("copier.planner")} == {"copier.planner_state"}
    for rule in ("planner_flip", "planner_hedging", "planner_netting", "planner_fifo", "pending_fills", "planner_pending"):
        assert "copier.planner" not in graph[f"copier.{rule}"], rule


def test_each_copier_module_imports_alone():
    names = sorted(n for n in import_graph() if n != "copier")
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    for m in [k for k in sys.modules if k.startswith('copier')]:\n" \
           "        del sys.modules[m]\n    importlib.import_module(n)\n"
    done = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
