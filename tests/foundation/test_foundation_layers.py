"""The layer table of docs/architecture.md, enforced: every import statement of every
package (at module level or inside a function) may only point down the table.

A new upward import (monitoring -> nodes, copier -> anything but the standard library)
fails here with the file, line and the rule it breaks."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FOUNDATION = {"utils", "config"}  # settings and logging: every layer may use them
LOW = {"sim", "messaging", "db"}
SERVICES = {"monitoring", "alerts", "fleet", "dashboard"}
ENTRY = {"launcher", "cli", "setup_db"}

# package -> the first-party packages it may import (besides itself); docs/architecture.md, "Layers"
ALLOWED: dict[str, set[str]] = {
    "utils": set(),
    "config": {"utils"},
    "copier": set(),  # the standard library only (checked below)
    "sim": {"copier"} | FOUNDATION,
    "messaging": {"copier"} | FOUNDATION,
    "db": FOUNDATION,
    "terminals": {"copier", "sim"} | FOUNDATION,
    **{p: {"copier", "terminals"} | LOW | SERVICES | FOUNDATION for p in SERVICES},
    "nodes": {"copier", "terminals", "nodes"} | LOW | SERVICES | FOUNDATION,
    **{p: {"copier", "terminals", "nodes"} | LOW | SERVICES | FOUNDATION for p in ENTRY},
    "testing": {"copier", "terminals", "nodes"} | LOW | SERVICES | FOUNDATION | ENTRY,
}
FIRST_PARTY = set(ALLOWED) | {"bench", "tests"}


# _typeshed: the standard library's type stubs, imported only under TYPE_CHECKING.
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__", "_typeshed"}


def package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def violations(package: str, source: str, filename: str = "<src>") -> list[str]:
    """Import statements in ``source`` (a module of ``package``) that break the table."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside the package
        for name in names:
            top = name.split(".")[0]
            if top == package:
                continue
            if top in FIRST_PARTY:
                if top not in ALLOWED[package]:
                    out.append(f"{filename}:{node.lineno}: {package} imports {name} (may import: "
                               f"{', '.join(sorted(ALLOWED[package])) or 'nothing of the project'})")
            elif package == "copier" and top not in STDLIB:
                out.append(f"{filename}:{node.lineno}: copier imports {name} (the standard library only)")
    return out


def project_modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not {".venv", "tests", "bench", "__pycache__"} & set(p.relative_to(ROOT).parts))


def test_every_package_is_in_the_table():
    unknown = {package_of(p) for p in project_modules()} - set(ALLOWED)
    assert not unknown, f"add these to the layer table (docs/architecture.md and ALLOWED): {sorted(unknown)}"


def test_no_upward_imports():
    found = []
    for path in project_modules():
        found += violations(package_of(path), path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "imports against the layer table (docs/architecture.md):\n" + "\n".join(found)


@pytest.mark.parametrize("package, source", [
    ("monitoring", "from nodes.execution import Executor\n"),
    ("monitoring", "def f():\n    import nodes.slave\n"),  # a lazy import counts too
    ("fleet", "from nodes.pulse import STORE_WAIT\n"),
    ("copier", "import numpy\n"),
    ("copier", "from db import now_ms\n"),
    ("terminals", "from messaging.schema import Status\n"),
    ("sim", "from terminals.convert import position_from_mt5\n"),
])
def test_an_upward_import_is_caught(package, source):
    assert violations(package, source)


def test_imports_down_the_table_pass():
    assert not violations("monitoring", "from copier.risk import evaluate\nfrom terminals.convert import x\n"
                                        "from .daily import ReportJob\nimport structlog\n")
    assert not violations("copier", "from __future__ import annotations\nimport math\nfrom copier.models import Position\n")
