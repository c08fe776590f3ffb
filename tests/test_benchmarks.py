"""Evaluation stand-ins: real raw schemas, sizes from params, right gold, disjoint from training."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import datasets
import openpyxl
import pytest

from finstage.answers import numbers_equal
from finstage.benchmarks.cpa_audit import AUDIT_STATEMENTS, SHEET_ROWS, audit_statement
from finstage.benchmarks.edinet import INDUSTRIES
from finstage.benchmarks.exam_items import TABLES
from finstage.benchmarks.registry import BENCHMARKS, BenchConfig, build_benchmarks
from finstage.benchmarks.transport import SourceSpec
from finstage.config import ParamsError, parse
from finstage.distill.teacher import DistillConfig, distill
from finstage.model.tokenizer import train_tokenizer
from finstage.records import make_record, read_records

from .repo_configs import repo_config, repo_section

POSITIVE_WORDS = ("増", "改善", "上回", "最高")
NEGATIVE_WORDS = ("減", "悪化", "赤字")
NEUTRAL_WORDS = ("同水準", "前期並み", "横ばい")
SIZES = {  # changes to params.yaml's benchmarks section
    "seed": 1000,
    "gsm8k": {"n_test": 30, "n_train": 5},
    "chabsa": {"n_items": 30, "neutral_fraction": 0.2},
    "cma_basics": {"n_items": 12},
    "cpa_audit": {"n_items": 10, "n_abnormal": 3},
    "fp2": {"n_items": 14},
    "security_sales_1": {"n_items": 15, "two_way_fraction": 0.6},
    "edinet": {
        "fraud_detection": {"n_items": 10, "positive_fraction": 0.3},
        "earnings_forecast": {"n_items": 12, "positive_fraction": 0.5},
        "industry_prediction": {"n_items": 20},
    },
}
EXPECTED = {
    "gsm8k": 30,
    "chabsa": 30,
    "cma_basics": 12,
    "cpa_audit": 10,
    "fp2": 14,
    "security_sales_1": 15,
    "edinet_fraud": 10,
    "edinet_earnings": 12,
    "edinet_industry": 20,
}
TRUE_STATEMENTS = {t.say(term, term) for t in TABLES for term, _ in t.terms}
BY_NAME = {b.name: b for b in BENCHMARKS}
TASKS = list(BY_NAME)


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def exam(out: Path, task: str) -> list[dict]:
    return json.loads((out / task / "data.json").read_text(encoding="utf-8"))["data"]


def docs(out: Path, manifest: dict, task: str) -> list[dict]:
    source = manifest[task]["source"]
    spec = SourceSpec(path=str(out / source["path"]), split=source.get("split", "test"))
    return BY_NAME[task].load_docs(spec)


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill")
    distill(repo_config(DistillConfig, "distill", n_problems=150, seed=0), out)
    return list(read_records(out / "math_cot"))


@pytest.fixture(scope="module")
def bench(tmp_path_factory, training):
    out = tmp_path_factory.mktemp("bench")
    cfg = repo_config(BenchConfig, "benchmarks", **SIZES)
    return out, build_benchmarks(cfg, out, training), cfg


def test_layout_and_manifest(bench):
    out, manifest, _ = bench
    assert set(manifest) == set(TASKS)
    expected_files = {
        "gsm8k/test.jsonl",
        "gsm8k/train.jsonl",
        "cma_basics/data.json",
        "cpa_audit/CPA_AUDIT.xlsx",
        "fp2/data.json",
        "security_sales_1/data.json",
        "edinet/fraud_detection/test.jsonl",
        "edinet/earnings_forecast/test.jsonl",
        "edinet/industry_prediction/train.jsonl",
        "manifest.json",
    }
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert expected_files <= written
    chabsa = {f for f in written if re.fullmatch(r"chabsa/e\d{5}_ann\.json", f)}
    assert written - expected_files == chabsa and chabsa
    for entry in manifest.values():
        for rel, digest in entry["files"].items():
            assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    assert json.loads((out / "manifest.json").read_text()) == manifest


@pytest.mark.parametrize("task", TASKS)
def test_every_stand_in_loads_at_the_configured_size(bench, task):
    out, manifest, _ = bench
    loaded = docs(out, manifest, task)
    assert len(loaded) == EXPECTED[task] == manifest[task]["items"]
    assert len({d["id"] for d in loaded}) == len(loaded)


def test_gsm8k_raw_schema_and_answers(bench):
    out, _, _ = bench
    test, train = (
        load_jsonl(out / "gsm8k" / "test.jsonl"),
        load_jsonl(out / "gsm8k" / "train.jsonl"),
    )
    assert len(test) == 30 and len(train) == 5
    assert {q["question"] for q in test}.isdisjoint(q["question"] for q in train)
    for item in test + train:
        assert set(item) == {"question", "answer"}
        (final,) = re.findall(r"#### (\-?[0-9\.\,]+)$", item["answer"])  # lm-eval strict-match
        last_result = item["answer"].rsplit("\n#### ", 1)[0].splitlines()[-1].rsplit("=", 1)[1]
        assert numbers_equal(last_result, final)
        assert re.search(r"[ぁ-んァ-ン一-龥]", item["question"])


def test_chabsa_documents_in_the_chabsa_dataset_schema(bench):
    out, manifest, _ = bench
    files = sorted((out / "chabsa").glob("*.json"))
    assert len(files) == manifest["chabsa"]["documents"] >= 2
    opinions = []
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        assert set(doc) == {"header", "sentences"}
        assert f.name == f"{doc['header']['document_id'].lower()}_ann.json"
        assert {"document_id", "document_name", "edi_id", "category17"} <= set(doc["header"])
        for i, s in enumerate(doc["sentences"]):
            assert s["sentence_id"] == i
            for o in s["opinions"]:
                assert set(o) == {"target", "category", "polarity", "from", "to"}
                assert s["sentence"][o["from"] : o["to"]] == o["target"]
                clause = next(
                    c for c in re.split(r"ものの、|が、", s["sentence"]) if o["target"] in c
                )
                words = {"positive": POSITIVE_WORDS, "negative": NEGATIVE_WORDS}
                assert any(w in clause for w in words.get(o["polarity"], NEUTRAL_WORDS)), o
                opinions.append((s["sentence"], o["polarity"]))
    counts = {p: sum(q == p for _, q in opinions) for p in ("positive", "negative", "neutral")}
    assert counts == {p: manifest["chabsa"][p] for p in counts} and counts["neutral"] >= 1
    assert abs(counts["positive"] - counts["negative"]) <= 2
    assert any(sum(s == t for t, _ in opinions) == 2 for s, _ in opinions)  # two-target sentences
    loaded = docs(out, manifest, "chabsa")
    assert sorted(d["polarity"] for d in loaded) == sorted(p for _, p in opinions)


def test_cma_basics_gold_is_the_computed_or_defined_answer(bench):
    out, manifest, _ = bench
    rows = exam(out, "cma_basics")
    for row in rows:
        assert [c["id"] for c in row["choices"]] == [0, 1, 2, 3]
        texts = [c["text"] for c in row["choices"]]
        assert len(set(texts)) == 4
        gold = texts[row["answer"]]
        if row["context"]:  # numeric: ascending options; the comment names the formula
            values = [float(re.sub(r"[^0-9.\-]", "", t)) for t in texts]
            assert values == sorted(values) and "=" in row["comment"]
        else:  # a term question: the gold term is the one the question defines
            assert row["comment"].endswith(f"は{gold}。")
    assert any(r["context"] for r in rows) and any(not r["context"] for r in rows)
    assert {d["gold"] for d in docs(out, manifest, "cma_basics")} <= {0, 1, 2, 3}


def test_fp2_exactly_the_answer_is_the_odd_statement(bench):
    out, manifest, _ = bench
    for row in exam(out, "fp2"):
        assert [c["text"] for c in row["choices"]] == ["１", "２", "３", "４"]
        lines = row["context"].split("\n")[-4:]  # after a 〈資料〉 block, if there is one
        assert [line[:2] for line in lines] == ["１．", "２．", "３．", "４．"]
        truths = [_ascii_digits(line[2:]) in TRUE_STATEMENTS for line in lines]
        want = "不適切" not in row["question"]
        assert [i for i, t in enumerate(truths) if t == want] == [row["answer"]], row
    assert [d["choices"] for d in docs(out, manifest, "fp2")][0] == ["１", "２", "３", "４"]


def _ascii_digits(text: str) -> str:
    return text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))


def test_security_sales_1_mixes_two_way_and_four_way(bench):
    out, manifest, _ = bench
    rows = exam(out, "security_sales_1")
    two = [r for r in rows if len(r["choices"]) == 2]
    assert len(two) == 9 and all(len(r["choices"]) == 4 for r in rows if r not in two)
    for r in two:
        assert [c["text"] for c in r["choices"]] == ["○", "×"]
        assert r["answer"] == (0 if r["context"] in TRUE_STATEMENTS else 1)
    loaded = docs(out, manifest, "security_sales_1")
    assert sorted(len(d["choices"]) for d in loaded) == [2] * 9 + [4] * 6


def test_cpa_audit_workbook_is_as_messy_as_the_real_one(bench):
    out, manifest, _ = bench
    book = openpyxl.load_workbook(out / "cpa_audit" / "CPA_AUDIT.xlsx", read_only=True)
    header, *sheet_rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert header == (None, "key", "question", "ア", "イ", "ウ", "エ", "オ", "カ", 1.0, 2.0, 3.0,
                      4.0, 5.0, 6.0, "a_no", "abnormal_flg")  # fmt: skip
    assert all(type(h) is float for h in header[9:15])  # as openpyxl reads the real file
    rows = [r for r in sheet_rows if any(c is not None for c in r)]
    assert len(sheet_rows) == SHEET_ROWS - 1 and sheet_rows[len(rows) :] == [
        (None,) * len(header)
    ] * (SHEET_ROWS - 1 - len(rows))  # data first, then empty rows to the real sheet's height
    assert (
        len(rows) == 13 and sum(r[-1] for r in rows) == 3 == manifest["cpa_audit"]["abnormal_rows"]
    )
    assert all(re.fullmatch(r"R[1-5]_[12]", r[0]) for r in rows)
    assert len({r[0] for r in rows}) < len(rows)  # sessions repeat, as in the real file
    true_set = {audit_statement(st, True) for st in AUDIT_STATEMENTS}
    false_set = {audit_statement(st, False) for st in AUDIT_STATEMENTS}
    for r in rows:
        statements, combos, a_no = r[3:7], r[9:15], r[15]
        assert combos == ("アイ", "アウ", "アエ", "イウ", "イエ", "ウエ") and r[7] is r[8] is None
        assert set(statements) <= true_set | false_set
        want = "誤っている" not in r[2]
        picked = {m for m, s in zip("アイウエ", statements, strict=True) if (s in true_set) == want}
        assert "".join(sorted(picked, key="アイウエ".index)) == combos[a_no - 1]
    loaded = docs(out, manifest, "cpa_audit")
    kept = [(n, r) for n, r in enumerate(sheet_rows, 2) if r in rows and r[-1] == 0]
    assert [d["id"] for d in loaded] == [f"{r[0]}:row{n}" for n, r in kept]
    assert [d["gold"] for d in loaded] == [r[15] - 1 for _, r in kept]


def test_cpa_and_some_fp2_prompts_exceed_the_embedded_window(bench, training):
    """Almost every real CPA prompt and a third of real FP2 prompts run past a 512-token window,
    so the stand-ins must too: the window's cut is then exercised in every embedded run. Tokens
    are counted the embedded way: a byte-level BPE of params' vocabulary size trained on
    training records, not on the benchmarks."""
    out, manifest, _ = bench
    texts = [m["content"] for r in training for m in r["messages"]]
    tokenizer = train_tokenizer(texts, repo_section("model")["tokenizer"]["vocab_size"])
    window = repo_section("evaluate")["max_length"]

    def n_tokens(doc: dict) -> int:
        return len(tokenizer(doc["prompt"], add_special_tokens=False)["input_ids"])

    assert all(n_tokens(d) > window for d in docs(out, manifest, "cpa_audit"))
    fp2 = docs(out, manifest, "fp2")
    long = [d for d in fp2 if n_tokens(d) > window]
    assert len(long) == round(len(fp2) / 3)
    assert all("〈" in d["prompt"] for d in long)  # the items with a 〈資料〉 block


EDINET_FIELDS = {
    "fraud_detection": {"label", "explanation", "edinet_code", "ammended_doc_id", "doc_id",
                        "file_path"},
    "earnings_forecast": {"label", "naive_prediction", "edinet_code", "doc_id",
                          "previous_year_file_path", "current_year_file_path"},
    "industry_prediction": {"industry", "edinet_code", "doc_id", "file_path"},
}  # fmt: skip
NI = "親会社株主に帰属する当期純利益"


def edinet(out: Path, config: str) -> list[dict]:
    split = "train" if config == "industry_prediction" else "test"
    return load_jsonl(out / "edinet" / config / f"{split}.jsonl")


@pytest.mark.parametrize("config", list(EDINET_FIELDS))
def test_edinet_rows_have_the_hub_fields_and_short_consistent_sheets(bench, config):
    out, _, _ = bench
    rows = edinet(out, config)
    sheets = ("meta", "summary", "bs", "pl", "cf", "text")
    for row in rows:
        assert set(row) == set(sheets) | EDINET_FIELDS[config]
        parsed = {s: json.loads(row[s]) for s in sheets}
        assert all(len(row[s]) <= 600 for s in ("summary", "bs", "pl", "cf")), row["doc_id"]
        assert parsed["meta"]["EDINETコード"] == row["edinet_code"]
        assert list(parsed["summary"][NI]) == [
            "Prior4Year",
            "Prior3Year",
            "Prior2Year",
            "Prior1Year",
            "CurrentYear",
        ]
        assert parsed["pl"][NI]["CurrentYear"] == parsed["summary"][NI]["CurrentYear"]
        assert parsed["pl"][NI]["Prior1Year"] == parsed["summary"][NI]["Prior1Year"]
    assert len({r["edinet_code"] for r in rows}) == len(rows)  # one report per company


def test_edinet_labels_follow_params_and_the_figures(bench):
    out, _, _ = bench
    fraud = edinet(out, "fraud_detection")
    assert sum(r["label"] for r in fraud) == 3
    assert all(bool(r["explanation"]) == bool(r["ammended_doc_id"]) == r["label"] for r in fraud)
    earnings = edinet(out, "earnings_forecast")
    assert sum(r["label"] for r in earnings) == 6
    for r in earnings:
        ni = json.loads(r["summary"])[NI]
        assert r["naive_prediction"] == int(int(ni["CurrentYear"]) > int(ni["Prior1Year"]))
    industry = edinet(out, "industry_prediction")
    counts = {i: sum(r["industry"] == i for r in industry) for i in INDUSTRIES}
    assert set(counts.values()) == {1, 2} and sum(counts.values()) == 20
    bank = next(r for r in industry if r["industry"] == "銀行")
    assert "経常収益" in json.loads(bank["summary"]) and "預金" in json.loads(bank["bs"])


def test_stand_ins_are_disjoint_from_training(bench, training):
    out, manifest, _ = bench
    texts = "\n".join(m["content"] for r in training for m in r["messages"])
    questions = [
        i["question"] for n in ("test", "train") for i in load_jsonl(out / "gsm8k" / f"{n}.jsonl")
    ]
    assert {r["messages"][0]["content"] for r in training}.isdisjoint(questions)
    for task in TASKS:
        for doc in docs(out, manifest, task):
            assert read_text(doc) not in texts


def read_text(doc: dict) -> str:
    """What a model reads of a normalised doc."""
    return doc.get("sentence") or doc.get("prompt") or doc.get("question") or doc["context"]


def leak(record_id: str, text: str):
    return make_record(
        record_id,
        "finqa_text",
        [{"role": "user", "content": "本文：" + text}, {"role": "assistant", "content": "x"}],
    )


def test_items_found_in_training_are_dropped_and_counted(tmp_path, bench):
    out, _, cfg = bench
    first_q = load_jsonl(out / "gsm8k" / "test.jsonl")[0]["question"]
    first_s = json.loads(sorted((out / "chabsa").glob("*.json"))[0].read_text())["sentences"][0]
    fp2 = exam(out, "fp2")[0]
    fraud = edinet(out, "fraud_detection")[0]
    leaked = [
        make_record(
            "leak-q",
            "math_cot",
            [{"role": "user", "content": first_q}, {"role": "assistant", "content": "x"}],
        ),
        leak("leak-s", first_s["sentence"]),
        leak("leak-fp2", fp2["question"] + "\n" + fp2["context"]),
        leak("leak-edinet", "pl: " + fraud["pl"]),
    ]
    manifest = build_benchmarks(cfg, tmp_path, leaked)
    for task, gone in (
        ("gsm8k", first_q),
        ("chabsa", first_s["sentence"]),
        ("fp2", fp2["context"]),
        ("edinet_fraud", fraud["pl"]),
    ):
        assert manifest[task]["dropped_as_in_training"] >= 1, task
        kept = docs(tmp_path, manifest, task)
        assert len(kept) == EXPECTED[task], task
        assert not any(gone in read_text(d) for d in kept), task
    assert manifest["cma_basics"]["dropped_as_in_training"] == 0


def test_deterministic(tmp_path, bench, training):
    out, _, cfg = bench
    build_benchmarks(cfg, tmp_path, training)
    theirs = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert theirs == sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
    )
    for rel in theirs:
        assert (tmp_path / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_other_seed_and_sizes_give_other_sets(tmp_path, bench):
    out, _, _ = bench
    changes = {
        "seed": 7,
        "cma_basics": {"n_items": 3},
        "edinet": {"industry_prediction": {"n_items": 5}},
    }
    cfg = repo_config(BenchConfig, "benchmarks", **changes)
    manifest = build_benchmarks(cfg, tmp_path, [])
    assert manifest["cma_basics"]["items"] == 3 and manifest["edinet_industry"]["items"] == 5
    assert manifest["fp2"]["items"] == repo_section("benchmarks")["fp2"]["n_items"]
    assert (tmp_path / "fp2" / "data.json").read_bytes() != (out / "fp2" / "data.json").read_bytes()


def test_jsonl_files_load_with_the_datasets_json_builder(bench, tmp_path):
    out, _, _ = bench
    ds = datasets.load_dataset(
        "json",
        data_files={"test": str(out / "edinet" / "fraud_detection" / "test.jsonl")},
        cache_dir=str(tmp_path / "cache"),
    )["test"]
    assert len(ds) == 10 and {"meta", "summary", "label", "doc_id"} <= set(ds.column_names)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"gsm8k": {"n_test": 0}}, "benchmarks.gsm8k.n_test"),
        ({"chabsa": {"n_items": 1}}, "benchmarks.chabsa.n_items"),
        ({"chabsa": {"two_target_fraction": 2.0}}, "benchmarks.chabsa.two_target_fraction"),
        ({"chabsa": {"neutral_fraction": -0.1}}, "benchmarks.chabsa.neutral_fraction"),
        ({"cma_basics": {"n_items": 0}}, "benchmarks.cma_basics.n_items"),
        ({"cpa_audit": {"n_abnormal": -1}}, "benchmarks.cpa_audit.n_abnormal"),
        ({"fp2": {"n_items": "many"}}, "benchmarks.fp2.n_items"),
        ({"security_sales_1": {"two_way_fraction": 1.5}},
         "benchmarks.security_sales_1.two_way_fraction"),
        ({"edinet": {"fraud_detection": {"n_items": 1, "positive_fraction": 0.5}}},
         "benchmarks.edinet.fraud_detection.n_items"),
        ({"edinet": {"earnings_forecast": {"n_items": 4, "positive_fraction": 0.9}}},
         "benchmarks.edinet.earnings_forecast.positive_fraction"),
        ({"edinet": {"industry_prediction": {"n_items": 0}}},
         "benchmarks.edinet.industry_prediction.n_items"),
        ({"edinet": {"industry": {}}}, "benchmarks.edinet.industry"),
        ({"mgsm": {}}, "benchmarks.mgsm"),
    ],
)  # fmt: skip
def test_invalid_benchmark_params_name_the_key(params, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        parse(BenchConfig, repo_section("benchmarks", **params), "benchmarks")
