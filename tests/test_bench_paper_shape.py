"""bench/paper_shape.py: the GPU bench's code runs here at toy shapes, and its paper shapes are
the recipe's. Timings are never asserted; what is checked is what the figures rest on."""

from __future__ import annotations

import pytest
import torch

from .conftest import bench_script


@pytest.fixture(scope="module")
def bench():
    with bench_script("paper_shape.py") as module:
        yield module


def test_paper_shapes_are_the_recipes_model(bench):
    model = bench.build(*bench.shapes("paper"), torch.device("meta"), torch.bfloat16)
    groups = {"vision_tower": 0, "multi_modal_projector": 0, "language_model": 0, "lm_head": 0}
    for name, param in model.named_parameters():
        groups[next(g for g in groups if g in name)] += param.numel()
    assert model.config.image_seq_length == 729
    assert 0.39e9 < groups["vision_tower"] < 0.45e9  # so400m
    assert groups["multi_modal_projector"] == 1152 * 4096 + 4096 + 4096 * 4096 + 4096
    assert 8.4e9 < groups["language_model"] + groups["lm_head"] < 8.8e9  # llm-jp-4-8b: 8.6B
    assert groups["lm_head"] == 4096 * 196_608  # untied


@pytest.mark.parametrize("stage", ["p1_s2", "p2_s1"])
def test_stage_steps_run_through_the_pipelines_plan_and_loop(bench, stage, tmp_path):
    row = bench.run_stage(stage, "embedded", torch.device("cpu"), 2, 1, 16, tmp_path)
    assert row.stage == stage and row.steps == 2
    assert row.tokens_per_s > 0 and row.seconds_per_step > 0
    # The paper plans checkpoint activations, so the counted step includes a recomputed forward.
    assert row.hardware_tflop_per_step > row.model_tflop_per_step > 0
    if stage == "p2_s1":  # QLoRA: every LLM linear is 4-bit, adapters only train
        assert row.four_bit_linears == 2 * 7
    else:
        assert row.four_bit_linears == 0
    assert row.trainable > 0
