"""`train.<stage>.processes: 2` relaunches the stage script as two DDP processes (gloo on CPU).

Two processes with grad_accum=1 take the same optimizer steps as one process with grad_accum=2
(process r takes every second micro-batch of the same epoch order), so with dropout off the two
loss curves agree step by step, not only in shape.

Both adapter plans that see pages run here: p3_s2 (LLM LoRA, projector full) and p1_s2 (LoRA on
both towers, projector full). p1_s2 is the one DDP is strict about: a trainable tensor that no
forward pass reaches (LoRA on a vision layer past `vision_feature_layer`) stops it at step two.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from finstage.config import parse
from finstage.model.plan import StageConfig
from finstage.train.stage import run_stage

from .conftest import ROOT, repo_params

CURVE_ATOL = 1e-5  # gloo may sum gradients in another order (measured: identical on CPU)


STAGES = ["p3_s2", "p1_s2"]


def plan(stage: str, **overrides) -> dict:
    """The stage's plan from params.yaml, shrunk to the tiny fixtures and without dropout."""
    raw = repo_params()["train"][stage]
    lora = {**raw["lora"], "dropout": 0.0}
    return {
        **raw,
        "init": "p0",
        "lora": lora,
        "epochs": 2,
        "batch_size": 2,
        "max_seq_len": 96,
        "save_every": 0,
        **overrides,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_two_processes_match_one_process_curve(
    tmp_path, tiny_p0, tiny_pages, tiny_mixes, stage: str
) -> None:
    shutil.copytree(tiny_p0, tmp_path / "p0")
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"train": {"t": plan(stage, processes=2, grad_accum=1)}})
    )
    entry = {"cmd": "true", "params": [{"params.yaml": ["train.t"]}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"t": entry}}))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    command = [sys.executable, str(ROOT / "stages" / "train.py"), "--name", "t"]
    command += ["--init", "p0", "--data", str(tiny_mixes["visual"]), "--pages", str(tiny_pages)]
    command += ["--out", "out", "--curves", "curves", "--stage", "t"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "out" / "card.json").read_text())

    one_cfg = parse(StageConfig, plan(stage, processes=1, grad_accum=2), "train.t")
    one = run_stage(
        "t",
        one_cfg,
        tiny_p0,
        tiny_mixes["visual"],
        tiny_pages,
        tmp_path / "one",
        feature_dir=tmp_path / "features",
    )
    assert two["training"]["steps"] == one["training"]["steps"] == 4
    assert two["training"]["tokens"] == one["training"]["tokens"]
    assert two["training"]["losses"] == pytest.approx(one["training"]["losses"], abs=CURVE_ATOL)
    curve = (tmp_path / "curves" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert len(curve) == 1 + 4  # header + one row per step, written by the main process only
    assert (tmp_path / "out" / "adapter").is_dir()
