"""Every stage script's `--help` says what the stage does; `finstage preset` offers what exists;
the evaluate stage prints a readable table.

A `dvc.yaml` reader runs `python stages/X.py --help` to learn what a stage is for: options alone
do not say. The help text is the module docstring, so it is checked against it (whitespace
normalised: the terminal rewraps it).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

STAGES = sorted((ROOT / "stages").glob("*.py"))
WIDE = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}


def flat(text: str) -> str:
    """Words only: rich's box characters and line breaks removed, whitespace collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.name} has no module docstring"
    return flat(doc).split(". ")[0].rstrip(".")


@pytest.mark.parametrize("script", STAGES, ids=[p.stem for p in STAGES])
def test_stage_help_says_what_the_stage_does(script):
    out = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=ROOT, env=WIDE, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert first_sentence(script) in flat(out.stdout), out.stdout


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "finstage.cli", *args],
        cwd=ROOT,
        env=WIDE,
        capture_output=True,
        text=True,
    )


def test_preset_list_and_help_name_exactly_the_presets_that_exist():
    existing = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
    listed = [line.split()[0] for line in run_cli("preset", "--list").stdout.splitlines()]
    assert listed == existing
    help_text = flat(run_cli("preset", "--help").stdout)
    assert f"one of: {', '.join(existing)} " in help_text
    assert "embedded" not in existing  # the default is params.yaml itself, not a preset
    refused = run_cli("preset", "embedded", "--diff")
    assert refused.returncode == 2
    assert "no preset 'embedded'" in refused.stderr


@pytest.fixture(scope="module")
def evaluate_stage():
    spec = importlib.util.spec_from_file_location("stage_evaluate", ROOT / "stages/evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metrics_table_shows_primary_score_interval_n_coverage_and_cuts(evaluate_stage):
    scores = {
        "protocol": {"chat_template": 1.0, "max_length": 512},
        "gsm8k": {
            "em_flexible": 0.025,
            "em_flexible_lo": 0.0,
            "em_flexible_hi": 0.075,
            "em_strict": 0.0,
            "n": 40,
            "coverage": 0.5,
            "n_unparsed": 20,
            "n_truncated": 3,
        },
        "ocr": {"cer": 1.13628, "n": 20, "coverage": 1.0, "n_unparsed": 0},
    }
    lines = evaluate_stage.metrics_table(scores).splitlines()
    assert lines[0].split() == ["block", "score", "value", "95%", "CI", "n", "coverage", "cut"]
    assert lines[1].split() == [
        "gsm8k",
        "em_flexible",
        "0.025",
        "[0.000,",
        "0.075]",
        "40",
        "0.500",
        "3",
    ]
    assert lines[2].split() == ["ocr", "cer", "1.136", "-", "20", "1.000", "0"]
    assert len(lines) == 3  # protocol is how prompts were built, not a benchmark
    assert len({len(line) for line in lines}) == 1  # columns line up (the last is right-aligned)
