"""Static import graph of the `finstage` package, read from source with `ast`.

Both structural tests use it: every stage's code deps must cover the modules its script can
import (so a code change always reruns what it affects), and stage packages must not import
each other. Imports inside functions count: they run just the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "finstage"


def imported_modules(path: Path) -> set[str]:
    """Dotted names of the finstage modules (or attributes of them) `path` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == PACKAGE or name.startswith(f"{PACKAGE}.")}


def module_file(src: Path, dotted: str) -> Path | None:
    """The file that defines module `dotted`, or None when the name is an attribute."""
    base = src.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def closure(src: Path, script: Path) -> set[Path]:
    """Every finstage source file that running `script` can execute, package `__init__`s too."""
    todo, seen = [script], set()
    while todo:
        path = todo.pop()
        for dotted in imported_modules(path):
            parts = dotted.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                found = module_file(src, ".".join(parts[:depth]))
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return seen
