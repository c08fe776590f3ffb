"""An interrupted stage, rerun, resumes from its last snapshot and matches an uninterrupted run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finstage.config import parse
from finstage.model.plan import StageConfig
from finstage.train import resume
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


class WritesMarker:
    """Unpickling this object opens (so creates) `path`: what a hostile state.pt would do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_in_the_resume_folder_is_never_loaded(tmp_path, tiny_p0, tiny_mixes, train):
    """A snapshot folder holding a pickle (an old `state.pt`, or a planted one) starts fresh."""
    plan, snapshots = cfg("p3_s1"), tmp_path / "snap"
    with pytest.raises(Interrupt):
        train(plan, "p3_s1", tiny_mixes["text"], tmp_path / "a", snapshots, kill_at=5)
    meta = json.loads((snapshots / "meta.json").read_text())
    for name in os.listdir(snapshots):  # as the pickle-era store left it, with a hostile pickle
        if name != resume.WEIGHTS:
            os.remove(snapshots / name)
    (snapshots / "meta.json").write_text(json.dumps({k: meta[k] for k in LEGACY_META}))
    marker = tmp_path / "marker"
    torch.save(
        {"optimizer": WritesMarker(marker), "scheduler": {}, "rng": None}, snapshots / "state.pt"
    )
    card, _ = train(plan, "p3_s1", tiny_mixes["text"], tmp_path / "b", snapshots)
    assert not marker.exists(), "the pickle in the resume folder was unpickled"
    assert card["training"]["resumed_from"] == 0


LEGACY_META = ("fingerprint", "step", "tokens", "history")


def test_a_snapshot_holds_no_pickle(tmp_path, tiny_mixes, train):
    snapshots = tmp_path / "snap"
    with pytest.raises(Interrupt):
        train(cfg("p3_s2"), "p3_s2", tiny_mixes["visual"], tmp_path / "a", snapshots, kill_at=5)
    for path in snapshots.iterdir():  # each file parses as safetensors or JSON, nothing else
        assert path.suffix in (".safetensors", ".json"), f"{path.name} is neither"
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            load_file(path)


def roundtrip(tree):
    tensors: dict[str, torch.Tensor] = {}
    encoded = json.loads(json.dumps(resume.encode_tree(tree, tensors)))
    return resume.decode_tree(encoded, {k: v.clone() for k, v in tensors.items()})


def test_optimizer_scheduler_and_rng_state_survive_exactly():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(
        [{"params": [model.weight], "name": "llm"}, {"params": [model.bias], "weight_decay": 0.0}],
        lr=1e-3,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    for _ in range(3):
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    state["rng"] = torch.get_rng_state()
    back = roundtrip(state)
    assert _same(back, state)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # a tuple, as saved
    assert list(back["optimizer"]["state"]) == [0, 1]  # parameter ids stay ints
    with pytest.raises(TypeError, match="object"):
        resume.encode_tree({"x": object()}, {})


def _same(a, b) -> bool:
    if isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(b, dict):
        return type(a) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in b)
    if isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b
