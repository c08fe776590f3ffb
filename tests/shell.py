"""The repository copied and its commands run from end-to-end tests, offline, with this
interpreter's tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def sh(*args: str, cwd: Path) -> str:
    """Run `args` in `cwd` with no hub access; its output, or an error carrying its tail."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout + done.stderr


def copy_checkout(root: Path, dest: Path) -> None:
    """Copy what git tracks (or would track) in `root` to `dest`: a clone of the working tree,
    uncommitted edits included, without ignored outputs or caches."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        if (root / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
