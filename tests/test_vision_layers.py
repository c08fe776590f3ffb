"""Nothing trainable sits on a vision layer whose output the model discards.

LLaVA feeds the projector `hidden_states[vision_feature_layer]` (-2 in params.yaml), so the
vision tower's last encoder layer, post_layernorm and head never reach the loss. A trainable
tensor there gets no gradient: wasted parameters in one process, and DDP stops at its second
step when several run (see tests/test_multiprocess.py for the end-to-end case).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from finstage.config import parse
from finstage.model.plan import StageConfig, apply_plan, load_for_stage, vision_layers_used

from .conftest import repo_params

LAYER = re.compile(r"vision_tower\..*encoder\.layers\.(\d+)\.")


def config(n: int, selected: int | list[int]) -> SimpleNamespace:
    """The two fields `vision_layers_used` reads from a LlavaConfig."""
    return SimpleNamespace(
        vision_config=SimpleNamespace(num_hidden_layers=n), vision_feature_layer=selected
    )


@pytest.mark.parametrize(
    "selected, used",
    [
        (-2, [0, 1, 2]),  # hidden_states[-2] is layer 2's output of 0..3: layer 3 is discarded
        (-1, [0, 1, 2, 3]),
        (-5, []),  # the embeddings output
        (0, []),
        (2, [0, 1]),  # hidden_states[2] is layer 1's output
        (4, [0, 1, 2, 3]),
        ([1, -3], [0, 1]),  # a list uses every layer up to its deepest entry
        ([-2, -1], [0, 1, 2, 3]),
    ],
)
def test_used_layers_follow_vision_feature_layer(selected, used: list[int]) -> None:
    assert vision_layers_used(config(4, selected)) == used


@pytest.mark.parametrize("selected", [5, -6, [0, 7]])
def test_vision_feature_layer_outside_the_tower_is_refused(selected) -> None:
    with pytest.raises(ValueError, match="vision_feature_layer"):
        vision_layers_used(config(4, selected))


def stage_plan(name: str, **overrides) -> StageConfig:
    return parse(StageConfig, {**repo_params()["train"][name], **overrides}, f"train.{name}")


def planned(tiny_p0, cfg: StageConfig, feature_layer: int | None = None) -> torch.nn.Module:
    model = load_for_stage(tiny_p0, cfg)
    if feature_layer is not None:
        model.config.vision_feature_layer = feature_layer
    return apply_plan(model, cfg)


def lora_layers(model: torch.nn.Module) -> set[int]:
    """Vision encoder layers holding a trainable LoRA tensor."""
    return {
        int(m.group(1))
        for n, p in model.named_parameters()
        if p.requires_grad and "lora_" in n and (m := LAYER.search(n))
    }


def test_p1_s2_puts_no_lora_on_the_discarded_last_layer(tiny_p0) -> None:
    model = planned(tiny_p0, stage_plan("p1_s2"))
    assert model.config.vision_feature_layer == -2  # the tiny tower has layers 0 and 1
    assert lora_layers(model) == {0}
    wrapped = {  # every vision target of the used layer still gets LoRA
        n.split(".lora_A")[0].rsplit(".", 1)[-1]
        for n, _ in model.named_parameters()
        if "vision_tower" in n and ".layers.0." in n and ".lora_A" in n
    }
    assert wrapped == set(repo_params()["train"]["p1_s2"]["lora"]["vision_targets"])


def test_last_feature_layer_gives_the_last_layer_lora(tiny_p0) -> None:
    assert lora_layers(planned(tiny_p0, stage_plan("p1_s2"), feature_layer=-1)) == {0, 1}


P1_S2 = repo_params()["train"]["p1_s2"]
FULL_VISION = {
    "with LLM LoRA": {"modules": {**P1_S2["modules"], "vision": "full"}},
    "without LoRA": {
        "modules": {"llm": "frozen", "vision": "full", "projector": "full"},
        "lr": {**P1_S2["lr"], "llm": 0.0},
        "lora": None,
    },
}


@pytest.mark.parametrize("case", sorted(FULL_VISION))
def test_full_vision_freezes_what_the_model_discards(tiny_p0, case: str) -> None:
    model = planned(tiny_p0, stage_plan("p1_s2", **FULL_VISION[case]))
    vision = {n for n, p in model.named_parameters() if p.requires_grad and "vision_tower" in n}
    assert any(".layers.0." in n for n in vision) and any("embeddings" in n for n in vision)
    assert not any(".layers.1." in n or "post_layernorm" in n for n in vision)


@pytest.mark.parametrize(
    "overrides, feature_layer",
    [({}, None), ({}, -1), *[(FULL_VISION[c], None) for c in sorted(FULL_VISION)]],
    ids=["p1_s2", "p1_s2 at layer -1", *[f"full vision {c}" for c in sorted(FULL_VISION)]],
)
def test_every_trainable_tensor_gets_a_gradient(tiny_p0, overrides: dict, feature_layer) -> None:
    """What DDP checks each step: a trainable tensor without a gradient stops it."""
    model = planned(tiny_p0, stage_plan("p1_s2", **overrides), feature_layer)
    config = model.config
    ids = torch.tensor([[1] + [config.image_token_id] * config.image_seq_length + [10, 11]])
    model(input_ids=ids, pixel_values=torch.randn(1, 3, 32, 32), labels=ids).loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(n for n, p in model.named_parameters() if p.requires_grad and p.grad is None)
    assert trainable and not missing
