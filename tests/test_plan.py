"""Each stage of params.yaml trains exactly the modules the recipe says, at the LRs it says."""

from __future__ import annotations

import bitsandbytes as bnb
import pytest
import torch

from finstage.config import ParamsError, parse
from finstage.model.assemble import module_group
from finstage.model.plan import StageConfig, apply_plan, load_for_stage, param_groups

from .conftest import repo_params

STAGES = ["p1_s1", "p1_s2", "p2_s1", "p3_s1", "p3_s2"]


def stage_cfg(name: str) -> StageConfig:
    return parse(StageConfig, repo_params()["train"][name], f"train.{name}")


def planned(tiny_p0, name: str):
    cfg = stage_cfg(name)
    model = apply_plan(load_for_stage(tiny_p0, cfg), cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    return cfg, model, trainable


def kinds(names: set[str]) -> set[tuple[str, str]]:
    """(module group, 'lora' | 'full') for each trainable tensor."""
    return {(module_group(n), "lora" if "lora_" in n else "full") for n in names}


EXPECTED = {
    "p1_s1": {("projector", "full")},
    "p1_s2": {("llm", "lora"), ("vision", "lora"), ("projector", "full")},
    "p2_s1": {("llm", "lora")},
    "p3_s1": {("llm", "lora")},
    "p3_s2": {("llm", "lora"), ("projector", "full")},
}


@pytest.mark.parametrize("name", STAGES)
def test_trainable_groups_match_the_recipe(tiny_p0, name):
    _, _, trainable = planned(tiny_p0, name)
    assert kinds(trainable) == EXPECTED[name]


def test_p1_s1_trains_only_projector_tensors(tiny_p0):
    _, _, trainable = planned(tiny_p0, "p1_s1")
    assert trainable and all("multi_modal_projector" in n for n in trainable)


def test_p2_s1_quantises_llm_only_and_trains_only_lora(tiny_p0):
    _, model, trainable = planned(tiny_p0, "p2_s1")
    assert all("lora_" in n and "language_model" in n for n in trainable)
    four_bit = {n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert four_bit, "the LLM's linear layers should be 4-bit"
    assert all("language_model" in n for n in four_bit)
    for name, module in model.named_modules():
        if "vision_tower" in name or "multi_modal_projector" in name:
            assert not isinstance(module, bnb.nn.Linear4bit), f"{name} must never be quantised"


@pytest.mark.parametrize("name", ["p2_s1", "p3_s1", "p3_s2"])
def test_lora_never_touches_vision_unless_planned(tiny_p0, name):
    _, model, _ = planned(tiny_p0, name)
    assert not any("lora_" in n and "vision_tower" in n for n, _ in model.named_parameters())


def test_optimizer_groups_carry_each_modules_lr(tiny_p0):
    cfg, model, _ = planned(tiny_p0, "p1_s2")
    lrs = {g["name"].removesuffix("_no_decay"): g["lr"] for g in param_groups(model, cfg)}
    assert lrs == {"llm": cfg.lr.llm, "vision": cfg.lr.vision, "projector": cfg.lr.projector}
    assert len({cfg.lr.llm, cfg.lr.vision}) == 2


def test_frozen_llm_has_no_grad_after_backward(tiny_p0):
    _, model, _ = planned(tiny_p0, "p1_s1")
    ids = torch.tensor(
        [[1] + [model.config.image_token_id] * model.config.image_seq_length + [10, 11]]
    )
    model(input_ids=ids, pixel_values=torch.randn(1, 3, 32, 32), labels=ids).loss.backward()
    grads = {module_group(n) for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {"projector"}


_LORA = repo_params()["train"]["p3_s1"]["lora"]


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"lora": None}, "train.x.lora"),
        ({"lr": {"llm": 0.0, "vision": 0.0, "projector": 0.0}}, "train.x.lr.llm"),
        (
            {"quant": {}, "modules": {"llm": "frozen", "vision": "lora", "projector": "frozen"}},
            "train.x.quant",
        ),
        ({"lora": {**_LORA, "r": 0}}, "train.x.lora.r"),
        ({"bogus": 1}, "train.x.bogus"),
        ({"epochs": "three"}, "train.x.epochs"),
    ],
)
def test_invalid_plans_are_rejected_naming_the_key(patch, key):
    base = dict(repo_params()["train"]["p3_s1"])
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse(StageConfig, {**base, **patch}, "train.x")
