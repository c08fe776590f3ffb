"""The reasoning teacher and the verified-distillation loop for math chain-of-thought (P2).

At paper scale a thinking model writes the traces; here a rule-based teacher renders each
problem's program in the recipe's XML form::

    <Problem>…restatement…</Problem>
    <Thinking>…step-by-step with intermediate calculations…</Thinking>
    <Answer>\\boxed{N}</Answer>

and, at a params error rate, makes a deterministic arithmetic slip (one step's result is off and
the error propagates), so verification has something to catch. `distill` keeps only traces whose
boxed answer equals the gold number and counts the rejected ones.

A teacher's text is untrusted. Strings spelling a template's turn markers stay text (the encoder
never makes message text special tokens); a trace spelling the image marker, which records
reserve for page images, is rejected and kept for audit with the marker masked.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from finstage.answers import extract_boxed, numbers_equal
from finstage.config import require
from finstage.records import IMAGE_MARKER, Record, make_record, mask_markers, write_records
from finstage.traces import format_trace
from finstage.wordproblems import (
    TEMPLATES,
    Problem,
    fmt,
    generate_problems,
    run,
    solution_lines,
)

SLIP_DELTAS = (Fraction(10), Fraction(-10), Fraction(1), Fraction(-1), Fraction(100))


@dataclass
class DistillConfig:
    seed: int
    n_problems: int
    error_rate: float  # fraction of traces in which the teacher makes an arithmetic slip
    templates: list[str]

    def check(self, where: str) -> None:
        require(self.n_problems >= 1, f"{where}.n_problems", f"must be >= 1, got {self.n_problems}")
        require(
            0.0 <= self.error_rate <= 1.0,
            f"{where}.error_rate",
            f"must be in [0, 1], got {self.error_rate}",
        )
        unknown = [t for t in self.templates if t not in TEMPLATES]
        require(
            not unknown,
            f"{where}.templates",
            f"has unknown template(s) {unknown}; known: {list(TEMPLATES)}",
        )
        require(bool(self.templates), f"{where}.templates", "must list at least one template")


@dataclass(frozen=True)
class Trace:
    text: str
    slipped: bool
    slip_step: int | None = None


class ReasoningTeacher(Protocol):
    name: str

    def solve(self, problem: Problem) -> Trace: ...


class RuleReasoningTeacher:
    """Renders the problem's program; slips on a deterministic `error_rate` share of problems."""

    name = "rule"

    def __init__(self, error_rate: float, seed: int):
        self.error_rate, self.seed = error_rate, seed

    def _hash(self, problem: Problem, what: str) -> int:
        return int.from_bytes(
            hashlib.sha256(f"{self.seed}:{what}:{problem.id}".encode()).digest()[:8], "big"
        )

    def will_slip(self, problem: Problem) -> bool:
        return self._hash(problem, "slip") / 2**64 < self.error_rate

    def _slip(self, problem: Problem) -> tuple[int, Fraction] | None:
        """The first (step, delta), from a problem-specific start, that changes the final answer."""
        gold = problem.gold
        last = problem.steps[-1].out
        n = len(problem.steps)
        start = self._hash(problem, "step") % n
        for k in range(n):
            step = (start + k) % n
            for delta in SLIP_DELTAS:
                if run(problem, (step, delta))[last] != gold:
                    return step, delta
        return None

    def solve(self, problem: Problem) -> Trace:
        slip = self._slip(problem) if self.will_slip(problem) else None
        answer = run(problem, slip)[problem.steps[-1].out]
        text = format_trace(problem, solution_lines(problem, slip), answer)
        return Trace(text, slip is not None, slip[0] if slip else None)


def verify(trace_text: str, gold: Fraction) -> bool:
    got = extract_boxed(trace_text)
    return got is not None and numbers_equal(got, gold)


@dataclass
class DistillResult:
    problems: int
    verified: int
    rejected: int
    slipped: int
    by_template: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "problems": self.problems,
            "verified": self.verified,
            "rejected": self.rejected,
            "teacher_slips": self.slipped,
            "pass_rate": round(self.verified / max(self.problems, 1), 4),
            "by_template": self.by_template,
        }


def problem_record(problem: Problem, trace: Trace, kept: bool) -> Record:
    """The trace as a record; one spelling the image marker (never kept) is masked, and its meta
    says so (the key is absent otherwise, so other records keep their bytes)."""
    marker = {"image_marker": True} if IMAGE_MARKER in trace.text else {}
    return make_record(
        id=f"math_cot:{problem.id}",
        source="math_cot",
        messages=[
            {"role": "user", "content": problem.question},
            {"role": "assistant", "content": mask_markers(trace.text)},
        ],
        answer=fmt(problem.gold),
        meta={
            "template": problem.template,
            "problem_id": problem.id,
            "teacher_slipped": trace.slipped,
            "slip_step": trace.slip_step,
            "verified": kept,
            "unit": problem.unit,
            **marker,
        },
    )


def distill(
    cfg: DistillConfig, out_dir: Path, teacher: ReasoningTeacher | None = None
) -> DistillResult:
    """Generate problems, have the teacher solve them, keep verified traces.

    Writes ``out_dir/math_cot/`` (verified), ``out_dir/rejected/`` (for audit) and
    ``out_dir/stats.json``."""
    teacher = teacher or RuleReasoningTeacher(cfg.error_rate, cfg.seed)
    problems = generate_problems(cfg.n_problems, cfg.seed, "distill", cfg.templates)
    kept: list[Record] = []
    rejected: list[Record] = []
    per_template: dict[str, Counter[str]] = {}
    slipped = 0
    for problem in tqdm(problems, desc=f"distill:{teacher.name}", unit="problem"):
        trace = teacher.solve(problem)
        slipped += trace.slipped
        ok = IMAGE_MARKER not in trace.text and verify(trace.text, problem.gold)
        (kept if ok else rejected).append(problem_record(problem, trace, ok))
        per_template.setdefault(problem.template, Counter())["verified" if ok else "rejected"] += 1
    out_dir = Path(out_dir)
    for name, records in (("math_cot", kept), ("rejected", rejected)):
        for stale in (out_dir / name).glob("part-*.parquet"):
            stale.unlink()
        write_records(out_dir / name, records)
    result = DistillResult(
        problems=len(problems),
        verified=len(kept),
        rejected=len(rejected),
        slipped=slipped,
        by_template={
            t: {"verified": c["verified"], "rejected": c["rejected"]}
            for t, c in sorted(per_template.items())
        },
    )
    (out_dir / "stats.json").write_text(
        json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n"
    )
    return result
