"""The embedded default end to end: `dvc repro` in a fresh copy of the repository.

One run (a few minutes on 2 CPU cores) backs every assertion here: all stages produce their
outputs, loss falls in every training stage, the frozen-LLM stage leaves text metrics
unchanged, the data stages and P0 reproduce the hashes of the committed `dvc.lock` byte for byte,
a second repro runs nothing, outputs and run-cache pushed to a directory remote let a fresh clone
skip every stage, a P4 stage added by params alone is trained, evaluated and reported, and a
LoRA-rank experiment on p3_s2 reruns exactly its training, its evaluation and the report (last:
it changes the workspace).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from finstage.recipe import checkpoints, training_stages

from .conftest import ROOT, repo_params
from .shell import copy_checkout, sh

pytestmark = pytest.mark.e2e
TRAIN = training_stages(repo_params())
CHECKPOINTS = [c.name for c in checkpoints(repo_params())]
EVAL = Path("metrics", "eval")  # evaluate@<ckpt> writes EVAL/<ckpt>.json
# Stages whose outputs must be byte-identical on any machine installed with constraints.txt.
# Training stages are not among them: 500 full fine-tuning steps amplify the last-bit
# differences between CPUs' float kernels (an AMD EPYC and an Intel Xeon give other warm-up
# weights from the same inputs), so their determinism is checked on one machine instead
# (tests/test_warmup_stage.py::test_same_params_same_bytes, tests/test_resume.py).
REPRODUCIBLE = [
    "corpus",
    "fetch",
    "render",
    "synthesize",
    "distill",
    "benchmarks",
]
GIT_ID = ["-c", "user.name=ci", "-c", "user.email=ci@localhost"]


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def restored_stages(output: str) -> set[str]:
    """Stages DVC restored from its run-cache instead of running them."""
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run", output))


def out_md5s(lock_text: str, stages: list[str]) -> dict[str, dict[str, str]]:
    """`{stage: {out path: md5}}` from a dvc.lock; deps and params hashes are left out."""
    locked = yaml.safe_load(lock_text)["stages"]
    return {
        name: {out["path"]: out["md5"] for out in locked[name].get("outs", [])}
        for name in stages
        if name in locked
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the project's tracked files, committed to a fresh git repo, after `dvc repro`."""
    dest = tmp_path_factory.mktemp("e2e") / "finstage"
    copy_checkout(ROOT, dest)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "copy"],
    ):
        sh(*cmd, cwd=dest)
    out = sh("dvc", "repro", cwd=dest)
    (dest / "repro.log").write_text(out)
    sh("git", "add", "-A", cwd=dest)
    sh(
        "git",
        "-c",
        "user.name=ci",
        "-c",
        "user.email=ci@localhost",
        "commit",
        "-qm",
        "repro",
        cwd=dest,
    )
    return dest


def test_every_checkpoint_has_metrics_with_identical_keys(repo):
    metrics = {c: json.loads((repo / EVAL / f"{c}.json").read_text()) for c in CHECKPOINTS}
    shape = {task: sorted(values) for task, values in metrics["p0"].items()}
    for ckpt, m in metrics.items():
        assert {task: sorted(v) for task, v in m.items()} == shape, ckpt
        assert m.pop("protocol") == {"chat_template": 1.0, "max_length": 512}, ckpt
        assert all(v["n"] > 0 for v in m.values()), ckpt
        # the stand-ins carry the real files' long prompts: cut to fit, and counted
        assert m["cpa_audit"]["n_truncated"] > 0 and m["fp2"]["n_truncated"] > 0, ckpt
        predictions = (repo / "metrics" / "predictions" / f"{ckpt}.jsonl").read_text()
        rows = [json.loads(line) for line in predictions.splitlines()]
        assert len({(r["task"], r["id"]) for r in rows}) == len(rows), ckpt  # ids are unique
    table = (repo / "metrics" / "trajectory.md").read_text()
    assert "| GSM8K · exact match (strict) | 40 |" in table and "P3-1" in table
    assert "## Japanese financial harness" in table and "## Which checkpoint" in table
    decontam = json.loads((repo / "metrics" / "decontam.json").read_text())
    assert decontam["ok"] and decontam["n_flagged"] == 0
    assert (repo / "metrics" / "trajectory.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoints_load_with_transformers_alone(repo):
    from PIL import Image
    from transformers import AutoProcessor, AutoTokenizer, LlavaForConditionalGeneration

    for ckpt in CHECKPOINTS:
        model = LlavaForConditionalGeneration.from_pretrained(repo / "models" / ckpt)
        AutoTokenizer.from_pretrained(repo / "models" / ckpt)
        processor = AutoProcessor.from_pretrained(repo / "models" / ckpt)
        page = Image.new("RGB", (300, 400), "white")
        ids = processor(text="<image>合計は?", images=page, return_tensors="pt")["input_ids"]
        placeholders = int((ids == model.config.image_token_id).sum())
        assert placeholders == model.config.image_seq_length, ckpt
        assert (repo / "models" / ckpt / "card.json").exists()
        files = [p for p in (repo / "models" / ckpt).rglob("*") if p.is_file()]
        assert {p.stat().st_mode & 0o777 for p in files} == {0o644}, ckpt


def test_loss_falls_in_every_training_stage(repo):
    for stage in TRAIN:
        losses = json.loads((repo / "models" / stage / "card.json").read_text())["training"][
            "losses"
        ]
        k = max(1, len(losses) // 4)
        assert sum(losses[-k:]) / k < sum(losses[:k]) / k, (
            f"{stage}: loss did not fall {losses[:k]} -> {losses[-k:]}"
        )


def test_training_curves_are_logged_for_every_stage(repo):
    for stage in TRAIN:
        rows = (
            (repo / "metrics" / "train" / stage / "plots" / "metrics" / "loss.tsv")
            .read_text()
            .splitlines()
        )
        assert rows[0].split("\t")[:2] == ["step", "loss"] and len(rows) > 2


def text_predictions(repo: Path, ckpt: str) -> list[dict]:
    rows = (repo / "metrics" / "predictions" / f"{ckpt}.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, rows) if r["task"] not in ("ocr", "vqa", "finqa_visual")]


def test_frozen_llm_stage_keeps_text_metrics(repo):
    p0 = json.loads((repo / EVAL / "p0.json").read_text())
    p1_s1 = json.loads((repo / EVAL / "p1_s1.json").read_text())
    visual = {"ocr", "vqa", "finqa_visual"}
    for block in set(p0) - visual:  # every text benchmark, the harness average included
        assert p1_s1[block] == p0[block], block
    # scores can tie by chance; the generations and per-choice log-likelihoods cannot
    assert text_predictions(repo, "p1_s1") == text_predictions(repo, "p0")
    assert text_predictions(repo, "p1_s2") != text_predictions(repo, "p0")


def test_clean_install_reproduces_committed_hashes(repo):
    """The data stages and P0 give the bytes the committed dvc.lock records, on any machine.

    Compared against the source repository's committed lock (not the copy's, which the run
    rewrote), outputs only: code refactors legitimately change deps hashes, not outputs.
    """
    committed = subprocess.run(
        ["git", "show", "HEAD:dvc.lock"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    expected = out_md5s(committed, REPRODUCIBLE)
    assert sorted(expected) == sorted(REPRODUCIBLE), "committed dvc.lock lacks stages"
    produced = out_md5s((repo / "dvc.lock").read_text(), REPRODUCIBLE)
    differ = {
        f"{stage}: {path}": (md5, produced.get(stage, {}).get(path))
        for stage, outs in expected.items()
        for path, md5 in outs.items()
        if produced.get(stage, {}).get(path) != md5
    }
    import transformers

    assert not differ, (
        f"outputs differ from the committed dvc.lock (committed, produced): {differ}; "
        f"transformers {transformers.__version__}: install with `-c constraints.txt`"
    )


def test_second_repro_runs_nothing(repo):
    out = sh("dvc", "repro", cwd=repo)
    assert not ran_stages(out), out
    assert "up to date" in sh("dvc", "status", cwd=repo).lower()


def test_pushed_caches_let_a_fresh_clone_skip_every_stage(repo, tmp_path):
    """The README's "Share caches": push outputs and run-cache to a directory remote; a fresh
    clone with an empty cache pulls them and `dvc repro` runs nothing."""
    sh("git", "diff", "--quiet", "HEAD", "--", "params.yaml", "dvc.lock", cwd=repo)  # pristine
    remote = tmp_path / "remote"
    sh("dvc", "remote", "add", "-d", "shared", str(remote), cwd=repo)
    sh("git", *GIT_ID, "commit", "-qm", "remote", "--", ".dvc/config", cwd=repo)
    sh("dvc", "push", "--run-cache", cwd=repo)
    assert (remote / "files" / "md5").is_dir() and (remote / "runs").is_dir()

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone / ".dvc" / "cache").exists() and not (clone / "models" / "p0").exists()
    sh("dvc", "pull", "--run-cache", cwd=clone)
    out = sh("dvc", "repro", cwd=clone)
    assert not ran_stages(out), out
    assert "up to date" in sh("dvc", "status", cwd=clone).lower()
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    outs = {o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])}
    assert {"models/p0", f"{EVAL.as_posix()}/p3_s2.json"} <= outs
    compared = 0
    for rel in sorted(outs):  # every output the lock records, byte for byte
        src = repo / rel
        assert src.exists(), src
        for path in [src] if src.is_file() else sorted(src.rglob("*")):
            if path.is_file():
                assert (clone / path.relative_to(repo)).read_bytes() == path.read_bytes(), path
                compared += 1
    assert compared > len(outs)

    # the run-cache on its own: without a lock, every stage is restored from it, none runs
    (clone / "dvc.lock").unlink()
    out = sh("dvc", "repro", cwd=clone)
    assert not ran_stages(out), out
    assert restored_stages(out) == set(lock["stages"]), out
    assert yaml.safe_load((clone / "dvc.lock").read_text()) == lock


def test_a_phase_added_by_params_alone_is_trained_evaluated_and_reported(repo):
    """A P4 after P3, on P3's mixture: two params edits, no code; then the workspace is reset."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["p4_s1"] = {
        **params["train"]["p3_s2"],
        "init": "p3_s2",
        "data": "p3_s2",
        "epochs": 1,
    }
    params["report"]["phases"]["p4_s1"] = "P4"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    try:
        sh("finstage", "validate", cwd=repo)
        out = sh("dvc", "repro", cwd=repo)
        assert ran_stages(out) == {"validate", "train@p4_s1", "evaluate@p4_s1", "report"}, out
        card = json.loads((repo / "models" / "p4_s1" / "card.json").read_text())
        assert card["init"] == "p3_s2" and card["lineage"][-2:] == ["p3_s2", "p4_s1"]
        p4 = json.loads((repo / "metrics" / "eval" / "p4_s1.json").read_text())
        p3 = json.loads((repo / "metrics" / "eval" / "p3_s2.json").read_text())
        assert {b: sorted(v) for b, v in p4.items()} == {b: sorted(v) for b, v in p3.items()}
        header = next(
            line
            for line in (repo / "metrics" / "trajectory.md").read_text().splitlines()
            if line.startswith("| benchmark")
        )
        assert header.endswith("| P3 | P4 | best |"), header
        summary = json.loads((repo / "metrics" / "trajectory.json").read_text())
        assert summary["gsm8k"]["em_strict"]["P4"] == p4["gsm8k"]["em_strict"]
    finally:
        sh("git", "checkout", "--", ".", cwd=repo)
        for rel in ("models/p4_s1", "metrics/train/p4_s1"):
            shutil.rmtree(repo / rel, ignore_errors=True)
        for rel in ("metrics/eval/p4_s1.json", "metrics/predictions/p4_s1.jsonl"):
            (repo / rel).unlink(missing_ok=True)
        sh("dvc", "checkout", cwd=repo)
    assert "up to date" in sh("dvc", "status", cwd=repo).lower()


def test_lora_rank_experiment_reruns_only_p3_s2_downstream(repo):
    out = sh("dvc", "exp", "run", "-S", "train.p3_s2.lora.r=32", cwd=repo)
    assert ran_stages(out) == {"validate", "train@p3_s2", "evaluate@p3_s2", "report"}, out
    card = json.loads((repo / "models" / "p3_s2" / "card.json").read_text())
    assert card["params"]["lora"]["r"] == 32
    diff = json.loads(sh("dvc", "params", "diff", "--json", cwd=repo))
    change = diff["params.yaml"]["train.p3_s2.lora.r"]
    assert (change["old"], change["new"]) == (16, 32)
    metrics_diff = sh("dvc", "metrics", "diff", "--all", "--json", cwd=repo)
    assert f"{EVAL.as_posix()}/p3_s2.json" in metrics_diff
