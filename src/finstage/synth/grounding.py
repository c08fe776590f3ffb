"""Re-verify a teacher's record against the page text it claims to come from.

Any teacher (rule-based now, an LLM endpoint later) must pass this filter: extractive answers
must be substrings of cited page lines, computed answers must follow from operands re-read from
the cited lines, OCR targets must be the page's own lines. `check` returns None when a record
is grounded, otherwise the reason, which the synthesize stage counts per task. A record quoting
page text that spells the image marker (masked by the teacher) is rejected first: the marker is
reserved for the record's own page.
"""

from __future__ import annotations

import re
from decimal import Decimal

from finstage.pagestore import Page
from finstage.records import IMAGE_MARKER, Record, quotes_masked_marker
from finstage.synth import arith
from finstage.synth.pagetext import page_lines, parse_cell, to_decimal


def check(record: Record, page: Page) -> str | None:
    if quotes_masked_marker(record):
        return f"quotes page text spelling {IMAGE_MARKER}, which records reserve for the page image"
    lines = page_lines(page["text"])
    source, meta = record["source"], record["meta"]
    if meta.get("page_id") != page["page_id"]:
        return f"meta.page_id {meta.get('page_id')!r} is not the page {page['page_id']!r}"
    if record["images"] and record["images"] != [page["page_id"]]:
        return f"images {record['images']} do not refer to page {page['page_id']}"
    if source == "ocr":
        return _check_ocr(record, lines)
    if source == "caption":
        text = "\n".join(lines) + "\n" + "".join(lines)  # a quoted name may wrap onto the next line
        missing = [q for q in meta.get("quoted", []) if q not in text]
        quoted = re.findall(r"「([^」]+)」", record["answer"] or "")
        missing += [q for q in quoted if q not in text]
        return f"caption quotes text not on the page: {missing}" if missing else None
    if source == "vqa":
        return _check_extractive(record, lines)
    if source in ("finqa_visual", "finqa_text"):
        return _check_computed(record, lines)
    return f"no grounding rule for source {source!r}"


def _check_ocr(record: Record, lines: list[str]) -> str | None:
    target = record["answer"] or ""
    if record["messages"][-1]["content"] != target:
        return "OCR target differs from the answer field"
    start = record["meta"].get("first_line_idx", 0)
    if not 0 <= start < len(lines):
        return f"OCR start line {start} is not on the page"
    page_text = "\n".join(lines[start:])
    if not target or not page_text.startswith(target):
        return "OCR target is not the beginning of the page text"
    rest = page_text[len(target) :]
    if record["meta"].get("truncated") != "chars" and rest and not rest.startswith("\n"):
        return "OCR target is not cut at a line boundary"
    return None


def _check_extractive(record: Record, lines: list[str]) -> str | None:
    meta = record["meta"]
    idxs = meta.get("line_idxs") or []
    if not idxs or any(not 0 <= i < len(lines) for i in idxs):
        return f"evidence line indices {idxs} are not on the page"
    evidence = "\n".join(lines[i] for i in idxs)
    if meta.get("evidence") != evidence:
        return "evidence is not the cited page lines"
    if record["messages"][-1]["content"] != evidence:
        return "the evidence turn does not quote the cited lines"
    answer = record["answer"] or ""
    if not answer or answer not in evidence.replace("\n", ""):
        return f"answer {answer!r} is not in the evidence"
    return None


def _check_computed(record: Record, lines: list[str]) -> str | None:
    meta = record["meta"]
    values: list[Decimal] = []
    for o in meta.get("operands", []):
        i = o["line_idx"]
        if not 0 <= i < len(lines):
            return f"operand line {i} is not on the page"
        # a sentence operand may wrap onto the next line
        text = lines[i] if i + 1 >= len(lines) else lines[i] + lines[i + 1]
        if o["raw"] not in text:
            return f"operand {o['raw']!r} is not on line {i}"
        if o["name"] not in text and o["name"] not in (lines[i - 1] + lines[i] if i else ""):
            return f"operand name {o['name']!r} is not on line {i}"
        reread = _reread(o["raw"], o.get("kind", "cell"))
        if reread is None or reread != Decimal(o["value"]):
            return f"operand {o['raw']!r} reads as {reread}, meta says {o['value']}"
        values.append(reread)
    if not values:
        return "no operands recorded"
    result = arith.compute(meta["op"], values, meta.get("direction"))
    rounded = arith.round_half_up(result, meta["places"])
    if str(rounded) != meta["result"]:
        return f"recomputed {rounded}, meta says {meta['result']}"
    expected = arith.format_answer(meta["op"], result, meta["places"], meta.get("unit"))
    if record["answer"] != expected:
        return f"answer {record['answer']!r} is not the recomputed {expected!r}"
    if not record["messages"][-1]["content"].endswith(expected):
        return "assistant reply does not end with the answer"
    for i in meta.get("context_line_idxs", []):
        if lines[i] not in record["messages"][0]["content"]:
            return f"context line {i} is not in the prompt"
    return None


def _reread(raw: str, kind: str) -> Decimal | None:
    if kind == "amount":  # "1,234億円"
        m = re.match(r"^([0-9０-９,，.．]+)", raw)
        return to_decimal(m.group(1)) if m else None
    if kind == "pct":  # "3.2%増"
        m = re.match(r"^([0-9０-９.．]+)", raw)
        return to_decimal(m.group(1)) if m else None
    parsed = parse_cell(raw)
    return parsed[0] if parsed else None
