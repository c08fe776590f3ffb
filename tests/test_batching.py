"""Length-grouped batches: every example once per epoch, deterministic, little padding."""

from __future__ import annotations

import random

from finstage.config import parse
from finstage.model.plan import StageConfig
from finstage.train.loop import micro_batches, padding_waste

from .conftest import repo_params

WASTE_BOUND = 0.10  # stated bound on padded positions for length-grouped batches


def plan(batch_size: int) -> StageConfig:
    raw = {**repo_params()["train"]["p3_s1"], "batch_size": batch_size}
    return parse(StageConfig, raw, "train.p3_s1")


def lengths(n: int = 400) -> list[int]:
    rng = random.Random(0)
    return [rng.randint(20, 300) for _ in range(n)]


def test_each_example_once_per_epoch_and_reproducible():
    lens, cfg = lengths(), plan(4)
    batches = micro_batches(lens, cfg, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lens)))
    assert batches == micro_batches(lens, cfg, epoch=0)
    assert batches != micro_batches(lens, cfg, epoch=1)


def test_grouping_bounds_padding_waste_far_below_random_batches():
    lens, cfg = lengths(), plan(4)
    grouped = padding_waste(lens, micro_batches(lens, cfg, epoch=0))
    order = list(range(len(lens)))
    random.Random(1).shuffle(order)
    plain = padding_waste(lens, [order[i : i + 4] for i in range(0, len(order), 4)])
    assert grouped < WASTE_BOUND < plain


def test_batch_order_is_not_sorted_by_length():
    lens, cfg = lengths(), plan(4)
    firsts = [lens[b[0]] for b in micro_batches(lens, cfg, epoch=0)]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)
