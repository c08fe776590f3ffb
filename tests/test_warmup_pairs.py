"""The warm-up pairs: every format the benchmarks ask for, parseable, and no benchmark item."""

from __future__ import annotations

import json
from collections import Counter

from finstage.answers import extract_strict
from finstage.benchmarks.edinet_answers import answer_probability
from finstage.records import make_record
from finstage.warmup.pairs import FORMAT, PairCounts, warmup_pairs
from finstage.wordproblems import generate_problems

from .conftest import repo_params

PARAMS = repo_params()
TEMPLATES = PARAMS["distill"]["templates"]


def short_qa(n: int) -> list[dict]:
    turns = [{"role": "user", "content": "歳入合計は?"}, {"role": "assistant", "content": "1,234"}]
    return [make_record(f"qa{i}", "finqa_text", turns) for i in range(n)]


def page_qa(n: int) -> list[dict]:
    """VQA records as synthesis writes them: answer, then the passage that holds it."""
    turns = [
        {"role": "user", "content": "<image>\n「歳出合計」の金額はいくらですか。"},
        {"role": "assistant", "content": "1,286,243百万円"},
        {"role": "user", "content": "根拠となる記述を引用してください。"},
        {"role": "assistant", "content": "歳出合計は1,286,243百万円となった。"},
    ]
    return [make_record(f"vqa{i}", "vqa", turns, images=["page.png"]) for i in range(n)]


def build(seed: int = 0):
    counts = PairCounts(math=60, format_share=0.5, short=5, page=4, choice=20, json=20)
    return warmup_pairs(counts, TEMPLATES, short_qa(9), page_qa(6), seed)


def test_counts_sources_and_determinism():
    pairs = build()
    assert Counter(p["source"] for p in pairs) == {
        "warmup_math": 60,
        "warmup_short": 5,
        "warmup_page": 4,
        "warmup_choice": 20,
        "warmup_json": 20,
    }
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert build() == pairs and build(seed=1) != pairs


def test_every_answer_parses_with_its_benchmark_reader():
    for p in build():
        answer = p["messages"][-1]["content"]
        if p["source"] == "warmup_math":
            assert extract_strict(answer) is not None, answer
        elif p["source"] == "warmup_json":
            assert 0 < answer_probability(answer) < 1 and json.loads(answer)["prob"]
        elif p["source"] == "warmup_choice":
            assert answer in "ABCD" and len(answer) == 1


def test_a_share_of_math_prompts_names_the_trace_format_in_our_own_words():
    math = [p["messages"][0]["content"] for p in build() if p["source"] == "warmup_math"]
    named = [m for m in math if "\\boxed" in m]
    assert 0.3 * len(math) < len(named) < 0.7 * len(math)
    stems = [max(f.format(q="\0").split("\0"), key=len) for f in FORMAT]
    assert all(any(stem in m for stem in stems) for m in named)


def test_no_gsm8k_template_is_used():
    held_out = PARAMS["benchmarks"]["gsm8k"]["templates"]
    gsm8k = {p.question for p in generate_problems(200, 0, "warmup", held_out)}
    math = [p["messages"][0]["content"] for p in build() if p["source"] == "warmup_math"]
    assert not any(q in m for q in gsm8k for m in math)


def test_page_questions_are_asked_over_their_passage_without_the_image():
    pages = [p for p in build() if p["source"] == "warmup_page"]
    for p in pages:
        prompt, answer = (m["content"] for m in p["messages"])
        assert "<image>" not in prompt and p["images"] == []
        assert "歳出合計は1,286,243百万円となった。" in prompt and "いくらですか" in prompt
        assert answer == "1,286,243百万円"
