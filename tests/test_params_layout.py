"""`dvc exp run -S` leaves params.yaml readable: the committed layout is the one DVC writes.

DVC rewrites the whole params file on every `-S` with its own YAML settings; a file in another
layout (flow lists, `null`, other indents) came back with a diff of a hundred lines for one
value. The committed file, and what `finstage preset` writes, are fixed points of that rewrite.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides

from finstage import presets
from finstage.params import SECTIONS

from .conftest import ROOT


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm="")
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def set_param(path: Path, override: str) -> str:
    """What `dvc exp run -S override` leaves in the params file at `path`."""
    apply_overrides(str(path), [override])
    return path.read_text()


def test_one_value_set_by_dvc_changes_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    before = params.read_text()
    assert set_param(params, "corpus.seed=0") == before  # a no-op rewrite changes nothing
    after = set_param(params, "train.p3_s2.lora.r=32")
    assert len(changed_lines(before, after)) == 2, changed_lines(before, after)


@pytest.mark.parametrize("name", sorted(presets.available()))
def test_a_preset_applied_file_is_kept_as_is_by_dvc(tmp_path, name):
    merged = presets.apply(
        (ROOT / "params.yaml").read_text(), presets.preset_path(name).read_text(), SECTIONS
    )
    params = tmp_path / "params.yaml"
    params.write_text(merged)
    assert set_param(params, "corpus.seed=0") == merged
