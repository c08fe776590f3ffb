"""The benchmark registry is the one list of benchmarks: what evaluation scores, the report
orders and labels, decontamination checks and the stand-in writer writes."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from finstage.benchmarks.registry import (
    BENCHMARKS,
    HARNESS,
    VISUAL_CHECKS,
    BenchConfig,
    Sources,
    report_blocks,
    task_scorers,
)
from finstage.benchmarks.transport import SourceSpec
from finstage.evaluate.visual import SCORERS
from finstage.records import make_record

from .conftest import ROOT, repo_params
from .repo_configs import repo_config
from .test_sources import write_cpa

RAW = ROOT / "tests" / "fixtures" / "raw"
FIXTURES = {
    "gsm8k": "gsm8k",
    "chabsa": "chabsa",
    "cma_basics": "cma_basics",
    "fp2": "fp2",
    "security_sales_1": "security_sales_1",
    "edinet_fraud": "edinet",
    "edinet_earnings": "edinet",
}


def test_report_order_puts_the_harness_average_after_its_tasks():
    assert [b.name for b in report_blocks()] == [
        "gsm8k",
        "chabsa",
        "cma_basics",
        "cpa_audit",
        "fp2",
        "security_sales_1",
        "finharness",
        "edinet_fraud",
        "edinet_earnings",
        "edinet_industry",
        "ocr",
        "vqa",
        "finqa_visual",
    ]
    assert [b.name for b in HARNESS] == [
        "chabsa",
        "cma_basics",
        "cpa_audit",
        "fp2",
        "security_sales_1",
    ]


def test_params_have_a_source_and_stand_in_sizes_for_every_benchmark():
    names = [b.name for b in BENCHMARKS]
    assert [f.name for f in dataclasses.fields(Sources)] == names
    assert list(repo_params()["evaluate"]["sources"]) == names
    sizes = repo_config(BenchConfig, "benchmarks")
    for benchmark in BENCHMARKS:
        section = sizes
        for key in benchmark.stand_in_params.split("."):
            section = getattr(section, key)
        assert dataclasses.is_dataclass(section), benchmark.name


def test_each_benchmark_tasks_score_exactly_its_registered_scores(tmp_path):
    settings = SimpleNamespace(gsm8k_max_gen_toks=8, edinet_max_gen_toks=8, edinet_sheet_chars=40)
    specs = {name: SourceSpec(path=str(RAW / rel)) for name, rel in FIXTURES.items()}
    specs["cpa_audit"] = SourceSpec(path=str(write_cpa(tmp_path / "CPA_AUDIT.xlsx")))
    specs["edinet_industry"] = SourceSpec(path=str(RAW / "edinet"), split="train")
    for benchmark in BENCHMARKS:
        docs = benchmark.load_docs(specs[benchmark.name], settings)
        tasks = benchmark.text_tasks(docs, settings)
        assert {t.block for t in tasks} == {benchmark.name}
        assert tuple(s for t in tasks for s in t.scores) == benchmark.scores
        assert all(benchmark.item_text(d) for d in docs)


def test_every_visual_check_has_a_scorer_for_its_registered_scores():
    assert list(SCORERS) == [c.name for c in VISUAL_CHECKS]
    chat = [
        {"role": "user", "content": "<image>合計は?"},
        {"role": "assistant", "content": "答え：3"},
    ]
    records = [make_record("r", "x", chat, ["p"], answer="3")]
    for check in VISUAL_CHECKS:
        scored = SCORERS[check.name](records, ["答え：3"])
        assert tuple(scored.stats) == check.scores, check.name


def test_each_task_is_scored_by_the_scorer_rescoring_uses(tmp_path):
    """lm-eval's per-item values and the rescored predictions come from one function per task,
    so the registry's task -> scorer map must name exactly the tasks evaluation builds."""
    settings = SimpleNamespace(gsm8k_max_gen_toks=8, edinet_max_gen_toks=8, edinet_sheet_chars=40)
    specs = {name: SourceSpec(path=str(RAW / rel)) for name, rel in FIXTURES.items()}
    specs["cpa_audit"] = SourceSpec(path=str(write_cpa(tmp_path / "CPA_AUDIT.xlsx")))
    specs["edinet_industry"] = SourceSpec(path=str(RAW / "edinet"), split="train")
    scorers = task_scorers()
    built = []
    for benchmark in BENCHMARKS:
        docs = benchmark.load_docs(specs[benchmark.name], settings)
        for task in benchmark.text_tasks(docs, settings):
            built.append(task.name)
            assert scorers[task.name] == (task.block, task.scorer), task.name
            results = (
                [(-1.0, False)] * len(task.config["doc_to_choice"](docs[0]))
                if callable(task.config.get("doc_to_choice"))
                else [(-1.0, False)] * len(task.config.get("doc_to_choice") or [])
            ) or ["<Answer>\\boxed{1}</Answer>"]
            assert task.config["process_results"](docs[0], results) == task.scorer.item(
                task.gold(docs[0]),
                [r[0] for r in results] if isinstance(results[0], tuple) else results[0],
            )
    assert sorted(built) == sorted(scorers)
