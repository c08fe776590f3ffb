"""Every score in a metrics file is recomputed from its predictions file by `rescore`, exactly.

One tiny checkpoint is evaluated on the raw fixtures of every benchmark in a window small enough
that long prompts are cut, so the rows carry truncation facts as a real embedded run's do.
"""

from __future__ import annotations

import json
import math

import pytest

from finstage.benchmarks.chabsa import NEUTRAL_GOLD
from finstage.benchmarks.edinet import p_positive
from finstage.benchmarks.registry import BENCHMARKS, PROTOCOL, VISUAL_CHECKS, task_scorers
from finstage.config import ParamsError
from finstage.evaluate.rescore import load_predictions, rescore, rescore_scored, window_counts
from finstage.evaluate.run import (
    EvalConfig,
    check_rescorable,
    evaluate_checkpoint,
    load_text_tasks,
    write_metrics,
)
from finstage.pagestore import page_id
from finstage.records import make_record, write_records

from .conftest import doc_sha
from .repo_configs import raw_sources, repo_config
from .test_sources import write_cpa

WINDOW = 160  # below the CPA fixture's prompts, above the short ones


def eval_config(tmp_path, **changes) -> EvalConfig:
    write_cpa(tmp_path / "CPA_AUDIT.xlsx")
    sources = raw_sources(tmp_path / "CPA_AUDIT.xlsx")
    settings = {"batch_size": 4, "max_length": WINDOW, "edinet_sheet_chars": 40, "bootstrap": 200}
    settings |= {"gsm8k_max_gen_toks": 6, "edinet_max_gen_toks": 6, "visual_max_new_tokens": 6}
    settings |= {"device": "cpu", "chat_template": True}
    return repo_config(EvalConfig, "evaluate", **(settings | changes), sources=sources)


def write_visual(folder) -> None:
    pid = page_id(doc_sha(0), 0)
    visual = {
        "ocr": ("<image>書き起こしてください。", "歳出合計"),
        "vqa": ("<image>歳出合計は?", "100"),
        "finqa_visual": ("<image>合計は?", "計算：1 + 2 = 3\n答え：3百万円"),
    }
    for name, (question, answer) in visual.items():
        chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        write_records(folder / name, [make_record(name, name, chat, [pid], answer=answer)])


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_p0, tiny_pages):
    tmp_path = tmp_path_factory.mktemp("rescore")
    cfg = eval_config(tmp_path)
    write_visual(tmp_path)
    metrics, predictions = evaluate_checkpoint(
        tiny_p0, load_text_tasks(cfg), tmp_path, tiny_pages, cfg
    )
    write_metrics(metrics, predictions, tmp_path / "m.json", tmp_path / "p.jsonl")
    written = json.loads((tmp_path / "m.json").read_text())
    return cfg, written, load_predictions(tmp_path / "p.jsonl")


def test_rescoring_the_predictions_file_reproduces_every_block_exactly(run):
    cfg, metrics, rows = run
    blocks = {name: block for name, block in metrics.items() if name != PROTOCOL}
    assert rescore(rows, cfg.bootstrap, cfg.seed) == blocks  # scores, intervals and counts
    points = rescore(rows)  # no bootstrap: point estimates
    expected = {b.name: b.scores for b in BENCHMARKS} | {c.name: c.scores for c in VISUAL_CHECKS}
    for name, scores in expected.items():
        for score in scores:  # primary and secondary
            assert points[name][score] == metrics[name][score], (name, score)
    assert points["finharness"]["avg"] == metrics["finharness"]["avg"]


def test_every_row_carries_what_its_scorer_takes(run):
    _, _, rows = run
    scorers = task_scorers()
    for row in rows:
        assert set(row) == {"task", "block", "id", "gold", "prediction", "truncated", "unscorable"}
        if row["task"] in scorers:
            assert row["block"] == scorers[row["task"]][0]
    by_task: dict[str, list[str]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row["id"])
    assert set(by_task) == set(scorers) | {c.name for c in VISUAL_CHECKS}
    assert all(len(set(ids)) == len(ids) for ids in by_task.values())  # items told apart
    mc = [r for r in rows if r["task"] == "cma_basics"]
    assert all(isinstance(r["prediction"], list) and len(r["prediction"]) == 4 for r in mc)


def test_chabsa_logs_neutral_gold_as_scored(run):
    _, _, rows = run
    chabsa = [r for r in rows if r["task"] == "chabsa"]
    assert [r["gold"] for r in chabsa] == [NEUTRAL_GOLD, 0, 1]  # neutral, positive, negative


def test_truncation_and_protocol_are_in_the_metrics(run):
    cfg, metrics, rows = run
    assert metrics[PROTOCOL] == {"chat_template": 1.0, "max_length": WINDOW}
    assert metrics["cpa_audit"]["n_truncated"] == 2  # both CPA prompts are longer than WINDOW
    assert metrics["ocr"]["n_truncated"] == 0  # visual prompts are never cut
    counts = window_counts(rows)
    for name, block in metrics.items():
        if name in counts:
            assert block["n_truncated"] == counts[name]["n_truncated"]
            assert block["n_unscorable"] == counts[name]["n_unscorable"]
    harness = ("chabsa", "cma_basics", "cpa_audit", "fp2", "security_sales_1")
    total = sum(metrics[b]["n_truncated"] for b in harness)
    assert metrics["finharness"]["n_truncated"] == total


def test_tampered_predictions_no_longer_rescore_to_the_metrics(run):
    cfg, metrics, rows = run
    edited = [dict(r) for r in rows]
    gsm = next(r for r in edited if r["task"] == "gsm8k_ja")
    gsm["prediction"] = f"<Answer>\\boxed{{{gsm['gold']}}}</Answer>"
    assert rescore(edited)["gsm8k"]["em_strict"] != metrics["gsm8k"]["em_strict"]
    with pytest.raises(RuntimeError, match="gsm8k.em_strict"):
        check_rescorable(rescore_scored(rows), edited)


def test_raw_prompt_protocol_is_recorded(tmp_path, tiny_p0, tiny_pages):
    cfg = eval_config(tmp_path, chat_template=False, limit=1)
    write_visual(tmp_path)
    metrics, rows = evaluate_checkpoint(tiny_p0, load_text_tasks(cfg), tmp_path, tiny_pages, cfg)
    assert metrics[PROTOCOL]["chat_template"] == 0.0
    assert rescore(rows, cfg.bootstrap, cfg.seed) == {
        k: v for k, v in metrics.items() if k != PROTOCOL
    }


def test_p_positive_never_overflows():
    assert p_positive([-2.0, -1.0]) == pytest.approx(1 / (1 + math.exp(-1)))
    assert p_positive([-1000.0, -10.0]) == pytest.approx(1.0)
    assert p_positive([-10.0, -1000.0]) == pytest.approx(0.0)
    assert p_positive([-math.inf, -math.inf]) == 0.5  # unscorable: uninformative


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"device": "gpu"}, "evaluate.device"),
        ({"device": "cuda:x"}, "evaluate.device"),
        ({"edinet_max_gen_toks": WINDOW}, "evaluate.edinet_max_gen_toks"),
        ({"chat_template": "yes"}, "evaluate.chat_template"),
    ],
)
def test_eval_config_rejects_bad_values_naming_the_key(tmp_path, changes, key):
    with pytest.raises(ParamsError, match=key):
        eval_config(tmp_path, **changes)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_eval_config_accepts_each_device_spelling(tmp_path, device):
    assert eval_config(tmp_path, device=device).device == device
