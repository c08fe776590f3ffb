"""How ministry documents print dates and amounts: 和暦, 兆円/億円/百万円, full-width digits.

Real 報道発表 write ``令和６年４月１日`` and ``１２．３兆円`` as often as ``令和6年4月1日`` and
``12.3兆円``; a model that only ever saw ASCII digits misreads them. Every printed form here has
an exact value, so the truth record can hold both the text and what it means.
"""

from __future__ import annotations

import datetime as dt
import random

REIWA_START = 2019  # 令和元年 = 2019; the generated years are all 令和
_FULL = str.maketrans("0123456789,.", "０１２３４５６７８９，．")


def fullwidth(text: str) -> str:
    """ASCII digits, commas and points to their full-width forms (NFKC maps them back)."""
    return text.translate(_FULL)


def wareki(date: dt.date) -> str:
    """``2024-04-01`` -> ``令和6年4月1日`` (the first year is 元年, as printed)."""
    year = date.year - REIWA_START + 1
    if year < 1:
        raise ValueError(f"{date} is before 令和; only 令和 dates are generated")
    return f"令和{'元' if year == 1 else year}年{date.month}月{date.day}日"


def fiscal_year(reiwa: int) -> str:
    """令和 year ``reiwa`` as a fiscal-year label; 0 and below are 平成 (平成30年度 = 令和0)."""
    if reiwa >= 1:
        return f"令和{'元' if reiwa == 1 else reiwa}年度"
    return f"平成{reiwa + 30}年度"


def random_date(rng: random.Random, era: int) -> dt.date:
    """A day in 令和``era``年 (days 1-28, so every month has it)."""
    return dt.date(REIWA_START + era - 1, rng.randint(1, 12), rng.randint(1, 28))


def random_amount(rng: random.Random) -> tuple[int | float, str, str]:
    """(value, unit, ASCII text) in the unit a ministry would choose for its size: 兆円 with one
    decimal, 億円 or 百万円 whole with thousands commas."""
    unit = rng.choice(["兆円", "億円", "億円", "百万円"])
    if unit == "兆円":
        value: int | float = round(rng.uniform(1.0, 120.0), 1)
        return value, unit, f"{value:.1f}{unit}"
    value = rng.randint(12, 99_999) if unit == "億円" else rng.randint(100, 999_999)
    return value, unit, f"{value:,}{unit}"
