"""Every stage's code deps in dvc.yaml cover every finstage module its script can import.

A module a stage runs but does not declare is a result that can go stale: change it, and
`dvc repro` says everything is up to date while the outputs no longer match the code. The
closure is computed from the source (`tests/imports.py`), so a new import is caught the day it
is written.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from dvc.repo import Repo

from .conftest import ROOT
from .imports import closure


def stage_code(root: Path) -> dict[str, tuple[Path, list[Path]]]:
    """Stage name -> (its script, its declared deps), from DVC's own view of dvc.yaml."""
    with Repo(str(root)) as repo:
        stages = {s.name: (s.cmd, [Path(d.fs_path) for d in s.deps]) for s in repo.index.stages}
    return {name: (root / shlex.split(cmd)[1], deps) for name, (cmd, deps) in stages.items()}


def uncovered(root: Path) -> dict[str, list[str]]:
    """Stage -> finstage files its script can import that no declared dep covers."""
    missing = {}
    for name, (script, deps) in stage_code(root).items():
        files = closure(root / "src", script) | {script}
        lost = [f for f in files if not any(f == d or d in f.parents for d in deps)]
        if lost:
            missing[name] = sorted(str(f.relative_to(root)) for f in lost)
    return missing


def test_every_stage_declares_the_code_it_runs():
    assert uncovered(ROOT) == {}


def test_a_planted_import_without_a_dep_is_caught(tmp_path):
    for part in ("src/finstage", "stages"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / part, tmp_path / part)
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    assert uncovered(tmp_path) == {}
    script, deps = stage_code(tmp_path)["corpus"]
    covered = closure(tmp_path / "src", script)
    outside = next(
        f
        for f in sorted((tmp_path / "src" / "finstage").rglob("*.py"))
        if f not in covered and not any(f == d or d in f.parents for d in deps)
    )
    module = ".".join(outside.relative_to(tmp_path / "src").with_suffix("").parts)
    module = module.removesuffix(".__init__")
    script.write_text(f"import {module}  # planted\n" + script.read_text())
    assert str(outside.relative_to(tmp_path)) in uncovered(tmp_path)["corpus"]
