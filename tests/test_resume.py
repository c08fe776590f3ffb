"""An interrupted stage, rerun, resumes from its last snapshot and matches an uninterrupted run."""

from __future__ import annotations

import hashlib
import importlib.util
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

from .conftest import ROOT, repo_params

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


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: what DVC's hash of it depends on."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name, mix", [("p3_s2", "visual"), ("p2_s1", "text")])
def test_resume_matches_an_uninterrupted_run(tmp_path, tiny_mixes, train, capsys, name, mix):
    plan, snapshots = cfg(name), tmp_path / "snap"
    full, _ = train(plan, name, tiny_mixes[mix], tmp_path / "full", tmp_path / "r_full")
    assert "resuming" not in capsys.readouterr().out
    with pytest.raises(Interrupt):
        train(plan, name, tiny_mixes[mix], tmp_path / "cut", snapshots, kill_at=7)
    last_snapshot = json.loads((snapshots / "meta.json").read_text())["step"]
    assert last_snapshot == 6
    resumed, logged = train(plan, name, tiny_mixes[mix], tmp_path / "cut", snapshots)
    assert f"resuming {name} from step 6\n" in capsys.readouterr().out
    # the curve is replayed up to the snapshot, then continues to the end
    assert logged == list(range(1, full["training"]["steps"] + 1))
    assert resumed == full
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=RESUME_ATOL, rtol=0) for k in a)
    # the checkpoint, card.json included, is the same bytes: resuming reruns nothing downstream
    assert file_hashes(tmp_path / "cut") == file_hashes(tmp_path / "full")
    assert not snapshots.exists(), "a finished stage removes its snapshots"


def test_snapshot_from_a_different_plan_is_discarded_with_a_message(
    tmp_path, tiny_mixes, train, capsys
):
    snapshots = tmp_path / "snap"
    with pytest.raises(Interrupt):
        train(cfg("p3_s1"), "p3_s1", tiny_mixes["text"], tmp_path / "a", snapshots, kill_at=5)
    capsys.readouterr()
    train(cfg("p3_s1", seed=1), "p3_s1", tiny_mixes["text"], tmp_path / "b", snapshots)
    out = capsys.readouterr().out
    assert f"resume: discarding the snapshot in {snapshots} (step 4)" in out
    assert "resuming" not in out, "a stale snapshot from another plan was used"


def test_a_kill_right_after_the_first_step_resumes_from_it(tmp_path, tiny_mixes, train, capsys):
    """save_every is 2 here, yet a run killed during step 2 loses only that step."""
    plan, snapshots = cfg("p3_s1"), tmp_path / "snap"
    with pytest.raises(Interrupt):
        train(plan, "p3_s1", tiny_mixes["text"], tmp_path / "cut", snapshots, kill_at=2)
    assert json.loads((snapshots / "meta.json").read_text())["step"] == 1
    capsys.readouterr()
    _, logged = train(plan, "p3_s1", tiny_mixes["text"], tmp_path / "cut", snapshots)
    assert "resuming p3_s1 from step 1\n" in capsys.readouterr().out
    assert logged[:2] == [1, 2]


def test_snapshots_by_time_leave_the_run_unchanged(tmp_path):
    """A save whenever `seconds` have passed, on top of the step rule; saving never steers."""
    store = resume.ResumeStore(tmp_path / "snap", "f", every=5, seconds=0.0)
    assert [store.due(s) for s in (1, 2, 3)] == [True, True, True]
    store = resume.ResumeStore(tmp_path / "snap", "f", every=5, seconds=3600.0)
    assert [s for s in range(1, 12) if store.due(s)] == [1, 5, 10]
    assert not resume.ResumeStore(tmp_path / "snap", "f", every=0, seconds=0.0).due(1)


def stage_script():
    spec = importlib.util.spec_from_file_location("stage_train_script", ROOT / "stages/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_runs_write_the_same_curve_files(tmp_path, tiny_p0, tiny_pages, tiny_mixes):
    """The curves are DVC metrics and plots: no wall-clock figure may reach them."""
    from dvclive import Live

    script, plan = stage_script(), cfg("p3_s2")
    for run in ("a", "b"):
        curves = tmp_path / f"curves_{run}"
        with Live(dir=str(curves), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            out = tmp_path / f"out_{run}"
            log = script.curve_logger(live)
            run_stage("p3_s2", plan, tiny_p0, tiny_mixes["visual"], tiny_pages, out, log, None)
    a, b = file_hashes(tmp_path / "curves_a"), file_hashes(tmp_path / "curves_b")
    assert "metrics.json" in a and "plots/metrics/tokens.tsv" in a
    assert a == b
    assert file_hashes(tmp_path / "out_a") == file_hashes(tmp_path / "out_b")


class WritesMarker:
    """Unpickling this object opens (so creates) `path`: what a hostile state.pt would do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_in_the_resume_folder_is_never_loaded(tmp_path, tiny_mixes, train, capsys):
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
    assert "resuming" not in capsys.readouterr().out


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
