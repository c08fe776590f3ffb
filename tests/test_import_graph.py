"""The package's layering, as docs/architecture.md draws it.

Stage packages (one per pipeline step) import only shared components, never each other, so a
stage's code deps stay small and a change to one step cannot silently alter another. Shared
components import no stage package. Only the command-line layer (`cli`, `params`, `presets`),
which validates every section at once, sees everything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT
from .imports import PACKAGE, imported_modules

SRC = ROOT / "src" / PACKAGE
STAGE_PACKAGES = {"corpus", "pages", "synth", "distill", "mix", "train", "evaluate", "report"}
TOP = {"cli", "params", "presets"}
MAX_LINES = 450
MODULES = sorted(SRC.rglob("*.py"))


def part(path: Path) -> str:
    """The first component under finstage/: a package name or a top-level module's name."""
    return path.relative_to(SRC).with_suffix("").parts[0]


def imported_parts(path: Path) -> set[str]:
    return {name.split(".")[1] for name in imported_modules(path) if name.count(".") >= 1}


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_layers(path):
    own, uses = part(path), imported_parts(path) - {part(path)}
    if own in TOP:
        return
    assert not uses & TOP, f"{path.name} imports the command-line layer {uses & TOP}"
    crossing = uses & STAGE_PACKAGES
    kind = "stage package" if own in STAGE_PACKAGES else "shared component"
    assert not crossing, f"{kind} {own} imports stage package(s) {sorted(crossing)}"


def test_stage_packages_exist():
    assert STAGE_PACKAGES <= {part(p) for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines < MAX_LINES, f"{path.relative_to(SRC)} has {lines} lines; split it"
