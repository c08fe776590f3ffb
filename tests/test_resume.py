"""An interrupted stage, rerun, resumes from its last snapshot and matches an uninterrupted run."""

from __future__ import annotations

import json

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


def cfg(name: str) -> StageConfig:
    raw = {
        **repo_params()["train"][name],
        "epochs": 3,
        "batch_size": 2,
        "max_seq_len": 96,
        "save_every": 2,
    }
    return parse(StageConfig, raw, f"train.{name}")


def interrupt_at(step_to_fail: int):
    def log(step: int, metrics: dict) -> None:
        if step == step_to_fail:
            raise Interrupt(f"killed at step {step}")

    return log


@pytest.mark.parametrize("name, mix", [("p3_s2", "visual"), ("p2_s1", "text")])
def test_resume_matches_an_uninterrupted_run(tmp_path, tiny_p0, tiny_pages, tiny_mixes, name, mix):
    plan = cfg(name)
    full = run_stage(
        name,
        plan,
        tiny_p0,
        tiny_mixes[mix],
        tiny_pages,
        tmp_path / "full",
        None,
        tmp_path / "r_full",
    )
    snapshots = tmp_path / "snap"
    with pytest.raises(Interrupt):
        run_stage(
            name,
            plan,
            tiny_p0,
            tiny_mixes[mix],
            tiny_pages,
            tmp_path / "cut",
            interrupt_at(7),
            snapshots,
        )
    assert (
        json.loads((snapshots / "meta.json").read_text())["step"] == 6
    )  # last snapshot before the kill
    logged: list[int] = []
    resumed = run_stage(
        name,
        plan,
        tiny_p0,
        tiny_mixes[mix],
        tiny_pages,
        tmp_path / "cut",
        lambda s, m: logged.append(s),
        snapshots,
    )
    assert logged == list(
        range(1, full["training"]["steps"] + 1)
    )  # curves replayed, then continued
    assert resumed["training"]["losses"] == full["training"]["losses"]
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=RESUME_ATOL, rtol=0) for k in a)
    assert not snapshots.exists(), "a finished stage removes its snapshots"


def test_snapshot_from_a_different_plan_is_ignored(tmp_path, tiny_p0, tiny_pages, tiny_mixes):
    plan = cfg("p3_s1")
    snapshots = tmp_path / "snap"
    with pytest.raises(Interrupt):
        run_stage(
            "p3_s1",
            plan,
            tiny_p0,
            tiny_mixes["text"],
            tiny_pages,
            tmp_path / "a",
            interrupt_at(5),
            snapshots,
        )
    other = parse(
        StageConfig,
        {
            **repo_params()["train"]["p3_s1"],
            "epochs": 3,
            "batch_size": 2,
            "max_seq_len": 96,
            "save_every": 2,
            "seed": 1,
        },
        "train.p3_s1",
    )
    logged: list[int] = []
    run_stage(
        "p3_s1",
        other,
        tiny_p0,
        tiny_mixes["text"],
        tiny_pages,
        tmp_path / "b",
        lambda s, m: logged.append(s),
        snapshots,
    )
    assert logged[0] == 1, "a different plan must start from step 1, not from the stale snapshot"
