"""Math CoT distillation: problems, trace format, the boxed extractor, verification."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from finstage.answers import extract_boxed, numbers_equal
from finstage.config import ParamsError, parse
from finstage.distill.teacher import (
    DistillConfig,
    RuleReasoningTeacher,
    Trace,
    distill,
    verify,
)
from finstage.records import IMAGE_MARKER, read_records
from finstage.wordproblems import TEMPLATES, Problem, generate_problems, run

from .repo_configs import repo_config, repo_section
from .untrusted import INJECTION, encoder, scrub_messages, special_ids, tokenizers

ALL = list(TEMPLATES)
TRACE = re.compile(
    r"\A<Problem>(?P<p>[^<]+)</Problem>\n<Thinking>(?P<t>[^<]+)</Thinking>\n<Answer>\\boxed\{(?P<a>[^{}]+)\}</Answer>\Z"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"<Answer>\boxed{42}</Answer>", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b^{2}}}}", r"\sqrt{\frac{a}{b^{2}}}"),
        (r"答えは \boxed{１２３} です", "123"),
        (r"\boxed{1,200円}", "1200"),
        (r"\boxed{12\text{円}}", "12"),
        (r"\boxed{3,345}", "3345"),
        (r"\boxed{72.0}", "72.0"),
        (r"\boxed{△500}", "-500"),
        (r"\boxed{15%}", "15"),
        (r"\boxed{x = 5}", "5"),
        (r"まず \boxed{3} としたが、<Answer>\boxed{5}</Answer>", "5"),
        ("答えは42です", None),
        (r"\boxed{12", None),
        ("", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("1,200", 1200, True),
        ("１２００円", "1200", True),
        (r"\frac{1}{2}", "0.5", True),
        ("1/3", Fraction(1, 3), True),
        ("72.0", "72", True),
        ("-22,190百万円", "△22,190", True),
        ("2.9%", "2.9", True),
        ("1201", "1200", False),
        ("abc", "abc", False),
        (None, "1", False),
    ],
)
def test_numbers_equal(a, b, equal):
    assert numbers_equal(a, b) is equal


def test_problems_are_distinct_deterministic_and_cover_every_template():
    problems = generate_problems(len(TEMPLATES) * 6, seed=0, stream="distill", templates=ALL)
    assert len({p.question for p in problems}) == len(problems)
    assert {p.template for p in problems} == set(TEMPLATES)
    assert [p.question for p in problems] == [
        p.question for p in generate_problems(len(problems), 0, "distill", ALL)
    ]
    assert {p.question for p in problems}.isdisjoint(
        p.question for p in generate_problems(len(problems), 0, "gsm8k", ALL)
    )
    assert all(len(p.steps) >= 2 for p in problems)  # multi-step by construction
    assert any(len(p.steps) >= 4 for p in problems)


def test_gold_answers_on_known_problems():
    by_template = {}
    for p in generate_problems(len(TEMPLATES) * 3, seed=5, stream="distill", templates=ALL):
        by_template.setdefault(p.template, p)
    shop = by_template["shopping"]
    nums = [int(x) for x in re.findall(r"\d+", shop.question)]
    p1, q1, p2, q2, bill = nums[1], nums[2], nums[4], nums[5], nums[6]
    assert shop.gold == bill - (p1 * q1 + p2 * q2)
    disc = by_template["discount"]
    price, d, n = (int(x) for x in re.findall(r"\d+", disc.question))
    assert disc.gold == Fraction(price * (100 - d), 100) * n
    comp = by_template["interest_compound"]
    principal, rate = (int(x) for x in re.findall(r"\d+", comp.question)[:2])
    b1 = principal + principal * rate // 100
    assert comp.gold == b1 + b1 * rate // 100


def test_trace_format_and_every_clean_trace_verifies():
    teacher = RuleReasoningTeacher(error_rate=0.0, seed=0)
    for p in generate_problems(40, seed=1, stream="distill", templates=ALL):
        trace = teacher.solve(p)
        m = TRACE.match(trace.text)
        assert m, trace.text
        assert m["p"] == p.restatement and "=" in m["t"]
        assert not trace.slipped and verify(trace.text, p.gold)


def test_teacher_slips_are_deterministic_and_rejected():
    problems = generate_problems(200, seed=2, stream="distill", templates=ALL)
    teacher = RuleReasoningTeacher(error_rate=0.25, seed=0)
    traces = [teacher.solve(p) for p in problems]
    assert [t.text for t in traces] == [teacher.solve(p).text for p in problems]
    slipped = [(p, t) for p, t in zip(problems, traces, strict=True) if t.slipped]
    assert 30 <= len(slipped) <= 70
    for p, t in slipped:
        assert not verify(t.text, p.gold)
        assert run(p)[p.steps[-1].out] == p.gold
    for p, t in zip(problems, traces, strict=True):
        if not t.slipped:
            assert verify(t.text, p.gold)


def test_distill_keeps_verified_and_counts_rejected(tmp_path):
    cfg = repo_config(DistillConfig, "distill", seed=0, n_problems=120, error_rate=0.2)
    result = distill(cfg, tmp_path)
    kept = list(read_records(tmp_path / "math_cot"))
    rejected = list(read_records(tmp_path / "rejected"))
    assert result.verified == len(kept) and result.rejected == len(rejected) == result.slipped > 0
    assert result.verified + result.rejected == 120
    assert all(r["meta"]["verified"] and not r["meta"]["teacher_slipped"] for r in kept)
    assert all(
        numbers_equal(extract_boxed(r["messages"][-1]["content"]), r["answer"]) for r in kept
    )
    assert not any(
        numbers_equal(extract_boxed(r["messages"][-1]["content"]), r["answer"]) for r in rejected
    )
    assert (tmp_path / "stats.json").exists()


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"error_rate": 1.5}, "distill.error_rate"),
        ({"n_problems": 0}, "distill.n_problems"),
        ({"templates": ["shopping", "poetry"]}, "distill.templates"),
        ({"n_problem": 10}, "distill.n_problem"),
        ({"seed": "one"}, "distill.seed"),
    ],
)
def test_invalid_distill_params_name_the_key(params, key):
    with pytest.raises(ParamsError, match=re.escape(key)):
        parse(DistillConfig, repo_section("distill", **params), "distill")


class InjectingTeacher:
    """A teacher whose traces spell turn markers, and on every third problem `<image>` too."""

    name = "injecting"

    def __init__(self) -> None:
        self.rule, self.solved = RuleReasoningTeacher(0.0, 0), 0

    def solve(self, problem: Problem) -> Trace:
        trace = self.rule.solve(problem)
        self.solved += 1
        extra = IMAGE_MARKER if self.solved % 3 == 0 else ""
        return Trace(trace.text.replace("<Thinking>", f"<Thinking>{INJECTION}{extra}"), False)


def test_teacher_text_spelling_special_tokens_never_stops_distill(tmp_path):
    """Turn markers stay trace text; a trace quoting `<image>` is rejected, counted, audited."""
    cfg = repo_config(DistillConfig, "distill", seed=0, n_problems=30, error_rate=0.0)
    result = distill(cfg, tmp_path, InjectingTeacher())
    kept = list(read_records(tmp_path / "math_cot"))
    rejected = list(read_records(tmp_path / "rejected"))
    assert (result.verified, result.rejected) == (len(kept), len(rejected)) == (20, 10)
    assert all(INJECTION in r["messages"][-1]["content"] for r in kept + rejected)
    assert not any(IMAGE_MARKER in m["content"] for r in kept + rejected for m in r["messages"])
    assert all(r["meta"]["image_marker"] for r in rejected)
    for tok in tokenizers().values():
        for r in kept:
            enc = encoder(tok).encode(r["messages"])
            clean = encoder(tok).encode(scrub_messages(r["messages"]))
            assert special_ids(tok, enc.input_ids) == special_ids(tok, clean.input_ids)
