"""bench/eval.py compares like with like: both LMs see the same tokens and pick the same choices.

A speed comparison is only meaningful if the two adapters score identical requests, so this
checks the comparison itself, never the timings.
"""

from __future__ import annotations

import pytest

from .conftest import bench_script


@pytest.fixture(scope="module")
def bench():
    with bench_script("eval.py") as module:
        yield module


def test_both_lms_make_the_same_choices(bench, tiny_p0, tmp_path):
    runs = bench.compare(tiny_p0, tmp_path, items=4, batch_size=3, repeats=1, max_gen_toks=4)
    by = {(r.task, r.lm): r for r in runs}
    ours, stock = by[(bench.MC_TASK, bench.OURS)], by[(bench.MC_TASK, bench.STOCK)]
    assert ours.items == stock.items == 4
    for lls, stock_lls in zip(ours.outputs, stock.outputs, strict=True):
        assert lls == pytest.approx(stock_lls, abs=1e-4)  # same tokens scored, both choices
    assert bench.answers(ours) == bench.answers(stock)
    assert ours.metrics["acc"] == stock.metrics["acc"]
    assert bench.agreement(runs, bench.MC_TASK) == 1.0
    assert set(bench.ratios(runs)) == {bench.MC_TASK, bench.GEN_TASK}


def test_agreement_counts_differing_items(bench):
    def run(lm: str, outputs: list[list[float]]):
        return bench.Run(bench.MC_TASK, lm, "", len(outputs), [1.0], [1.0], outputs, {})

    ours = [[-1.0, -2.0], [-3.0, -1.0], [-3.0, -1.0], [-1.0, -2.0]]
    stock = [[-1.0, -2.0], [-3.0, -1.0], [-1.0, -3.0], [-1.5, -2.0]]
    runs = [run(bench.OURS, ours), run(bench.STOCK, stock)]
    assert bench.answers(runs[0]) == [0, 1, 1, 0]
    assert bench.agreement(runs, bench.MC_TASK) == 0.75
