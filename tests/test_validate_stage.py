"""The `validate` stage runs before every other stage, so bad params stop `dvc repro` at once.

DVC deletes a stage's outputs before running its command; a stage that rejects its params
after that has already lost them. With `validate` upstream of everything, a typo stops the run
before any other stage starts, with one line naming the key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import networkx as nx
from dvc.repo import Repo

from .conftest import ROOT
from .shell import copy_checkout, sh


def test_every_stage_runs_after_validate():
    with Repo(str(ROOT)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        (validate,) = [s for s in graph if s.addressing == "validate"]
        late = [s.addressing for s in graph if s is not validate]
        upstream = {s.addressing: nx.descendants(graph, s) for s in graph if s is not validate}
        params = repo.params.show(stages=["validate"], deps_only=True)
    assert late and all(validate in upstream[name] for name in late), [
        name for name in late if validate not in upstream[name]
    ]
    declared = next(iter(params.values()))["data"]
    whole = next(v["data"] for k, v in declared.items() if k.endswith("params.yaml"))
    assert set(whole) >= {"corpus", "train", "evaluate", "report"}  # the whole file


def test_a_typo_stops_repro_before_any_output_is_touched(tmp_path):
    repo = tmp_path / "finstage"
    copy_checkout(ROOT, repo)
    sh("git", "init", "-q", cwd=repo)
    params = repo / "params.yaml"
    text = params.read_text()
    p3_s2 = text.index("\n  p3_s2:", text.index("\ntrain:"))
    key = text.index(" r: ", text.index("    lora:", p3_s2))
    params.write_text(text[:key] + " rank: " + text[key + len(" r: ") :])
    kept = repo / "data" / "corpus" / "earlier-output.txt"  # stands for a previous run's outputs
    kept.parent.mkdir(parents=True)
    kept.write_text("kept")

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env['PATH']}"
    done = subprocess.run(
        ["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert re.findall(r"Running stage '([^']+)'", output) == ["validate"], output
    assert kept.read_text() == "kept"
    errors = [line for line in output.splitlines() if line.startswith("invalid:")]
    assert len(errors) == 1 and "train.p3_s2.lora.rank" in errors[0], output
    assert "Traceback" not in output, output
