"""What the rule-based teacher's task builders share: the task names and the rules for asking.

Each builder (`ocr`, `caption`, `vqa`, `finqa`) reads only the parsed text layer of one page
(`PageText`) and returns records in the shared schema. What a question asks is always stated in
the page: extractive answers are substrings of the evidence line, computed answers are
`arith.compute` over numbers re-readable from cited lines. That provenance goes into ``meta`` so
`grounding.check` can re-verify it, whichever teacher wrote the record. A question may only name
what the page names once (`unique_cells`, `unique_facts`), or its answer would be ambiguous.
"""

from __future__ import annotations

from typing import Any

from finstage.pagestore import Page
from finstage.records import IMAGE_MARKER
from finstage.synth.pagetext import Fact, PageText, Row, Table

TASKS = ("ocr", "caption", "vqa", "finqa_visual", "finqa_text")


def user_image(question: str) -> dict[str, str]:
    """The first user turn of a visual record: the page marker, then the question."""
    return {"role": "user", "content": f"{IMAGE_MARKER}\n{question}"}


def page_meta(page: Page, kind: str) -> dict[str, Any]:
    """What `grounding` and the held-out split need to know of any record: its page and kind."""
    return {"page_id": page["page_id"], "doc_sha256": page["doc_sha256"], "kind": kind}


def unique_cells(pt: PageText) -> list[tuple[Table, Row, int]]:
    """(table, row, column) whose (label, column name) is unambiguous on the page."""
    counts: dict[tuple[str, str], int] = {}
    for table in pt.tables:
        for row in table.rows:
            for c in range(table.ncols):
                key = (row.label, table.columns[c])
                counts[key] = counts.get(key, 0) + 1
    out = []
    for table in pt.tables:
        for row in table.rows:
            for c, cell in enumerate(row.cells):
                if cell.value is not None and counts[(row.label, table.columns[c])] == 1:
                    out.append((table, row, c))
    return out


def unique_facts(pt: PageText) -> list[Fact]:
    subjects = [f.subject for f in pt.facts]
    return [f for f in pt.facts if subjects.count(f.subject) == 1]


def column_phrase(table: Table, c: int) -> str:
    return f"「{table.columns[c]}」" if table.named_columns else table.columns[c]


def round_robin(groups: list[list[Any]], k: int) -> list[Any]:
    """Up to ``k`` items, one from each group in turn, so no kind of question crowds out the rest;
    the chosen items are popped from ``groups``."""
    out: list[Any] = []
    while len(out) < k and any(groups):
        for g in groups:
            if g and len(out) < k:
                out.append(g.pop(0))
    return out
