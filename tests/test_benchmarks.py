"""Evaluation stand-ins: raw schemas of GSM8K and pfnet chabsa, and disjointness from training."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from finstage.config import ParamsError, parse
from finstage.distill.teacher import DistillConfig, distill
from finstage.distill.verify import numbers_equal
from finstage.records import make_record, read_records
from finstage.synth.benchmarks import BenchConfig, build_benchmarks

POSITIVE_WORDS = ("増", "改善", "上回", "最高")
NEGATIVE_WORDS = ("減", "悪化", "赤字")


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill")
    distill(parse(DistillConfig, {"n_problems": 150, "seed": 0}, "distill"), out)
    return list(read_records(out / "math_cot"))


@pytest.fixture(scope="module")
def bench(tmp_path_factory, training):
    out = tmp_path_factory.mktemp("bench")
    cfg = parse(
        BenchConfig,
        {"seed": 1000, "gsm8k": {"n_test": 30, "n_train": 5}, "chabsa": {"n_items": 30}},
        "benchmarks",
    )
    manifest = build_benchmarks(cfg, out, training)
    return out, manifest, cfg


def test_gsm8k_raw_schema_and_answers(bench):
    out, manifest, _ = bench
    test, train = (
        load_jsonl(out / "gsm8k" / "test.jsonl"),
        load_jsonl(out / "gsm8k" / "train.jsonl"),
    )
    assert len(test) == 30 and len(train) == 5
    assert {q["question"] for q in test}.isdisjoint(q["question"] for q in train)
    for item in test + train:
        assert set(item) == {"question", "answer"}
        # lm-eval gsm8k's strict-match regex
        (final,) = re.findall(r"#### (\-?[0-9\.\,]+)$", item["answer"])
        reasoning = item["answer"].rsplit("\n#### ", 1)[0]
        last_result = reasoning.splitlines()[-1].rsplit("=", 1)[1]
        assert numbers_equal(last_result, final)
        assert re.search(r"[ぁ-んァ-ン一-龥]", item["question"])  # Japanese
    assert manifest["gsm8k"]["files"]["test"]["items"] == 30


def test_chabsa_raw_schema_of_the_pfnet_loader(bench):
    out, manifest, _ = bench
    items = load_jsonl(out / "chabsa" / "test.jsonl")
    assert len(items) == 30
    assert [i["id"] for i in items] == list(range(30))
    polarities = [i["polarity"] for i in items]
    assert set(polarities) == {"positive", "negative"}
    assert abs(polarities.count("positive") - polarities.count("negative")) <= 2
    for item in items:
        assert set(item) == {"id", "sentence", "target", "polarity"}
        assert isinstance(item["id"], int) and item["target"] in item["sentence"]
        # the sentiment is stated in the clause that names the target
        clause = next(
            c for c in re.split(r"ものの、|が、", item["sentence"]) if item["target"] in c
        )
        words = POSITIVE_WORDS if item["polarity"] == "positive" else NEGATIVE_WORDS
        assert any(w in clause for w in words), item
    assert any(
        sum(1 for j in items if j["sentence"] == i["sentence"]) == 2 for i in items
    )  # two-target sentences
    digest = hashlib.sha256((out / "chabsa" / "test.jsonl").read_bytes()).hexdigest()
    assert manifest["chabsa"]["files"]["test"]["sha256"] == digest


def test_stand_ins_are_disjoint_from_training(bench, training):
    out, _, _ = bench
    prompts = {r["messages"][0]["content"] for r in training}
    texts = "\n".join(m["content"] for r in training for m in r["messages"])
    questions = [
        i["question"]
        for name in ("test", "train")
        for i in load_jsonl(out / "gsm8k" / f"{name}.jsonl")
    ]
    assert prompts.isdisjoint(questions)
    assert not any(i["sentence"] in texts for i in load_jsonl(out / "chabsa" / "test.jsonl"))


def test_items_found_in_training_are_dropped_and_counted(tmp_path, bench):
    out, _, cfg = bench
    first_q = load_jsonl(out / "gsm8k" / "test.jsonl")[0]["question"]
    first_s = load_jsonl(out / "chabsa" / "test.jsonl")[0]["sentence"]
    leak = [
        make_record(
            "leak-q",
            "math_cot",
            [{"role": "user", "content": first_q}, {"role": "assistant", "content": "x"}],
        ),
        make_record(
            "leak-s",
            "finqa_text",
            [
                {"role": "user", "content": "本文：" + first_s},
                {"role": "assistant", "content": "x"},
            ],
        ),
    ]
    manifest = build_benchmarks(cfg, tmp_path, leak)
    test = load_jsonl(tmp_path / "gsm8k" / "test.jsonl")
    chabsa = load_jsonl(tmp_path / "chabsa" / "test.jsonl")
    assert len(test) == 30 and first_q not in {i["question"] for i in test}
    assert len(chabsa) == 30 and first_s not in {i["sentence"] for i in chabsa}
    assert manifest["gsm8k"]["dropped_as_in_training"] == 1
    assert manifest["chabsa"]["dropped_as_in_training"] >= 1


def test_deterministic(tmp_path, bench, training):
    out, _, cfg = bench
    build_benchmarks(cfg, tmp_path, training)
    for rel in ("gsm8k/test.jsonl", "gsm8k/train.jsonl", "chabsa/test.jsonl"):
        assert (tmp_path / rel).read_bytes() == (out / rel).read_bytes()


def test_files_load_with_the_datasets_json_builder(bench, tmp_path):
    datasets = pytest.importorskip("datasets")
    out, _, _ = bench
    ds = datasets.load_dataset(
        "json",
        data_files={"test": str(out / "chabsa" / "test.jsonl")},
        cache_dir=str(tmp_path / "cache"),
    )["test"]
    assert ds.column_names == ["id", "sentence", "target", "polarity"] and len(ds) == 30


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"gsm8k": {"n_test": 0}}, "benchmarks.gsm8k.n_test"),
        ({"chabsa": {"n_items": 1}}, "benchmarks.chabsa.n_items"),
        ({"chabsa": {"two_target_fraction": 2.0}}, "benchmarks.chabsa.two_target_fraction"),
        ({"mgsm": {}}, "benchmarks.mgsm"),
    ],
)
def test_invalid_benchmark_params_name_the_key(params, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        parse(BenchConfig, params, "benchmarks")
