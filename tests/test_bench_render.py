"""bench/render.py on a tiny corpus: the same pages on both sides, one table row per run, and the
ratio is the bare loop's seconds over the stage's in each repeat (never speed: CI has no spare
cores)."""

from __future__ import annotations

import statistics

import pytest

from .conftest import bench_script


@pytest.fixture(scope="module")
def bench():
    with bench_script("render.py") as module:
        yield module


def test_table_compares_the_stage_with_the_bare_loop(bench, tmp_path):
    store = bench.make_store(tmp_path, documents=3, max_pages=2)
    runs = bench.compare(store, dpi=36, workers=[1, 2], repeats=2, out=tmp_path / "pages")
    assert [(r.name, r.workers) for r in runs] == [("bare", 1), ("stage", 1), ("stage", 2)]
    bare = runs[0]
    assert bare.pages == bench.bare_loop(store, 36) >= 3 and {r.pages for r in runs} == {bare.pages}
    for run in runs[1:]:
        assert len(run.seconds) == 2
        expected = [b / s for b, s in zip(bare.seconds, run.seconds, strict=True)]
        assert run.ratios == pytest.approx(expected) and run.ratio == statistics.median(expected)
        assert run.pages_per_s == pytest.approx(run.pages / statistics.median(run.seconds))
    lines = bench.table(runs)
    assert len(lines) == 2 + 3 and all(line.count("|") == 7 for line in lines)
    assert lines[3].split("|")[6].strip() == f"{runs[1].ratio:.2f}"


def test_breakdown_covers_each_step_of_the_stage(bench, tmp_path):
    store = bench.make_store(tmp_path, documents=2, max_pages=2)
    steps = bench.breakdown(store, dpi=36, out=tmp_path / "shards")
    assert list(steps) == [
        "page limits",
        "get_pixmap",
        "PNG encode",
        "text layer",
        "Parquet shards",
    ]
    assert all(ms > 0 for ms in steps.values())
    assert len(bench.breakdown_table(steps)) == 2 + len(steps)
