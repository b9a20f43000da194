"""pyproject.toml declares what the requirements files install (CI and the README install
from the files; the metadata must not drift from them)."""
from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def norm(req: str) -> str:
    """One requirement without spaces, with one kind of quote."""
    return re.sub(r"\s+", "", req).replace("'", '"')


def requirements(name: str) -> set[str]:
    """The requirement lines of ``name`` (comments and ``-r`` includes dropped)."""
    out = set()
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.add(norm(line))
    return out


def test_dependencies_are_requirements_txt():
    assert {norm(d) for d in PROJECT["dependencies"]} == requirements("requirements.txt")
    assert any("MetaTrader5" in d and 'sys_platform=="win32"' in norm(d) for d in PROJECT["dependencies"])


def test_extras_mirror_the_other_requirements_files():
    extras = PROJECT["optional-dependencies"]
    assert {norm(d) for d in extras["mt5linux"]} == requirements("requirements-mt5linux.txt")
    assert {norm(d) for d in extras["bench"]} == requirements("requirements-bench.txt")
    assert {norm(d) for d in extras["dev"]} - {"copyhub[mt5linux]"} == requirements("requirements-dev.txt")
    dev_includes = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in dev_includes and "-r requirements-mt5linux.txt" in dev_includes
