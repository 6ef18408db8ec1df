"""The Space's files, found by construction: what app.py imports and what those packages open.

Starting at app.py, every project module it imports is followed (imports inside functions too, by
reading the source), so a module that serving starts to use joins the bundle without a list to keep
up to date. Each project package brings its data files (e.g. fusion/assets/: weights, licences), and
APP_DATA names the folders app.py opens itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "app.py"
APP_DATA = ["examples"]  # opened by app.py (the examples), not imported
SKIP = {"__pycache__"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in a file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


def _project_file(name: str, root: Path) -> Path | None:
    parts = name.split(".")
    if not (root / parts[0] / "__init__.py").is_file() and not (root / f"{parts[0]}.py").is_file():
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def walk(root: Path = ROOT, entry: str = ENTRY) -> tuple[set[Path], set[str]]:
    """(project source files reachable from `entry`, top-level names of third-party modules they import)."""
    seen: set[Path] = set()
    third_party: set[str] = set()
    todo = [root / entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            found = _project_file(name, root)
            if found is not None:
                todo.append(found)
                parent = found.parent  # `import pkg.mod` also runs pkg/__init__.py
                while parent != root and (parent / "__init__.py").is_file():
                    todo.append(parent / "__init__.py")
                    parent = parent.parent
            elif name.split(".")[0] not in sys.stdlib_module_names and _project_file(name.split(".")[0], root) is None:
                third_party.add(name.split(".")[0])
    return seen, third_party


def bundle_files(root: Path = ROOT) -> list[Path]:
    """Every file the Space needs, relative to `root`: sources, package data, app data."""
    sources, _ = walk(root)
    files = set(sources)
    packages = {p.parent for p in sources if p.parent != root}
    for folder in packages | {root / name for name in APP_DATA}:
        files.update(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".py" and not SKIP & set(p.parts))
    return sorted(p.relative_to(root) for p in files if not SKIP & set(p.parts))
