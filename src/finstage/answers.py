"""Answer extraction and numeric comparison, shared by distillation filtering and evaluation.

A distilled trace is kept only if its final ``\\boxed{}`` answer equals the gold number, and an
evaluated model is scored the same way, so both sides must read answers identically:
the last ``\\boxed{...}`` (brace-balanced, so ``\\boxed{\\frac{1}{2}}`` works), NFKC-normalised
(``１２３`` → ``123``), with thousands commas, ``\\text{...}`` wrappers, currency signs and
trailing units (``1,200円`` → ``1200``) stripped. △/▲ mean minus, as in Japanese tables.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from fractions import Fraction

_BOX_OPENERS = ("\\boxed{", "\\fbox{")
_TEXT_WRAPPER = re.compile(r"\\(?:text|mathrm|textrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}$")
_PLAIN = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_LEADING_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+(?:\.\d*)?)?")
_MINUS = {"−": "-", "–": "-", "—": "-", "△": "-", "▲": "-", "－": "-"}


def last_boxed(text: str) -> str | None:
    """The raw content of the last brace-balanced ``\\boxed{...}`` (or ``\\fbox{...}``) in text."""
    if not text:
        return None
    start = max(text.rfind(opener) for opener in _BOX_OPENERS)
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, j = 1, i
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
        j += 1
    return None  # unbalanced: the answer was cut off


def normalize_answer(answer: str) -> str:
    """NFKC, minus signs unified, ``\\text{}`` unwrapped, commas/spaces/currency removed, trailing
    units and a trailing full stop dropped: ``'△1,200円'`` → ``'-1200'``;
    ``'\\frac{1}{2}'`` is kept as it is."""
    s = unicodedata.normalize("NFKC", answer).strip()
    for a, b in _MINUS.items():
        s = s.replace(a, b)
    s = _TEXT_WRAPPER.sub(r"\1", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\,", "").replace("\\!", "")
    s = s.replace("\\%", "%").replace("¥", "").replace("￥", "")
    s = re.sub(r"(?<=\d),(?=\d)", "", s)
    s = re.sub(r"\s+", "", s)
    s = s.rstrip("。.")
    if "=" in s:  # "x=5" → "5"
        s = s.rsplit("=", 1)[1]
    if s.startswith("\\") or "frac" in s:
        return s
    # strip a trailing unit (円, %, 個, 人, 百万円, dollars…) after a number
    m = _LEADING_NUMBER.match(s)
    if m and m.end() < len(s) and not re.match(r"[0-9.eE]", s[m.end()]):
        return m.group(0)
    return s


def extract_boxed(text: str) -> str | None:
    """The normalised content of the last ``\\boxed{}`` in text, or None when there is none."""
    raw = last_boxed(text)
    if raw is None:
        return None
    norm = normalize_answer(raw)
    return norm or None


def parse_number(value: object) -> Fraction | None:
    """A number from an int/float/Decimal/Fraction or an answer string; None when not numeric."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Fraction):
        return Fraction(value)
    if isinstance(value, float | Decimal):
        try:
            return Fraction(value)
        except (ValueError, OverflowError):
            return None
    if not isinstance(value, str):
        return None
    s = normalize_answer(value)
    m = _FRAC.match(s)
    if m:
        num, den = parse_number(m[2]), parse_number(m[3])
        if num is None or not den:
            return None
        return -num / den if m[1] else num / den
    if "/" in s:
        num_s, _, den_s = s.partition("/")
        num, den = parse_number(num_s), parse_number(den_s)
        return num / den if num is not None and den else None
    if s.endswith("%"):
        s = s[:-1]
    if not _PLAIN.match(s):
        return None
    try:
        return Fraction(Decimal(s))
    except (InvalidOperation, ValueError):
        return None


def numbers_equal(a: object, b: object, rel_tol: float = 1e-6) -> bool:
    """True when both parse as numbers and agree (to a relative tolerance `rel_tol`)."""
    x, y = parse_number(a), parse_number(b)
    if x is None or y is None:
        return False
    if x == y:
        return True
    return abs(x - y) <= Fraction(rel_tol) * max(abs(x), abs(y), Fraction(1))


_FINAL_MARKERS = re.compile(r"(?:答え|回答|解答|Answer)\s*[:：]\s*(.+)")
_ANY_NUMBER = re.compile(r"[△▲\-−]?\d[\d,，]*(?:\.\d+)?")


def extract_final_answer(text: str) -> str | None:
    """A final answer from free text: the last ``\\boxed{}``, else the text after the last
    ``答え：``, else the last number in the text; normalised like `extract_boxed`."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    if not text:
        return None
    markers = _FINAL_MARKERS.findall(unicodedata.normalize("NFKC", text))
    if markers:
        return normalize_answer(markers[-1].strip()) or None
    numbers = _ANY_NUMBER.findall(unicodedata.normalize("NFKC", text))
    return normalize_answer(numbers[-1]) if numbers else None
