"""Caption records: a short description that quotes only names the page prints.

The title, two row labels of the largest table and the first fact's subject are quoted as written,
so `grounding` can find every quoted name on the page.
"""

from __future__ import annotations

import random

from finstage.pagestore import Page
from finstage.records import Record, make_record
from finstage.synth.pagetext import PageText
from finstage.synth.tasks import page_meta, user_image

CAPTION_PROMPTS = (
    "この画像の内容を簡潔に説明してください。",
    "このページには何が書かれていますか。短く説明してください。",
)


def build_caption(page: Page, pt: PageText, rng: random.Random) -> list[Record]:
    if pt.title is None:
        return []
    parts = [f"「{pt.title}」のページです。"]
    quoted = [pt.title]
    if pt.tables:
        table = max(pt.tables, key=lambda t: len(t.rows))
        labels = [r.label for r in table.rows[:2]]
        quoted += labels
        unit = f"{table.unit}単位の" if table.unit else ""
        parts.append(
            f"{unit}表があり、{'、'.join(f'「{x}」' for x in labels)}などの項目が並んでいます。"
        )
    if pt.facts:
        fact = pt.facts[0]
        quoted.append(fact.subject)
        what = "全体に占める割合" if fact.kind == "share" else fact.base
        parts.append(f"本文では「{fact.subject}」の金額と{what}が述べられています。")
    caption = "".join(parts)
    return [
        make_record(
            id=f"caption:{page['page_id']}",
            source="caption",
            images=[page["page_id"]],
            messages=[
                user_image(rng.choice(CAPTION_PROMPTS)),
                {"role": "assistant", "content": caption},
            ],
            answer=caption,
            meta=page_meta(page, "caption") | {"quoted": quoted},
        )
    ]
