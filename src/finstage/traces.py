"""The XML reasoning-trace format the recipe's math stage teaches and GSM8K scoring reads.

`<Problem>` restates the question, `<Thinking>` holds one computation per line and `<Answer>`
boxes the result. It lives here, not in `distill`, because two stages write it: `distill` (the
verified traces P2 trains on) and `warmup` (format practice for the embedded P0).
"""

from __future__ import annotations

from fractions import Fraction

from finstage.wordproblems import Problem, fmt


def format_trace(problem: Problem, lines: list[str], answer: Fraction) -> str:
    thinking = "\n".join([*lines, f"よって、答えは{fmt(answer)}{problem.unit}です。"])
    return (
        f"<Problem>{problem.restatement}</Problem>\n"
        f"<Thinking>{thinking}</Thinking>\n"
        f"<Answer>\\boxed{{{fmt(answer)}}}</Answer>"
    )
