"""Exact arithmetic for finance questions: the operations, the rounding rule, the answer format.

Answers are computed with Decimal (never float) and rounded half-up (四捨五入), the rule the
questions state, so the same operands always give the same gold string. The grounding check
recomputes every answer through `compute` from the operands it re-reads off the page.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

OPS = ("diff", "sum", "pct_change", "share", "prev_from_rate", "total_from_share")
PERCENT_OPS = ("pct_change", "share")


def round_half_up(x: Decimal, places: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def decimals_of(x: Decimal) -> int:
    exp = x.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def compute(op: str, values: list[Decimal], direction: str | None = None) -> Decimal:
    """Unrounded result of `op` on `values` (in the order the question states them)."""
    if op == "diff":
        return values[0] - values[1]
    if op == "sum":
        return sum(values, Decimal(0))
    if op == "pct_change":
        return (values[0] - values[1]) / abs(values[1]) * 100
    if op == "share":
        return values[0] / values[1] * 100
    if op == "prev_from_rate":  # amount after a change of `pct` percent → amount before it
        amount, pct = values
        factor = 1 + pct / 100 if direction == "増" else 1 - pct / 100
        return amount / factor
    if op == "total_from_share":  # a part and its percentage of the whole → the whole
        amount, pct = values
        return amount / pct * 100
    raise ValueError(f"unknown finance op {op!r}; known: {OPS}")


def result_places(op: str, values: list[Decimal], percent_places: int, amount_places: int) -> int:
    """How many decimals the stated rounding rule keeps for `op`."""
    if op in PERCENT_OPS:
        return percent_places
    if op in ("prev_from_rate", "total_from_share"):
        return amount_places
    return max(decimals_of(v) for v in values)  # diff/sum are exact


def format_number(x: Decimal, places: int) -> str:
    """``Decimal('-17812')`` → ``'-17,812'``; thousands commas, ASCII minus, fixed decimals."""
    x = round_half_up(x, places)
    if x == 0:
        x = abs(x)  # no "-0"
    return f"{x:,.{places}f}"


def format_answer(op: str, x: Decimal, places: int, unit: str | None) -> str:
    text = format_number(x, places)
    if op in PERCENT_OPS:
        return text + "%"
    return text + (unit or "")


def rounding_rule(places: int) -> str:
    """The rule as stated in a question."""
    if places == 0:
        return "小数点以下を四捨五入して整数で答えてください。"
    return f"小数第{places + 1}位を四捨五入して、小数第{places}位まで答えてください。"
