"""Answer extraction: boxed (strict) vs last-number (flexible), and EDINET JSON probabilities."""

from __future__ import annotations

import pytest

from finstage.answers import canonical_number, extract_flexible, extract_strict, numbers_equal
from finstage.benchmarks.edinet_answers import answer_probability


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("よって <Answer>\\boxed{42}</Answer>", "42"),
        ("<Answer>\\boxed{\\frac{1}{2}}</Answer>", "\\frac{1}{2}"),  # nested braces
        ("\\boxed{\\sqrt{\\frac{a}{b^{2}}}}", "\\sqrt{\\frac{a}{b^{2}}}"),  # deeper nesting
        ("<Answer>\\boxed{１，２３４}</Answer>", "1234"),  # full-width digits and comma
        ("<Answer>\\boxed{1,234,567}</Answer>", "1234567"),  # thousands separators
        ("<Answer>\\boxed{-42}</Answer>", "-42"),
        ("<Answer>\\boxed{−７}</Answer>", "-7"),  # U+2212 minus, full-width 7
        ("<Answer>\\boxed{－３.５}</Answer>", "-3.5"),  # full-width hyphen-minus
        ("<Answer>\\boxed{△1,200}</Answer>", "-1200"),  # △ = minus in Japanese tables
        ("計算すると <Answer>\\boxed{72}", "72"),  # </Answer> stripped as a stop string
        ("<Answer>\\boxed{72.0}</Answer>", "72"),  # canonical numeric form
        ("<Answer>\\boxed{12\\text{円}}</Answer>", "12"),
        ("途中 \\boxed{3} だが、最終 <Answer>\\boxed{5}</Answer>", "5"),  # last box wins
    ],
)
def test_extract_strict(text: str, expected: str) -> None:
    assert extract_strict(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "答えは 42 です。",  # a number but no box
        "",
        None,
        "<Answer>\\boxed{12",  # box cut off by the token limit
        "<Answer>\\boxed{}</Answer>",  # empty box
    ],
)
def test_extract_strict_none(text: str | None) -> None:
    assert extract_strict(text) is None


def test_strict_agrees_with_distillation_numbers_equal() -> None:
    # the same reader decides distillation keep/drop, so a gold comparison must succeed
    assert numbers_equal(extract_strict("<Answer>\\boxed{１，２３４円}"), "1234")
    assert not numbers_equal(extract_strict("<Answer>\\boxed{1,235}"), "1234")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("答えは 1,234 円です。", "1234"),
        ("合計は１２３４５円", "12345"),  # full-width digits
        ("差額は−５です", "-5"),
        ("x = -3.50.", "-3.5"),
        ("期間は2024-05", "5"),  # a hyphen after a digit is not a minus sign
        ("候補は 3,4,5 のどれか", "5"),  # a list, not a thousands-separated number
        ("営業損益 ▲1,200 百万円", "-1200"),
        ("no digits here ...", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_flexible(text: str | None, expected: str | None) -> None:
    assert extract_flexible(text) == expected


def test_flexible_differs_from_strict() -> None:
    boxed_then_more = "<Answer>\\boxed{12}</Answer> 念のため 15 個を確認"
    assert extract_strict(boxed_then_more) == "12"
    assert extract_flexible(boxed_then_more) == "15"
    unboxed = "したがって答えは 42 です"
    assert extract_strict(unboxed) is None
    assert extract_flexible(unboxed) == "42"


def test_canonical_number() -> None:
    assert canonical_number("72.0") == "72"
    assert canonical_number("+5") == "5"
    assert canonical_number("-0.0") == "0"
    assert canonical_number("0.250") == "0.25"
    assert canonical_number("\\frac{1}{2}") == "\\frac{1}{2}"
    assert canonical_number("positive") == "positive"


# --- EDINET JSON -----------------------------------------------------------------------------


def test_parse_fenced_block() -> None:
    text = (
        "分析しました。\n```json\n"
        '{"reasoning": "売上債権が急増", "prob": 0.8, "prediction": 1}\n```\n以上です。'
    )
    assert answer_probability(text) == 0.8


def test_parse_bare_object() -> None:
    text = 'JSON: {"reasoning": "特になし", "prob": 0.25, "prediction": 0} です'
    assert answer_probability(text) == 0.25


def test_last_fenced_block_wins() -> None:
    text = (
        '```json\n{"prob": 0.1, "prediction": 0}\n```\n訂正:\n'
        '```json\n{"prob": 0.9, "prediction": 1}\n```'
    )
    assert answer_probability(text) == 0.9


def test_an_answer_object_without_prob_ends_the_search() -> None:
    # the fenced block is the answer; a number elsewhere in the text is not its probability
    text = '```json\n{"reasoning": "x", "prediction": 1}\n```\n参考: {"prob": 0.9}'
    assert answer_probability(text) is None


def test_prob_as_string_and_full_width() -> None:
    assert answer_probability('{"prob": "0.3", "prediction": "0"}') == 0.3
    assert answer_probability('{"prob": "０．７", "prediction": "１"}') == 0.7
    assert answer_probability('{"prob": "80%", "prediction": 1.0}') == 0.8


@pytest.mark.parametrize("prob", ["1.5", "-0.1", "80", '"abc"', "NaN", "true"])
def test_prob_out_of_range_or_invalid_is_none(prob: str) -> None:
    assert answer_probability(f'```json\n{{"prob": {prob}, "prediction": 1}}\n```') is None


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "I cannot determine this.",
        "garbage {{{ not json ]]",
        '```json\n{"reasoning": "no fields"}\n```',
        "{" * 500,
    ],
)
def test_garbage_gives_none(text: str | None) -> None:
    assert answer_probability(text) is None


def test_recovers_common_llm_json_faults() -> None:
    unescaped_quotes = (
        '```json\n{"reasoning": "彼は"不正"と言った", "prob": 0.7, "prediction": 1}\n```'
    )
    assert answer_probability(unescaped_quotes) == 0.7
    trailing_comma = '```json\n{"reasoning": "x", "prob": 0.9, "prediction": 1,}\n```'
    assert answer_probability(trailing_comma) == 0.9
    unclosed_fence = '```json\n{"reasoning": "x", "prob": 0.6, "prediction": 0}'
    assert answer_probability(unclosed_fence) == 0.6
