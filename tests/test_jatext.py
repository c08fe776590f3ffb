"""Japanese-aware ROUGE, ANLS and character n-gram similarity."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from finstage.evaluate.jatext import (
    anls,
    levenshtein,
    rationale_similarity,
    rouge_scores,
    tokenize_ja,
)

PROFIT = "当期純利益は前年同期比12%増の350億円となった"
LOSS = "当期純損失は前年同期比12%減の350億円となった"


def ascii_tokenize(text: str) -> list[str]:
    """What rouge-score's default tokenizer does: lower-case, keep only [a-z0-9] runs."""
    return [t for t in re.sub(r"[^a-z0-9]+", " ", text.lower()).split() if t]


def unigram_f1(a: list[str], b: list[str]) -> float:
    overlap = sum((Counter(a) & Counter(b)).values())
    return 0.0 if not overlap else 2 * overlap / (len(a) + len(b))


def test_tokenize_ja_keeps_japanese_and_normalises() -> None:
    tokens = tokenize_ja("当期純利益は　１２％増")
    assert "利益" in tokens
    assert "12" in tokens  # NFKC: full-width digits
    assert all(t.strip() for t in tokens)  # no whitespace tokens (the ideographic space)
    assert tokenize_ja("") == []
    assert tokenize_ja("   ") == []


def test_kanji_only_difference_lowers_rouge_but_ascii_tokenizer_is_blind() -> None:
    increase, decrease = "売上高は増加した", "売上高は減少した"  # differ only in 増加/減少
    # the rouge-score default tokenizer deletes every kana and kanji: both are empty
    assert ascii_tokenize(increase) == ascii_tokenize(decrease) == []
    # and with shared numbers unrelated meaning scores a perfect ROUGE-1
    assert ascii_tokenize(PROFIT) == ascii_tokenize(LOSS) == ["12", "350"]
    assert unigram_f1(ascii_tokenize(PROFIT), ascii_tokenize(LOSS)) == 1.0

    same = rouge_scores(increase, increase)
    different = rouge_scores(increase, decrease)
    assert same == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    for key in ("rouge1", "rouge2", "rougeL"):
        assert different[key] < 1.0
        assert different[key] != same[key]
    assert rouge_scores(PROFIT, LOSS)["rouge1"] < 1.0
    assert rouge_scores(PROFIT, LOSS)["rougeL"] < rouge_scores(PROFIT, PROFIT)["rougeL"] == 1.0


def test_rouge_hand_computed() -> None:
    pred, ref = "a b c d", "a b e d"
    assert tokenize_ja(pred) == ["a", "b", "c", "d"]
    # rouge1: overlap {a,b,d}=3, P=R=3/4 → 0.75
    # rouge2: pred {ab,bc,cd}, ref {ab,be,ed}: overlap 1, P=R=1/3 → 1/3
    # rougeL: LCS a-b-d = 3 → P=R=3/4 → 0.75
    assert rouge_scores(pred, ref) == pytest.approx(
        {"rouge1": 0.75, "rouge2": 1 / 3, "rougeL": 0.75}
    )
    empty = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert rouge_scores("", ref) == rouge_scores(pred, "") == empty


def test_levenshtein() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("利益", "損失") == 2


def test_anls_threshold_behaviour() -> None:
    assert anls("abcd", ["abcd"]) == 1.0
    # one substitution in 4 chars: NL = 1/4 < 0.5 → 1 - 1/4
    assert anls("abcd", ["abce"]) == pytest.approx(0.75)
    # two substitutions in 4: NL = 1/2, not below the threshold → 0 (not 0.5)
    assert anls("abcd", ["abef"]) == 0.0
    assert anls("abcd", ["abef"], threshold=0.6) == pytest.approx(0.5)
    assert anls("xyz", ["abc"]) == 0.0
    # best over golds
    assert anls("1,234百万円", ["1234百万円", "1,234百万円"]) == 1.0
    # normalisation: NFKC, case and whitespace
    assert anls("  ＡＢＣ   Ｄ ", ["abc d"]) == 1.0
    assert anls("", [""]) == 1.0
    with pytest.raises(ValueError):
        anls("a", [])
    with pytest.raises(TypeError):
        anls("a", "a")  # type: ignore[arg-type]


def test_rationale_similarity_hand_computed() -> None:
    # pred "ab", ref "abc": n=1 P=2/2, R=2/3; n=2 P=1/1, R=1/2; n≥3: pred too short, stop.
    # avg P = 1, avg R = (2/3 + 1/2) / 2 = 7/12; F2 = 5·1·(7/12) / (4·1 + 7/12) = 35/55 = 7/11
    assert rationale_similarity("ab", "abc") == pytest.approx(7 / 11)


def test_rationale_similarity_properties() -> None:
    assert rationale_similarity(PROFIT, PROFIT) == 1.0
    # NFKC and whitespace-insensitive
    assert rationale_similarity("当期 純利益は １２％増", "当期純利益は12%増") == 1.0
    flipped = rationale_similarity(PROFIT, LOSS)
    paraphrase = rationale_similarity("当期純利益は前年同期比12%増加し350億円となった", PROFIT)
    unrelated = rationale_similarity("本日は晴天なり", PROFIT)
    assert flipped < 1.0
    assert unrelated < paraphrase
    assert unrelated < 0.1
    assert rationale_similarity("", "") == 1.0
    assert rationale_similarity("", "a") == 0.0
