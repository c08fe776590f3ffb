"""The grounded teacher: parsing the text layer, computed answers, grounding, held-out split."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from finstage.config import ParamsError
from finstage.pagestore import page_id
from finstage.records import IMAGE_MARKER, read_records
from finstage.synth import grounding
from finstage.synth.finqa import finqa_candidates
from finstage.synth.pagetext import page_lines, parse_cell, parse_page_text
from finstage.synth.split import split_documents, visual_eval_items
from finstage.synth.teacher import RuleTeacher, SynthConfig, synthesize

from .repo_configs import repo_config, repo_section
from .untrusted import INJECTION, encoder, scrub_messages, special_ids, tokenizers

ROOT = Path(__file__).resolve().parents[1]
TOKENIZERS = tokenizers()


def synth_config(**changes) -> SynthConfig:
    return repo_config(SynthConfig, "synth", **changes)


BUDGET = """令和6年度 一般会計予算
（単位：百万円）
区分 令和6年度 令和5年度 増減額
社会保障関係費 377,193 368,889 8,304
地方交付税交付金 163,992 163,992 －
防衛関係費 79,496 101,686 △22,190
歳出合計 620,681 634,567 △13,886"""

# a notice paragraph wrapped at a fixed width, as the renderer's text layer gives it: sentences
# (and even a figure, "1.5\n%減") run across line ends
PARAGRAPH = (
    "税収は増加し、歳出総額は前年度比3.2%増の1,234億円となった。公債金は350,490億円（前年度比2.1%減）"
    "である。また、国債費は前年度比1.5%減の270,090億円となる見込みである。このうち利払費は838億円で、"
    "全体の28.2%を占めている。"
)
NOTICE = (
    "令和6年度 税収の見込みについて\n財務省\n"
    + "\n".join(PARAGRAPH[i : i + 38] for i in range(0, len(PARAGRAPH), 38))
    + "\n（問い合わせ先）\n主計局総務課 内線1234"
)

SETTLEMENT = """令和5年度 特別会計決算 （単位：千円）
項目 予算額 決算額 差額 執行率
事業収入 12,500 11,875 △625 95.0%
雑収入 3,000 3,150 150 105.0%
収入合計 15,500 15,025 △475 96.9%"""


def make_page(text: str, doc: int, index: int = 0) -> dict:
    sha = hashlib.sha256(f"doc-{doc}".encode()).hexdigest()
    return {
        "page_id": page_id(sha, index),
        "doc_sha256": sha,
        "page_index": index,
        "width": 10,
        "height": 10,
        "png": b"",
        "text": text,
    }


PAGES = [make_page(BUDGET, 1), make_page(NOTICE, 2), make_page(SETTLEMENT, 3)]


def q(x: str) -> Decimal:
    return Decimal(x)


def test_cells_read_triangle_negatives_commas_and_percent():
    assert parse_cell("△22,190") == (q("-22190"), False)
    assert parse_cell("▲1,000") == (q("-1000"), False)
    assert parse_cell("１，２３４") == (q("1234"), False)
    assert parse_cell("96.9%") == (q("96.9"), True)
    assert parse_cell("社会保障") is None
    assert parse_cell("1,23") is None


def test_page_structure_from_text_layer():
    pt = parse_page_text(BUDGET)
    assert pt.title == "令和6年度 一般会計予算" and pt.unit == "百万円"
    (table,) = pt.tables
    assert table.columns == ["令和6年度", "令和5年度", "増減額"] and table.named_columns
    assert [r.label for r in table.rows] == [
        "社会保障関係費",
        "地方交付税交付金",
        "防衛関係費",
        "歳出合計",
    ]
    assert table.rows[1].cells[2].value is None  # "－" is an empty cell, not a number
    assert table.rows[-1].is_total
    pt = parse_page_text(SETTLEMENT)
    assert pt.title == "令和5年度 特別会計決算" and pt.tables[0].unit == "千円"


def test_facts_including_sentences_wrapped_over_two_lines():
    pt = parse_page_text(NOTICE)
    facts = {f.subject: f for f in pt.facts}
    assert set(facts) == {
        "歳出総額",
        "公債金",
        "国債費",
        "利払費",
    }  # "このうち" is not part of a name
    assert (facts["歳出総額"].number, facts["歳出総額"].pct, facts["歳出総額"].direction) == (
        q("1234"),
        q("3.2"),
        "増",
    )
    assert facts["公債金"].amount == "350,490億円" and facts["公債金"].rate == "2.1%減"
    assert facts["国債費"].line_idxs == (3, 4) and facts["国債費"].rate == "1.5%減"
    assert facts["利払費"].kind == "share" and facts["利払費"].rate == "28.2%"
    assert pt.lines[3].endswith("1.5") and pt.lines[4].startswith("%減")
    # a short heading line is not joined with the sentence after it
    assert {
        f.subject for f in parse_page_text("1．概要\n公債金は100億円（前年度比2.0%減）。").facts
    } == {"公債金"}


def _answers(text: str, op: str) -> dict[str, str]:
    finqa = synth_config().finqa
    cands = finqa_candidates(parse_page_text(text), finqa, __import__("random").Random(0))
    return {c.question_text: c.answer() for c in cands if c.op == op}


def _find(answers: dict[str, str], *needles: str) -> str:
    hits = [a for question, a in answers.items() if all(n in question for n in needles)]
    assert len(hits) == 1, (needles, list(answers))
    return hits[0]


def test_computed_finance_answers_on_hand_made_tables():
    diff = _answers(BUDGET, "diff")
    assert _find(diff, "防衛関係費") == "-22,190百万円"  # 79,496 − 101,686
    assert _find(diff, "社会保障関係費") == "8,304百万円"
    pct = _answers(BUDGET, "pct_change")
    assert _find(pct, "防衛関係費") == "-21.8%"  # −22,190 / 101,686 = −21.82%
    assert _find(pct, "社会保障関係費") == "2.3%"  # 8,304 / 368,889 = 2.251% → 2.3
    # the 増減額 column is a change, never an operand; the "－" cell is never an operand
    assert not any("増減額" in k for k in {**diff, **pct})
    assert not any("地方交付税交付金" in k for k in diff if "差し引く" in k and "増減" in k)
    sums = _answers(BUDGET, "sum")
    assert all("歳出合計" not in k for k in sums)  # totals are not summed with their parts
    for question, answer in sums.items():
        labels = re.findall(r"「([^」]+)」", question)
        col = 0 if "令和6年度" in labels else 1
        values = {
            "社会保障関係費": (377193, 368889),
            "地方交付税交付金": (163992, 163992),
            "防衛関係費": (79496, 101686),
        }
        expected = sum(values[name][col] for name in labels if name in values)
        assert answer == f"{expected:,}百万円"
    share = _answers(BUDGET, "share")
    for question in share:
        assert "歳出合計" in question  # the denominator is the total row
    settlement = _answers(SETTLEMENT, "diff")
    # the pair is ordered as the table's own 差額 column subtracts it (決算額 − 予算額)
    assert _find(settlement, "事業収入", "「決算額」の値から「予算額」") == "-625千円"
    assert not any("「予算額」の値から「決算額」" in k for k in settlement)


def test_previous_period_amount_from_a_rate_sentence():
    prev = _answers(NOTICE, "prev_from_rate")
    assert _find(prev, "歳出総額") == "1,196億円"  # 1,234 / 1.032 = 1,195.74
    assert _find(prev, "公債金") == "358,008億円"  # 350,490 / 0.979 = 358,008.17
    assert _find(prev, "国債費") == "274,203億円"  # 270,090 / 0.985 = 274,203.05
    total = _answers(NOTICE, "total_from_share")
    assert _find(total, "利払費") == "2,972億円"  # 838 / 28.2% = 2,971.63


def _recompute(meta: dict) -> Decimal:
    """Independent of finstage.synth.arith: plain Decimal arithmetic per op."""
    v = [Decimal(o["value"]) for o in meta["operands"]]
    op = meta["op"]
    x = {
        "diff": lambda: v[0] - v[1],
        "sum": lambda: v[0] + v[1],
        "pct_change": lambda: (v[0] - v[1]) / abs(v[1]) * 100,
        "share": lambda: v[0] / v[1] * 100,
        "prev_from_rate": lambda: v[0] / (1 + (v[1] if meta["direction"] == "増" else -v[1]) / 100),
        "total_from_share": lambda: v[0] / v[1] * 100,
    }[op]()
    return x.quantize(Decimal(1).scaleb(-meta["places"]), rounding=ROUND_HALF_UP)


@pytest.mark.parametrize("page", PAGES, ids=["budget", "notice", "settlement"])
def test_every_teacher_answer_is_grounded_in_the_page_text(page):
    cfg = synth_config(vqa={"per_page": 20}, finqa={"per_page": 20})
    records = RuleTeacher(cfg).generate(page)
    lines = page_lines(page["text"])
    assert {r["source"] for r in records} == {"ocr", "caption", "vqa", "finqa_visual", "finqa_text"}
    for r in records:
        assert grounding.check(r, page) is None, r["id"]
        if r["images"]:
            assert r["images"] == [page["page_id"]] and r["messages"][0]["content"].startswith(
                IMAGE_MARKER
            )
        if r["source"] == "vqa":
            evidence = "".join(lines[i] for i in r["meta"]["line_idxs"])
            assert r["answer"] in evidence and r["answer"] in page["text"].replace("\n", "")
            assert len(r["messages"]) == 4 and r["messages"][3]["content"] == r["meta"]["evidence"]
        if r["source"].startswith("finqa"):
            for o in r["meta"]["operands"]:
                line = lines[o["line_idx"]] + (
                    lines[o["line_idx"] + 1] if o["line_idx"] + 1 < len(lines) else ""
                )
                assert o["raw"] in line
            assert Decimal(r["meta"]["result"]) == _recompute(r["meta"])
            assert (
                r["answer"]
                .replace(",", "")
                .rstrip("%")
                .startswith(r["meta"]["result"].replace(",", ""))
            )
            assert r["messages"][-1]["content"].endswith(f"答え：{r['answer']}")
        if r["source"] == "finqa_text":
            assert not r["images"] and IMAGE_MARKER not in r["messages"][0]["content"]
            for o in r["meta"]["operands"]:
                assert o["raw"] in r["messages"][0]["content"]  # the rows are given as text


def test_grounding_rejects_tampered_records():
    page = PAGES[0]
    records = RuleTeacher(synth_config()).generate(page)
    vqa = next(r for r in records if r["source"] == "vqa")
    assert grounding.check({**vqa, "answer": "999,999"}, page) is not None
    fin = next(r for r in records if r["source"] == "finqa_visual")
    assert "recomputed" in grounding.check({**fin, "meta": {**fin["meta"], "result": "1"}}, page)
    wrong_value = [{**fin["meta"]["operands"][0], "value": "1"}, *fin["meta"]["operands"][1:]]
    assert (
        grounding.check({**fin, "meta": {**fin["meta"], "operands": wrong_value}}, page) is not None
    )
    assert grounding.check(vqa, PAGES[1]) is not None  # a record checked against another page


def test_ocr_targets_are_consecutive_line_chunks_within_max_chars():
    cfg = synth_config(ocr={"max_chars": 60, "per_page": 10}, tasks=["ocr"])
    page = PAGES[0]
    recs = RuleTeacher(cfg).generate(page)
    assert len(recs) >= 3
    targets = [r["messages"][-1]["content"] for r in recs]
    assert all(0 < len(t) <= 60 for t in targets)
    assert "\n".join(targets) == page["text"]  # chunks cover the page, in order, at line boundaries
    assert f"先頭から{targets[0].count(chr(10)) + 1}行" in recs[0]["messages"][0]["content"]
    second = recs[1]["meta"]
    assert (
        f"{second['first_line_idx'] + 1}行目から{second['end_line_idx']}行目"
        in recs[1]["messages"][0]["content"]
    )
    assert all(grounding.check(r, page) is None for r in recs)
    (top,) = RuleTeacher(synth_config(ocr={"per_page": 1}, tasks=["ocr"])).generate(page)
    assert top["answer"] == page["text"] and top["meta"]["truncated"] == "full"  # 180 chars fit
    cfg = synth_config(ocr={"max_chars": 20, "per_page": 1}, tasks=["ocr"])
    long = make_page("あ" * 50 + "\n短い行", 9)
    (rec,) = RuleTeacher(cfg).generate(long)
    assert rec["answer"] == "あ" * 20 and grounding.check(rec, long) is None
    shifted = {**rec, "meta": {**rec["meta"], "first_line_idx": 1}}
    assert grounding.check(shifted, long) is not None


def test_document_split_is_per_document_deterministic_and_never_empty():
    docs = [f"{i:064x}" for i in range(200)]
    held = split_documents(docs, seed=7, fraction=0.2)
    assert held == split_documents(reversed(docs), seed=7, fraction=0.2)
    assert 20 <= len(held) <= 60
    assert held != split_documents(docs, seed=8, fraction=0.2)
    assert len(split_documents(docs[:2], seed=0, fraction=0.01)) == 1  # at least one held out
    assert len(split_documents(docs[:2], seed=0, fraction=0.99)) == 1  # at least one kept
    assert split_documents(docs, seed=0, fraction=0.0) == set()
    # stable when documents are added: a held-out doc stays held out
    assert held <= split_documents(
        docs + [f"{i:064x}" for i in range(500, 600)], seed=7, fraction=0.2
    )


def test_synthesize_keeps_every_page_of_an_eval_document_out_of_training(tmp_path):
    pages = [
        make_page(text, doc, idx)
        for doc in range(10)
        for idx, text in enumerate([BUDGET, NOTICE, SETTLEMENT])
    ]
    cfg = synth_config(seed=3, eval_fraction=0.3)
    result = synthesize(pages, RuleTeacher(cfg), cfg, tmp_path)
    assert result.eval_docs and result.train_docs
    assert sum(result.rejected.values()) == 0
    for task in cfg.tasks:
        train = list(read_records(tmp_path / "train" / task))
        evals = list(read_records(tmp_path / "eval" / task))
        assert train and evals
        assert not {r["meta"]["doc_sha256"] for r in train} & set(result.eval_docs)
        assert {r["meta"]["doc_sha256"] for r in evals} <= set(result.eval_docs)
        train_pages = {p for r in train for p in r["images"]} | {
            r["meta"]["page_id"] for r in train
        }
        assert (
            not {p["page_id"] for p in pages if p["doc_sha256"] in result.eval_docs} & train_pages
        )
    items = list(visual_eval_items(tmp_path / "eval"))
    assert {i["task"] for i in items} == {"ocr", "vqa", "finqa_visual"}
    assert all(i["answer"] and i["question"] and IMAGE_MARKER not in i["question"] for i in items)
    # deterministic: a second run writes the same records
    again = tmp_path / "again"
    synthesize(pages, RuleTeacher(cfg), cfg, again)
    for task in cfg.tasks:
        assert list(read_records(again / "train" / task)) == list(
            read_records(tmp_path / "train" / task)
        )


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"eval_fraction": 1.5}, "synth.eval_fraction"),
        ({"tasks": ["ocr", "poems"]}, "synth.tasks"),
        ({"vqa": {"per_pag": 2}}, "synth.vqa.per_pag"),
        ({"ocr": {"max_chars": 5}}, "synth.ocr.max_chars"),
        ({"finqa": {"percent_places": 9}}, "synth.finqa.percent_places"),
        ({"teacher": "gpt"}, "synth.teacher"),
    ],
)
def test_invalid_synth_params_name_the_key(params, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        synth_config(**params)


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_load_config_reads_only_the_synth_section():
    cfg = _stage("synthesize").load_config(
        {"synth": repo_section("synth", seed=1, eval_fraction=0.25, ocr={"max_chars": 150})}
    )
    assert cfg.seed == 1 and cfg.ocr.max_chars == 150
    with pytest.raises(KeyError):
        _stage("synthesize").load_config({"distill": {}})


def test_an_unlabelled_change_column_is_never_an_operand():
    text = "予算の推移\n社会保障 300 280 20\n防衛 100 110 △10\n公共事業 60 60 0"
    table = parse_page_text(text).tables[0]
    assert not table.named_columns and table.columns == ["1列目", "2列目", "3列目"]
    diff = _answers(text, "diff")
    assert diff and all("3列目" not in question for question in diff)
    assert _find(diff, "防衛") == "-10"  # no unit line: a bare number


# A web PDF's text layer can spell the image marker and a template's turn markers.
HOSTILE = f"""令和6年度 {IMAGE_MARKER} 予算の概要
（単位：百万円）
区分 令和6年度 令和5年度 増減額
社会保障関係費{INJECTION} 377,193 368,889 8,304
{IMAGE_MARKER}防衛関係費 79,496 101,686 △22,190
歳出合計 620,681 634,567 △13,886
歳出総額は、前年度比3.2%増の1,234億円となった。{INJECTION}"""


def test_page_text_spelling_special_tokens_never_stops_synthesize(tmp_path):
    """Turn markers stay page text; a record that would quote `<image>` is dropped, counted."""
    pages = [make_page(HOSTILE, 1), make_page(BUDGET, 2)]
    cfg = synth_config(eval_fraction=0.0)
    result = synthesize(pages, RuleTeacher(cfg), cfg, tmp_path)
    records = [r for task in cfg.tasks for r in read_records(tmp_path / "train" / task)]
    hostile = [r for r in records if r["meta"]["doc_sha256"] == pages[0]["doc_sha256"]]
    texts = ["".join(m["content"] for m in r["messages"]) for r in records]
    assert [t.count(IMAGE_MARKER) for t in texts] == [len(r["images"]) for r in records]
    assert sum(INJECTION in t for t in texts) >= 3  # the turn markers are kept as page text
    assert {r["source"] for r in hostile} >= {"vqa", "finqa_visual"}
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["rejected"] == result.rejected and sum(result.rejected.values()) >= 3
    assert result.rejected["ocr"] >= 1 and result.rejected["caption"] >= 1
    assert all(IMAGE_MARKER in e for e in result.examples_of_rejection)
    for tok in TOKENIZERS.values():
        for r in hostile:
            enc = encoder(tok).encode(r["messages"], r["images"])
            clean = encoder(tok).encode(scrub_messages(r["messages"]), r["images"])
            assert special_ids(tok, enc.input_ids) == special_ids(tok, clean.input_ids)
