"""The lm-eval adapter scores what a manual forward pass says; scorers match hand computation."""

from __future__ import annotations

import json

import pytest
import torch
from lm_eval.api.instance import Instance

from finstage.evaluate.lm import FinstageLM
from finstage.evaluate.run import EvalConfig, EvalInputs, evaluate_checkpoint
from finstage.evaluate.tasks import gsm8k_results, last_number, macro_f1
from finstage.evaluate.visual import char_error_rate
from finstage.pages.store import page_id
from finstage.records import make_record, write_records

from .conftest import doc_sha


@pytest.fixture(scope="module")
def lm(tiny_p0):
    return FinstageLM.from_checkpoint(tiny_p0, batch_size=3, max_length=128)


def req(kind, args, idx=0):
    return Instance(request_type=kind, doc={}, arguments=args, idx=idx)


def test_loglikelihood_matches_a_manual_forward_pass(lm):
    contexts = ["歳出合計は?", "前年度比は?", "この文書は?", "予算"]
    requests = [req("loglikelihood", (c, " 1,234")) for c in contexts]
    batched = lm.loglikelihood(requests, disable_tqdm=True)
    for context, (ll, _) in zip(contexts, batched, strict=True):
        ctx = lm.prompt_ids(context)
        cont = lm.tok(" 1,234", add_special_tokens=False)["input_ids"]
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logprobs = torch.log_softmax(lm.model(input_ids=ids).logits[0].float(), -1)
        manual = sum(logprobs[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))
        assert ll == pytest.approx(manual, abs=1e-4)


def test_generation_is_deterministic_and_honours_until(lm):
    requests = [
        req("generate_until", ("予算は?", {"until": ["1"], "max_gen_toks": 8}), i) for i in range(3)
    ]
    first = lm.generate_until(requests, disable_tqdm=True)
    assert first == lm.generate_until(requests, disable_tqdm=True)
    assert all("1" not in text for text in first)


def test_gsm8k_scoring_strict_and_flexible():
    doc = {"answer": "12×3=36\n#### 1,036"}
    assert gsm8k_results(doc, ["<Answer>\\boxed{1036}</Answer>"]) == {
        "exact_match_strict": 1.0,
        "exact_match_flexible": 1.0,
        "unparsed": 0.0,
    }
    assert gsm8k_results(doc, ["答えは１，０３６です"]) == {
        "exact_match_strict": 0.0,
        "exact_match_flexible": 1.0,
        "unparsed": 1.0,
    }
    assert gsm8k_results(doc, ["わかりません"])["exact_match_flexible"] == 0.0
    assert last_number("3個と-4.5と1,200") == "1200"


def test_macro_f1_against_hand_computed_value():
    # golds/preds: class 0 F1 = 2·1/(2+1+1)=0.5 ... computed by hand below
    items = [(0, 0), (0, 1), (1, 1), (1, 1)]
    # class 0: tp=1 fp=0 fn=1 -> F1=2/3; class 1: tp=2 fp=1 fn=0 -> F1=4/5
    assert macro_f1(items) == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_character_error_rate():
    assert char_error_rate("歳出合計 100", "歳出合計100") == 0.0
    assert char_error_rate("歳出合汁100", "歳出合計100") == pytest.approx(1 / 7)
    assert char_error_rate("", "予算") == 1.0


def test_evaluate_checkpoint_writes_the_same_keys_with_counts(tmp_path, tiny_p0, tiny_pages):
    bench = tmp_path / "bench"
    bench.mkdir()
    with (bench / "gsm8k.jsonl").open("w") as f:
        for i in range(3):
            f.write(
                json.dumps(
                    {"question": f"{i}+1は?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"},
                    ensure_ascii=False,
                )
                + "\n"
            )
    with (bench / "chabsa.jsonl").open("w") as f:
        for i, pol in enumerate(["positive", "negative", "positive"]):
            f.write(
                json.dumps(
                    {"sentence": f"売上{i}", "target": "売上", "polarity": pol}, ensure_ascii=False
                )
                + "\n"
            )
    pid = page_id(doc_sha(0), 0)
    write_records(
        tmp_path / "ocr",
        [
            make_record(
                "o",
                "synth/ocr",
                [
                    {"role": "user", "content": "<image>書き起こしてください。"},
                    {"role": "assistant", "content": "歳出合計"},
                ],
                [pid],
            )
        ],
    )
    write_records(
        tmp_path / "vqa",
        [
            make_record(
                "v",
                "synth/vqa",
                [
                    {"role": "user", "content": "<image>歳出合計は?"},
                    {"role": "assistant", "content": "100"},
                    {"role": "user", "content": "根拠は?"},
                    {"role": "assistant", "content": "歳出合計 100"},
                ],
                [pid],
                answer="100",
            )
        ],
    )
    inputs = EvalInputs(
        bench / "gsm8k.jsonl",
        bench / "chabsa.jsonl",
        tmp_path / "ocr",
        tmp_path / "vqa",
        tiny_pages,
    )
    metrics, predictions = evaluate_checkpoint(
        tiny_p0,
        inputs,
        EvalConfig(batch_size=2, max_length=128, gsm8k_max_gen_toks=8, visual_max_new_tokens=8),
    )
    assert set(metrics) == {"gsm8k", "chabsa", "ocr", "vqa"}
    assert metrics["gsm8k"]["n"] == 3 and metrics["chabsa"]["n"] == 3
    assert metrics["ocr"]["n"] == 1 and metrics["vqa"]["n"] == 1
    assert all({"n", "n_unparsed"} <= set(v) for v in metrics.values())
    assert len(predictions) == 3 + 3 + 1 + 1
