"""Generation budgets against what the model was trained to write.

A budget shorter than the answers a stage teaches cuts every answer before it ends: the math
stage teaches traces whose `<Answer>` comes after ~120 tokens, so a 48-token GSM8K budget scored
0 parse coverage however well the model had learned. Each budget must reach the
`budget_percentile` of the token lengths of the assistant turns it is meant to reproduce (in the
mixtures, with the checkpoint's tokenizer), and at least the shortest answer its protocol can
parse. The `budgets` stage measures and checks this before any evaluation; `finstage validate`
warns from its last report when a params edit lowers a budget below it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finstage.config import require

# budget -> the mixture sources whose assistant turns it must reproduce
TARGETS: dict[str, tuple[str, ...]] = {
    "gsm8k_max_gen_toks": ("math_cot",),
    "edinet_max_gen_toks": (),  # no stage teaches EDINET answers: the shortest one must fit
    "visual_max_new_tokens": ("ocr", "vqa", "finqa_visual"),
}
# budget -> the shortest complete answer its scorer parses (both are checked in tests)
SHORTEST: dict[str, str] = {
    "gsm8k_max_gen_toks": "<Answer>\\boxed{0}</Answer>",
    "edinet_max_gen_toks": '```json\n{"reasoning": "", "prob": 0.5}\n```',
}


@dataclass(frozen=True)
class BudgetConfig:
    gsm8k_max_gen_toks: int
    edinet_max_gen_toks: int
    visual_max_new_tokens: int
    budget_percentile: float  # of the trained answers' token lengths each budget must reach

    def check(self, where: str) -> None:
        require(
            50 <= self.budget_percentile <= 100,
            f"{where}.budget_percentile",
            f"must be in [50, 100], got {self.budget_percentile}",
        )


def answer_lengths(
    count: Callable[[str], int], records: Iterable[Mapping[str, Any]]
) -> dict[str, list[int]]:
    """Source -> token count of every assistant turn of the records (each record id once: the
    mixtures share records)."""
    lengths: dict[str, list[int]] = {}
    seen: set[str] = set()
    for record in records:
        if record["id"] in seen:
            continue
        seen.add(record["id"])
        turns = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        lengths.setdefault(record["source"], []).extend(count(t) for t in turns)
    return lengths


def percentile(values: list[int], q: float) -> int:
    """The nearest-rank percentile: a length that many answers really have, never between."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def budget_report(
    cfg: BudgetConfig, lengths: Mapping[str, list[int]], count: Callable[[str], int]
) -> dict[str, dict[str, Any]]:
    """Per budget: its value, what it must reach (and from which sources) and whether it does."""
    report = {}
    for name, sources in TARGETS.items():
        trained = [n for s in sources for n in lengths.get(s, [])]
        shortest = count(SHORTEST[name]) if name in SHORTEST else 0
        reach = percentile(trained, cfg.budget_percentile) if trained else 0
        needed = max(reach, shortest)
        report[name] = {
            "budget": getattr(cfg, name),
            "needed": needed,
            "sources": [s for s in sources if s in lengths],
            "n_answers": len(trained),
            f"p{cfg.budget_percentile:g}": reach,
            "max": max(trained, default=0),
            "shortest_answer": shortest,
            "ok": getattr(cfg, name) >= needed,
        }
    return {"percentile": cfg.budget_percentile, "budgets": report}


def problems(report: Mapping[str, Any]) -> list[str]:
    """One line per budget that cannot reach its answers, naming the param and the fix."""
    q = report["percentile"]
    return [
        f"evaluate.{name} is {entry['budget']} tokens but must be >= {entry['needed']}: "
        + (
            f"the p{q:g} of the {entry['n_answers']} trained answers from "
            f"{', '.join(entry['sources'])}"
            if entry["needed"] > entry["shortest_answer"]
            else "the shortest answer its scorer parses"
        )
        + f"; raise it to at least {entry['needed']}"
        for name, entry in report["budgets"].items()
        if not entry["ok"]
    ]


def stale_budget_warnings(evaluate: Mapping[str, Any], report_path: Path) -> list[str]:
    """`problems` for the budgets in `evaluate` against the lengths of the last `budgets` run.

    Only a warning: the report was measured with the tokenizer and mixtures of that run."""
    if not report_path.is_file():
        return []
    report = json.loads(report_path.read_text())
    for name, entry in report["budgets"].items():
        entry["budget"] = evaluate[name]
        entry["ok"] = entry["budget"] >= entry["needed"]
    return [f"{line} (lengths from {report_path})" for line in problems(report)]
