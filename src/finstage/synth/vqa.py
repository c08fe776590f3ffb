"""Two-turn extractive VQA: a question answered by a substring of the page, then its evidence.

The second turn asks for the cited lines verbatim, so the model learns to point at where an answer
stands, and `grounding` can check the answer against exactly those lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from finstage.config import require
from finstage.pagestore import Page
from finstage.records import Record, make_record
from finstage.synth.pagetext import PageText
from finstage.synth.tasks import (
    column_phrase,
    page_meta,
    round_robin,
    unique_cells,
    unique_facts,
    user_image,
)

EVIDENCE_PROMPTS = (
    "その答えの根拠となる箇所を、ページの記載どおりに抜き出してください。",
    "根拠となる記述をページからそのまま引用してください。",
)


@dataclass
class VqaConfig:
    per_page: int  # 2-turn questions per page

    def check(self, where: str) -> None:
        require(self.per_page >= 0, f"{where}.per_page", f"must be >= 0, got {self.per_page}")


@dataclass(frozen=True)
class _Extract:
    kind: str
    question: str
    answer: str
    evidence: str
    line_idxs: tuple[int, ...]


def vqa_candidates(pt: PageText) -> dict[str, list[_Extract]]:
    kinds: dict[str, list[_Extract]] = {
        "cell": [],
        "fact_amount": [],
        "fact_rate": [],
        "unit": [],
        "title": [],
    }
    for table, row, c in unique_cells(pt):
        cell = row.cells[c]
        unit = "" if cell.percent or not table.unit else f"（単位：{table.unit}）"
        q = f"表中の「{row.label}」の{column_phrase(table, c)}の値を答えてください{unit}。"
        kinds["cell"].append(_Extract("cell", q, cell.raw, row.line, (row.line_idx,)))
    for fact in unique_facts(pt):
        kinds["fact_amount"].append(
            _Extract(
                "fact_amount",
                f"「{fact.subject}」の金額はいくらと書かれていますか。",
                fact.amount,
                fact.evidence,
                fact.line_idxs,
            )
        )
        question = (
            f"「{fact.subject}」は全体の何%を占めていますか。"
            if fact.kind == "share"
            else f"「{fact.subject}」の{fact.base}の増減率を答えてください。"
        )
        kinds["fact_rate"].append(
            _Extract("fact_rate", question, fact.rate, fact.evidence, fact.line_idxs)
        )
    units = {t.unit for t in pt.tables if t.unit}
    if pt.unit and pt.unit_idx is not None and units <= {pt.unit}:
        kinds["unit"].append(
            _Extract(
                "unit",
                "このページの図表の金額の単位は何ですか。",
                pt.unit,
                pt.lines[pt.unit_idx],
                (pt.unit_idx,),
            )
        )
    if pt.title and pt.title_idx is not None:
        kinds["title"].append(
            _Extract(
                "title",
                "この資料のタイトルは何ですか。",
                pt.title,
                pt.lines[pt.title_idx],
                (pt.title_idx,),
            )
        )
    return kinds


def build_vqa(page: Page, pt: PageText, cfg: VqaConfig, rng: random.Random) -> list[Record]:
    kinds = vqa_candidates(pt)
    for items in kinds.values():
        rng.shuffle(items)
    main = [kinds["cell"], kinds["fact_amount"], kinds["fact_rate"]]
    rng.shuffle(main)
    chosen = round_robin(main, cfg.per_page)
    extras = round_robin([kinds["unit"], kinds["title"]], 2)
    # page-level questions (unit, title) are easy: use them sparingly, or when nothing else is left
    while extras and (len(chosen) < cfg.per_page or (chosen and rng.random() < 0.15)):
        if len(chosen) >= cfg.per_page:
            chosen.pop()
        chosen.append(extras.pop(0))
        if len(chosen) >= cfg.per_page:
            break
    records = []
    for k, ex in enumerate(chosen):
        messages = [
            user_image(ex.question),
            {"role": "assistant", "content": ex.answer},
            {"role": "user", "content": rng.choice(EVIDENCE_PROMPTS)},
            {"role": "assistant", "content": ex.evidence},
        ]
        meta = page_meta(page, ex.kind) | {
            "question": ex.question,
            "evidence": ex.evidence,
            "line_idxs": list(ex.line_idxs),
        }
        records.append(
            make_record(
                id=f"vqa:{page['page_id']}:{k}",
                source="vqa",
                images=[page["page_id"]],
                messages=messages,
                answer=ex.answer,
                meta=meta,
            )
        )
    return records
