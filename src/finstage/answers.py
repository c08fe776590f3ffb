"""Answer extraction and numeric comparison, shared by distillation filtering and evaluation.

A distilled trace is kept only if its final ``\\boxed{}`` answer equals the gold number, and an
evaluated model is scored the same way, so both sides must read answers identically:
the last ``\\boxed{...}`` (brace-balanced, so ``\\boxed{\\frac{1}{2}}`` works), NFKC-normalised
(``１２３`` → ``123``), with thousands commas, ``\\text{...}`` wrappers, currency signs and
trailing units (``1,200円`` → ``1200``) stripped. △/▲ mean minus, as in Japanese tables.

Evaluation reads GSM8K-style answers two ways: `extract_strict` (the boxed answer, the reader
above) and `extract_flexible` (lm-eval's ``flexible-extract`` diagnostic: the last number
anywhere, which tells "wrong answer" apart from "right answer, wrong format"). Both return a
canonical string (``"72.0"`` → ``"72"``, ``"+5"`` → ``"5"``), so string equality and
`numbers_equal` agree on plain numbers.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from finstage.textnorm import nfkc

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
    s = nfkc(answer).strip()
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


# A number with an optional sign; the sign only counts when it does not directly follow a
# digit ("2024-05" is not "-05"). Commas count only as thousands separators ("1,234" but not
# the list "1,2,3"), so a comma-separated list still yields its last element.
_FLEXIBLE_NUMBER = re.compile(
    r"(?<![\d.])(?:(?<!\d)[-△▲])?(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?"
)
# Minus signs NFKC leaves alone; △/▲ mark negatives in Japanese financial tables.
MINUS_SIGNS = str.maketrans({"−": "-", "△": "-", "▲": "-"})


def canonical_number(answer: str) -> str:
    """``answer`` in a canonical decimal form when it is a plain number, else unchanged.

    Why: lm-eval's ``exact_match`` compares strings, so ``"72.0"`` and ``"72"`` (or ``"-0"`` and
    ``"0"``) must come out the same. Fractions, LaTeX and non-numeric labels are returned as
    they are; compare those with `numbers_equal`.
    """
    if not _PLAIN.match(answer):
        return answer
    try:
        value = Decimal(answer)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return answer
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_strict(text: str | None) -> str | None:
    """The normalised content of the last ``\\boxed{…}`` in ``text``; None when there is none.

    The reader distillation filters with (`extract_boxed`), so a trace kept at distillation time
    is scored correct at evaluation time. It does not require the ``<Answer>`` tags: lm-eval
    strips the ``</Answer>`` stop string from the output, and a box outside the tags is still
    the model's stated answer. An unclosed (truncated) box is None. The result is in
    `canonical_number` form.
    """
    if not text:
        return None
    boxed = extract_boxed(text)
    return canonical_number(boxed) if boxed is not None else None


def extract_flexible(text: str | None) -> str | None:
    """The last number in ``text`` after NFKC, like lm-eval's ``flexible-extract``; else None.

    lm-eval's pattern ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` also matches digit-less runs such as
    ``".."``; this reader requires a digit, accepts ``−``/``△``/``▲`` as minus, drops thousands
    separators, and returns `canonical_number` form. Because it ignores the box it differs from
    `extract_strict` whenever the model keeps writing numbers after its boxed answer.
    """
    if not text:
        return None
    found = _FLEXIBLE_NUMBER.findall(nfkc(text).translate(MINUS_SIGNS))
    if not found:
        return None
    return canonical_number(found[-1].replace(",", ""))
