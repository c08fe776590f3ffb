"""Character n-gram decontamination between training mixtures and eval sets."""

from __future__ import annotations

import json
import random

import pytest

from finstage.mix.decontam import Overlap, TrainIndex, check
from finstage.textnorm import compact


def overlap(index: TrainIndex, text: str) -> Overlap:
    (found,) = index.overlaps([text])
    return found


CLEAN_TRAIN = [
    "令和6年度の一般会計予算は歳出合計で前年度比3.2%増となりました。",
    "営業利益は原材料価格の高騰により前年同期比で減少しました。",
    "当社グループは海外事業の拡大を進めております。",
]
PASSAGE = "ある会社の売上高は前年比で20%増加し、営業利益は15億円となった。営業利益率は何%か。"
EVAL = {
    "gsm8k_ja": {
        "q1": PASSAGE,
        "q2": "りんごが3個とみかんが5個あります。果物は全部で何個ですか。",
    },
    "chabsa": {"c1": "為替の影響により輸出売上が伸び悩んだ。"},
}


def test_compact() -> None:
    assert compact("売上高 １，２３４\n百万円") == "売上高1,234百万円"


def test_overlap_share_hand_computed() -> None:
    index = TrainIndex.build(["ABCDEFGHIJ"], n=5)
    # eval windows: ABCDE, BCDEF (seen), CDEFX, DEFXY, EFXYZ (not) → 2/5
    assert overlap(index, "ABCDEFXYZ") == Overlap(share=0.4, example="ABCDE")
    assert overlap(index, "VWXYZ") == Overlap(share=0.0, example=None)
    assert overlap(index, "") == Overlap(share=0.0, example=None)


def test_windows_do_not_straddle_training_texts() -> None:
    index = TrainIndex.build(["ABCDE", "FGHIJ"], n=5)
    assert overlap(index, "CDEFG").share == 0.0  # only exists across the join of two texts
    assert overlap(index, "FGHIJ").share == 1.0


def test_index_counts_exactly_the_distinct_ngrams() -> None:
    rng = random.Random(0)
    alphabet = "売上高利益損失増減率円億百万"
    texts = ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(2000)]
    n = 6
    expected = {t[i : i + n] for t in texts for i in range(len(t) - n + 1)}
    index = TrainIndex.build(iter(texts), n)  # any iterable
    assert index.grams.size == len(expected)  # no collisions, no straddling windows


def test_planted_overlap_is_flagged_and_named() -> None:
    contaminated = CLEAN_TRAIN + ["参考問題：" + PASSAGE + "答えは12.5%です。"]
    report = check({"p2_sft": contaminated, "p1_pages": CLEAN_TRAIN}, EVAL, n=13, max_share=0.2)
    assert not report.ok
    assert [(f.mixture, f.eval_set, f.item_id) for f in report.flagged] == [
        ("p2_sft", "gsm8k_ja", "q1")
    ]
    flag = report.flagged[0]
    assert flag.share == 1.0
    assert flag.example is not None and flag.example in compact(PASSAGE)
    pairs = {(p.mixture, p.eval_set): (p.n_items, p.n_flagged) for p in report.pairs}
    assert pairs == {
        ("p2_sft", "gsm8k_ja"): (2, 1),
        ("p2_sft", "chabsa"): (1, 0),
        ("p1_pages", "gsm8k_ja"): (2, 0),
        ("p1_pages", "chabsa"): (1, 0),
    }
    summary = report.summary()
    assert "FAILED" in summary
    for name in ("'p2_sft'", "'gsm8k_ja'", "'q1'"):
        assert name in summary
    data = json.loads(json.dumps(report.to_json(), ensure_ascii=False))
    assert data["ok"] is False and data["n_flagged"] == 1
    assert data["flagged"][0]["item_id"] == "q1"


def test_reformatted_copy_is_still_caught() -> None:
    # full-width digits and re-wrapped lines in training text: NFKC + whitespace removal
    reformatted = PASSAGE.replace("20%", "２０％").replace("、", "、\n  ")
    report = check({"mix": CLEAN_TRAIN + [reformatted]}, EVAL, n=13, max_share=0.5)
    assert [f.item_id for f in report.flagged] == ["q1"]


def test_clean_sets_pass() -> None:
    report = check({"p2_sft": CLEAN_TRAIN}, EVAL, n=13, max_share=0.0)
    assert report.ok
    assert report.flagged == []
    assert "ok" in report.summary()
    assert report.to_json()["ok"] is True


def test_short_items_are_compared_whole() -> None:
    index = TrainIndex.build(["売上高", "営業利益の推移と今後の見通しについて"], n=13)
    assert overlap(index, "売上高") == Overlap(share=1.0, example="売上高")
    assert overlap(index, " 売上高\n") == Overlap(share=1.0, example="売上高")
    assert overlap(index, "売上") == Overlap(share=0.0, example=None)  # not a whole training text
    assert overlap(index, "営業利益") == Overlap(share=0.0, example=None)  # substring only
    report = check({"mix": ["売上高"]}, {"vqa": {"a1": "売上高", "a2": "総資産"}}, 13, 0.5)
    assert [f.item_id for f in report.flagged] == ["a1"]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        TrainIndex.build(["abc"], n=0)
    with pytest.raises(ValueError):
        check({}, {}, n=13, max_share=1.5)
