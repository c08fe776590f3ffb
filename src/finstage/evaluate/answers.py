"""Reading answers out of model generations, for scoring.

Two formats are scored:

* GSM8K-style numeric answers, written as ``<Answer>\\boxed{…}</Answer>``. `extract_strict` reads
  only the boxed answer, with the same reader distillation filtering uses
  (`finstage.distill.verify`), so a trace kept at distillation time is scored correct at
  evaluation time. `extract_flexible` is lm-eval's ``flexible-extract`` diagnostic: the last
  number anywhere, which tells "wrong answer" apart from "right answer, wrong format".
* EDINET-Bench-style JSON answers (`parse_edinet_json`): a ```json block with ``"prob"`` and
  ``"prediction"``. Upstream drops unparseable rows before computing ROC-AUC, so the parser
  never raises and reports failure as ``None`` fields, from which the parse rate (coverage)
  is counted.

Both numeric readers return a canonical string (``"72.0"`` → ``"72"``, ``"+5"`` → ``"5"``), so
string equality and `finstage.distill.verify.numbers_equal` agree on plain numbers.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from finstage.distill.verify import extract_boxed

__all__ = [
    "EdinetAnswer",
    "canonical_number",
    "coverage",
    "extract_flexible",
    "extract_strict",
    "parse_edinet_json",
]

_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# A number with an optional sign; the sign only counts when it does not directly follow a
# digit ("2024-05" is not "-05"). Commas count only as thousands separators ("1,234" but not
# the list "1,2,3"), so a comma-separated list still yields its last element.
_FLEXIBLE_NUMBER = re.compile(
    r"(?<![\d.])(?:(?<!\d)[-△▲])?(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?"
)
# Minus signs NFKC leaves alone; △/▲ mark negatives in Japanese financial tables.
_MINUS_SIGNS = str.maketrans({"−": "-", "△": "-", "▲": "-"})


def canonical_number(answer: str) -> str:
    """``answer`` in a canonical decimal form when it is a plain number, else unchanged.

    Why: lm-eval's ``exact_match`` compares strings, so ``"72.0"`` and ``"72"`` (or ``"-0"`` and
    ``"0"``) must come out the same. Fractions, LaTeX and non-numeric labels are returned as
    they are; compare those with `finstage.distill.verify.numbers_equal`.
    """
    if not _PLAIN_NUMBER.match(answer):
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

    Delegates to `finstage.distill.verify.extract_boxed`, which brace-balances (so
    ``\\boxed{\\frac{1}{2}}`` survives), NFKC-normalises (``１，２３４`` → ``1234``), unifies minus
    signs, and strips thousands separators, ``\\text{}`` and units. It does not require the
    ``<Answer>`` tags: lm-eval strips the ``</Answer>`` stop string from the output, and a box
    outside the tags is still the model's stated answer. An unclosed (truncated) box is None.
    The result is then put in `canonical_number` form.
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
    normalised = unicodedata.normalize("NFKC", text).translate(_MINUS_SIGNS)
    found = _FLEXIBLE_NUMBER.findall(normalised)
    if not found:
        return None
    return canonical_number(found[-1].replace(",", ""))


@dataclass(frozen=True)
class EdinetAnswer:
    """One parsed EDINET-style answer; a field is None when the model did not give it usably.

    ``prob`` is always the probability of class 1 (see `parse_edinet_json`'s
    ``positive_label``), so ``roc_auc(labels, [a.prob …])`` is oriented the same for every task.
    """

    prob: float | None
    prediction: int | str | None

    @property
    def complete(self) -> bool:
        """Both fields parsed: the rows EDINET-Bench keeps for its binary-task metrics."""
        return self.prob is not None and self.prediction is not None


def coverage(answers: Iterable[EdinetAnswer], need_prob: bool = True) -> float:
    """Share of answers that parsed: both fields, or only ``prediction`` when ``need_prob`` is
    False (industry prediction asks for no probability). nan for no answers."""
    flags = [(a.complete if need_prob else a.prediction is not None) for a in answers]
    return sum(flags) / len(flags) if flags else math.nan


_FENCE = re.compile(r"```[ \t]*(json\w*)?[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_FIELD_PATTERNS = {
    "prob": re.compile(r'["\']?prob["\']?\s*:\s*["\']?([^"\',}\s]+)'),
    "prediction": re.compile(r'["\']?prediction["\']?\s*:\s*(?:"([^"]*)"|\'([^\']*)\'|([^,}\s]+))'),
}


def _json_candidates(text: str) -> list[str]:
    """Regions that may hold the answer object, most trusted first: the last fenced block
    (```json preferred over a bare ``` block whose content is an object; an unclosed fence runs
    to the end of the text), then the whole text."""
    fenced_json, fenced_other = [], []
    for match in _FENCE.finditer(text):
        body = match.group(2)
        if match.group(1):
            fenced_json.append(body)
        elif body.lstrip().startswith("{"):
            fenced_other.append(body)
    candidates = fenced_json[-1:] + fenced_other[-1:]
    candidates.append(text)
    return candidates


def _decode_objects(region: str) -> list[dict]:
    """Every top-level JSON object that decodes in ``region``, in order."""
    decoder = json.JSONDecoder()
    objects: list[dict] = []
    i = region.find("{")
    while i >= 0:
        next_start = i + 1
        try:
            obj, next_start = decoder.raw_decode(region, i)
        except (json.JSONDecodeError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            objects.append(obj)
        i = region.find("{", max(next_start, i + 1))
    return objects


def _answer_objects(region: str) -> list[dict]:
    """The decoded objects in ``region`` that carry an answer key. If none decodes as written,
    the region is retried with control characters and trailing commas removed, as LLM JSON
    often needs (EDINET-Bench retries without control characters too)."""
    for text in (region, _TRAILING_COMMA.sub(r"\1", _CONTROL.sub("", region))):
        objects = [o for o in _decode_objects(text) if "prob" in o or "prediction" in o]
        if objects:
            return objects
    return []


def _fields_by_regex(region: str) -> dict[str, object]:
    """Last-resort field reader for objects that do not decode (unescaped quotes inside the
    reasoning string, truncated output): the last ``"prob": …`` / ``"prediction": …`` pairs."""
    found: dict[str, object] = {}
    for key, pattern in _FIELD_PATTERNS.items():
        matches = pattern.findall(region)
        if matches:
            last = matches[-1]
            found[key] = next((g for g in last if g), "") if isinstance(last, tuple) else last
    return found


def _as_prob(value: object) -> float | None:
    """A probability in [0, 1] from a number or numeric string (``"0.8"``, ``"80%"``); None for
    anything else, including out-of-range values like ``80`` (a percentage without the sign)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        s = unicodedata.normalize("NFKC", value).strip().translate(_MINUS_SIGNS)
        percent = s.endswith("%")
        s = s.rstrip("%").strip()
        try:
            number = float(s)
        except ValueError:
            return None
        if percent:
            number /= 100
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        return None
    return number


def _as_binary(value: object) -> int | None:
    """0 or 1 from an int, an integral float, a JSON boolean or a numeric string; else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        s = unicodedata.normalize("NFKC", value).strip()
        if s.lower() in ("true", "false"):
            return int(s.lower() == "true")
        try:
            value = float(s)
        except ValueError:
            return None
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    return None


def _as_label(value: object) -> str | None:
    """A class label (industry prediction): the NFKC-normalised, stripped string; None if empty
    or not a string."""
    if not isinstance(value, str):
        return None
    s = unicodedata.normalize("NFKC", value).strip()
    return s or None


def parse_edinet_json(text: str | None, positive_label: int | None = 1) -> EdinetAnswer:
    """Parse an EDINET-Bench-protocol answer: ``{"reasoning": …, "prob": …, "prediction": …}``.

    Where the answer is looked for: the last ```json fenced block (or a bare ``` block holding an
    object; an unclosed fence runs to the end), else the whole text; within it the last decoded
    JSON object that has a ``prob`` or ``prediction`` key, and if none decodes, a per-field
    regex (LLMs often leave unescaped quotes in the reasoning string). The text is NFKC-
    normalised first, so full-width digits and braces read as ASCII.

    ``positive_label``: for the binary tasks (fraud, earnings), the class that ``prob`` is the
    probability of. EDINET-Bench asks for the probability of 1 (fraud / earnings increase), the
    default; pass 0 if a prompt asks for the probability of 0, and ``prob`` is flipped to
    ``1 - prob`` so it always means P(class 1). The prediction must then be 0 or 1 (``"1"``,
    ``1.0`` and ``true`` are accepted). Pass ``None`` for label tasks (industry), where the
    prediction is a string label and ``prob`` is optional.

    Never raises on model output: anything unusable is None, including ``prob`` outside [0, 1].
    """
    if positive_label not in (0, 1, None):
        raise ValueError(f"positive_label must be 0, 1 or None, got {positive_label!r}")
    if not text:
        return EdinetAnswer(None, None)
    normalised = unicodedata.normalize("NFKC", text)
    fields: dict[str, object] = {}
    for region in _json_candidates(normalised):
        objects = _answer_objects(region)
        fields = objects[-1] if objects else _fields_by_regex(region)
        if fields:
            break
    prob = _as_prob(fields.get("prob"))
    if prob is not None and positive_label == 0:
        prob = 1.0 - prob
    raw_prediction = fields.get("prediction")
    prediction = _as_label(raw_prediction) if positive_label is None else _as_binary(raw_prediction)
    return EdinetAnswer(prob=prob, prediction=prediction)
