"""An interrupted stage, rerun, resumes from its last snapshot and matches an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finstage.config import parse
from finstage.model.plan import StageConfig
from finstage.train.stage import run_stage

from .conftest import repo_params

RESUME_ATOL = 0.0  # same data order, restored optimizer/scheduler/RNG: bit-identical on CPU


class Interrupt(Exception):
    pass


def cfg(name: str, seed: int = 0) -> StageConfig:
    raw = {**repo_params()["train"][name], "epochs": 3, "batch_size": 2, "max_seq_len": 96}
    return parse(StageConfig, {**raw, "save_every": 2, "seed": seed}, f"train.{name}")


@pytest.fixture
def train(tiny_p0, tiny_pages):
    """run_stage with this module's tiny checkpoint and pages; returns (card, logged steps)."""

    def run(plan: StageConfig, name: str, mix: Path, out: Path, snapshots: Path, kill_at: int = 0):
        logged: list[int] = []

        def log(step: int, metrics: dict) -> None:
            if step == kill_at:
                raise Interrupt(f"killed at step {step}")
            logged.append(step)

        card = run_stage(name, plan, tiny_p0, mix, tiny_pages, out, log, snapshots)
        return card, logged

    return run


@pytest.mark.parametrize("name, mix", [("p3_s2", "visual"), ("p2_s1", "text")])
def test_resume_matches_an_uninterrupted_run(tmp_path, tiny_mixes, train, name, mix):
    plan, snapshots = cfg(name), tmp_path / "snap"
    full, _ = train(plan, name, tiny_mixes[mix], tmp_path / "full", tmp_path / "r_full")
    with pytest.raises(Interrupt):
        train(plan, name, tiny_mixes[mix], tmp_path / "cut", snapshots, kill_at=7)
    last_snapshot = json.loads((snapshots / "meta.json").read_text())["step"]
    assert last_snapshot == 6
    resumed, logged = train(plan, name, tiny_mixes[mix], tmp_path / "cut", snapshots)
    assert (full["training"]["resumed_from"], resumed["training"]["resumed_from"]) == (0, 6)
    # the curve is replayed up to the snapshot, then continues to the end
    assert logged == list(range(1, full["training"]["steps"] + 1))
    assert resumed["training"]["losses"] == full["training"]["losses"]
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=RESUME_ATOL, rtol=0) for k in a)
    assert not snapshots.exists(), "a finished stage removes its snapshots"


def test_snapshot_from_a_different_plan_is_ignored(tmp_path, tiny_mixes, train):
    snapshots = tmp_path / "snap"
    with pytest.raises(Interrupt):
        train(cfg("p3_s1"), "p3_s1", tiny_mixes["text"], tmp_path / "a", snapshots, kill_at=5)
    card, _ = train(cfg("p3_s1", seed=1), "p3_s1", tiny_mixes["text"], tmp_path / "b", snapshots)
    assert card["training"]["resumed_from"] == 0, "a stale snapshot from another plan was used"
