"""The training chain is read from params: order, starting points, mixtures and phase labels."""

from __future__ import annotations

import copy

import networkx as nx
import pytest
from dvc.repo import Repo

from finstage.config import ParamsError
from finstage.recipe import checkpoints, training_stages

from .conftest import ROOT, repo_params


def with_p4(params: dict) -> dict:
    """A LoRA stage after p3_s2 on p3_s2's mixture, added by params alone."""
    params = copy.deepcopy(params)
    params["train"]["p4_s1"] = {**params["train"]["p3_s2"], "init": "p3_s2", "data": "p3_s2"}
    params["report"]["phases"]["p4_s1"] = "P4"
    return params


def test_the_recipe_chain_comes_from_params():
    chain = checkpoints(repo_params())
    assert [(c.name, c.label, c.init) for c in chain] == [
        ("p0", "P0", None),
        ("p1_s1", "P1-S1", "p0"),
        ("p1_s2", "P1", "p1_s1"),
        ("p2_s1", "P2", "p1_s2"),
        ("p3_s1", "P3-1", "p2_s1"),
        ("p3_s2", "P3", "p3_s1"),
    ]
    assert training_stages(with_p4(repo_params()))[-1] == "p4_s1"


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda p: p["report"]["phases"].pop("p4_s1"), "report.phases.p4_s1"),
        (lambda p: p["train"].pop("p4_s1"), "report.phases.p4_s1"),
        (lambda p: p["train"]["p4_s1"].update(init="p5"), "train.p4_s1.init"),
        (lambda p: p["train"]["p3_s2"].update(init="p4_s1"), "train.p3_s2.init"),
        (lambda p: p["train"]["p4_s1"].update(data="p4_s1"), "train.p4_s1.data"),
        (lambda p: p["report"]["phases"].update(p4_s1="P3"), "labels must be unique"),
        (lambda p: p["report"].update(phases={}), "report.phases"),
    ],
)
def test_a_broken_chain_is_rejected_naming_the_key(edit, key):
    params = with_p4(repo_params())
    edit(params)
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        checkpoints(params)


def test_the_contamination_check_runs_before_every_training_stage():
    """An overlap found by `decontam` must stop the run before any GPU hour is spent."""
    with Repo(str(ROOT)) as repo:
        graph = repo.index.graph
        stages = {s.addressing: s for s in repo.index.stages}
        decontam = stages["decontam"]
        trains = [s for name, s in stages.items() if name.startswith("train@")]
        assert len(trains) == len(repo_params()["train"])
        for stage in trains:
            # DVC's graph points from a stage to the stages it depends on
            assert decontam in nx.descendants(graph, stage), stage.addressing
