"""The training chain is read from params: order, starting points, mixtures and phase labels."""

from __future__ import annotations

import copy

import pytest

from finstage.config import ParamsError
from finstage.recipe import checkpoints, training_stages

from .conftest import repo_params


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
