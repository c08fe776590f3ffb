"""Reading the probability out of an EDINET-Bench-protocol answer.

The generation protocol asks for a ```json block ``{"reasoning": …, "prob": …, "prediction":
…}``. Models write broken JSON often (unescaped quotes in the reasoning, trailing commas,
control characters, truncated output), and upstream drops unparseable rows before computing
ROC-AUC, so the reader never raises: anything unusable is None, from which the parse rate
(coverage) is counted.
"""

from __future__ import annotations

import json
import math
import re

from finstage.answers import MINUS_SIGNS
from finstage.textnorm import nfkc

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
        s = nfkc(value).strip().translate(MINUS_SIGNS)
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


def answer_probability(text: str | None) -> float | None:
    """``prob`` of an EDINET-Bench answer, the model's probability of class 1; None if unusable.

    Where the answer is looked for: the last ```json fenced block (or a bare ``` block holding an
    object; an unclosed fence runs to the end), else the whole text; within it the last decoded
    JSON object that has a ``prob`` or ``prediction`` key, and if none decodes, a per-field
    regex (LLMs often leave unescaped quotes in the reasoning string). The text is NFKC-
    normalised first, so full-width digits and braces read as ASCII. ``prob`` outside [0, 1]
    (``80`` for 80%) is None.
    """
    if not text:
        return None
    fields: dict[str, object] = {}
    for region in _json_candidates(nfkc(text)):
        objects = _answer_objects(region)
        fields = objects[-1] if objects else _fields_by_regex(region)
        if fields:
            break
    return _as_prob(fields.get("prob"))
