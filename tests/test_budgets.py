"""Generation budgets are checked against the answers training teaches, before evaluation."""

from __future__ import annotations

import json
import re
import shutil

from typer.testing import CliRunner

from finstage.answers import extract_strict
from finstage.benchmarks.edinet_answers import answer_probability
from finstage.cli import app
from finstage.evaluate.budgets import (
    SHORTEST,
    BudgetConfig,
    answer_lengths,
    budget_report,
    percentile,
    problems,
    stale_budget_warnings,
)
from finstage.records import make_record

from .conftest import ROOT


def words(text: str) -> int:
    """A tokenizer stand-in: one token per space-separated word."""
    return len(text.split())


def record(rid: str, source: str, *answers: str) -> dict:
    turns = [
        m
        for a in answers
        for m in ({"role": "user", "content": "q"}, {"role": "assistant", "content": a})
    ]
    return make_record(rid, source, turns)


def test_the_shortest_answers_parse_with_their_scorers():
    assert extract_strict(SHORTEST["gsm8k_max_gen_toks"]) == "0"
    assert answer_probability(SHORTEST["edinet_max_gen_toks"]) == 0.5


def test_nearest_rank_percentile_is_a_length_some_answer_has():
    values = list(range(1, 101))
    assert percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([7, 3, 5], 50) == 5 and percentile([4], 95) == 4


def test_every_assistant_turn_counted_once_per_record():
    math = record("m1", "math_cot", "a b c d")
    vqa = record("v1", "vqa", "x", "y z")  # two turns: both are answers the model must write
    lengths = answer_lengths(words, [math, vqa, math])  # mixtures share records
    assert lengths == {"math_cot": [4], "vqa": [1, 2]}


def test_a_budget_below_the_trained_answers_is_named_with_its_fix():
    lengths = {"math_cot": list(range(1, 101)), "ocr": [10] * 20, "vqa": [30]}
    cfg = BudgetConfig(
        gsm8k_max_gen_toks=90,
        edinet_max_gen_toks=200,
        visual_max_new_tokens=30,
        budget_percentile=95,
    )
    report = budget_report(cfg, lengths, words)
    gsm8k = report["budgets"]["gsm8k_max_gen_toks"]
    assert (gsm8k["needed"], gsm8k["p95"], gsm8k["n_answers"], gsm8k["ok"]) == (95, 95, 100, False)
    assert report["budgets"]["visual_max_new_tokens"]["ok"]  # p95 of 21 answers is 30
    assert report["budgets"]["edinet_max_gen_toks"]["sources"] == []  # nothing trains EDINET
    (line,) = problems(report)
    assert line.startswith("evaluate.gsm8k_max_gen_toks is 90 tokens but must be >= 95")
    assert "math_cot" in line and "raise it to at least 95" in line


def test_a_budget_below_the_shortest_parseable_answer_fails_without_training_data():
    cfg = BudgetConfig(
        gsm8k_max_gen_toks=100,
        edinet_max_gen_toks=3,
        visual_max_new_tokens=10,
        budget_percentile=95,
    )
    report = budget_report(cfg, {}, words)
    (line,) = problems(report)
    needed = words(SHORTEST["edinet_max_gen_toks"])
    assert f"evaluate.edinet_max_gen_toks is 3 tokens but must be >= {needed}" in line
    assert "the shortest answer its scorer parses" in line


def test_validate_warns_from_the_last_report_when_a_budget_is_lowered(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    lengths = {"math_cot": [100] * 10}
    cfg = BudgetConfig(
        gsm8k_max_gen_toks=128,
        edinet_max_gen_toks=200,
        visual_max_new_tokens=96,
        budget_percentile=95,
    )
    (tmp_path / "metrics").mkdir()
    report = tmp_path / "metrics" / "budgets.json"
    report.write_text(json.dumps(budget_report(cfg, lengths, words)))
    evaluate = {"gsm8k_max_gen_toks": 64, "edinet_max_gen_toks": 200, "visual_max_new_tokens": 96}
    (warning,) = stale_budget_warnings(evaluate, report)
    assert "gsm8k_max_gen_toks is 64 tokens but must be >= 100" in warning

    monkeypatch.chdir(tmp_path)
    text = (tmp_path / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(
        re.sub(r"(?m)^  gsm8k_max_gen_toks: \d+", "  gsm8k_max_gen_toks: 64", text, count=1)
    )
    result = CliRunner().invoke(app, ["validate", "params.yaml"])
    assert result.exit_code == 0  # a warning: the lengths may be from an older run
    assert "warning: evaluate.gsm8k_max_gen_toks is 64 tokens" in result.output
    report.unlink()
    assert "warning" not in CliRunner().invoke(app, ["validate", "params.yaml"]).output
