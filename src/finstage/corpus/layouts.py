"""The document layouts: 予算 and 決算 tables, and 報道発表/お知らせ notices, with their truth.

Each layout draws its content from one ``random.Random``, writes the PDF page by page and returns
the truth record of everything it printed (see `finstage.corpus.generate` for its format), so
the numbers a question is asked about are known exactly.
"""

from __future__ import annotations

import random
from typing import Any

from finstage.corpus.pdfwriter import PdfWriter
from finstage.corpus.vocabulary import (
    COUNT_SUBJECTS,
    EXPENDITURE,
    HEADINGS,
    PLAIN,
    REVENUE,
    SUBJECTS,
    TOPICS,
    magnitude,
    percent,
    row_labels,
)


def fmt_int(value: int) -> str:
    """Japanese government style: thousands commas, △ for negatives."""
    return f"△{-value:,}" if value < 0 else f"{value:,}"


def table_document(
    layout: str, rng: random.Random, pages: int, rows_per_page: int, era: int, org: str
) -> tuple[dict, bytes]:
    """A budget or settlement table over about ``pages`` pages, its caption repeated with （続き）;
    the last row is the total of the rows above it."""
    side = rng.choice(["歳入", "歳出"])
    fy = f"令和{era}年度"
    rpp = rows_per_page
    n_rows = max(3, rng.randint((pages - 1) * rpp + 1, pages * rpp))
    labels = row_labels(REVENUE if side == "歳入" else EXPENDITURE, n_rows - 1, rng)
    values: list[list[int]] = []
    for _ in labels:
        first = magnitude(rng)
        if layout == "budget":
            second = first + (int(round(first * rng.uniform(-0.08, 0.12))) or 1)
        else:
            low, high = (0.85, 1.01) if side == "歳出" else (0.93, 1.08)
            second = int(round(first * rng.uniform(low, high)))
            second = second if second != first else first - 1
        values.append([first, second, second - first])
    totals = [sum(v[i] for v in values) for i in range(3)]
    rows = [*zip(labels, values, strict=True), (f"{side}合計", totals)]

    if layout == "budget":
        title = f"{fy} 一般会計{side}予算"
        columns = ["区分", "当初予算額", "補正後予算額", "増減額"]
        caption = f"第1表 {side}予算の内訳"
        intro = (
            f"本資料は、{org}の{fy}一般会計{side}予算について、当初予算及び補正後予算の状況を"
            f"取りまとめたものである。"
        )
        subject, diff_sentence = (
            f"補正後予算の{side}合計",
            "当初予算に対する補正額は{d}百万円である。",
        )
        diff_label = "補正額"
    else:
        title = f"{fy} 一般会計{side}決算"
        columns = ["区分", "予算額", "決算額", "差額"]
        caption = f"第1表 {side}決算の内訳"
        intro = f"本資料は、{org}の{fy}一般会計{side}決算の概要を示したものである。"
        subject, diff_sentence = f"{side}決算額の合計", "予算額に対する差額は{d}百万円となった。"
        diff_label = "予算額に対する差額"

    pct, up = percent(rng), rng.random() < 0.65
    direction = "増" if up else "減"
    s_total = f"{subject}は、前年度比{pct:.1f}%{direction}の{totals[1]:,}百万円となった。"
    s_diff = diff_sentence.format(d=fmt_int(totals[2]))
    facts = [
        _fact(s_total, subject, totals[1], "百万円", f"{totals[1]:,}百万円", 0),
        _fact(
            s_total, f"{subject}の前年度比", pct if up else -pct, "%", f"{pct:.1f}%{direction}", 0
        ),
        _fact(s_diff, diff_label, totals[2], "百万円", f"{fmt_int(totals[2])}百万円", 0),
    ]

    b = PdfWriter()
    truth_rows = []
    for chunk_no in range(0, len(rows), rpp):
        chunk = rows[chunk_no : chunk_no + rpp]
        b.new_page()
        if chunk_no == 0:
            b.line(title, 15.0, "center", gap=24.0)
            b.line(org, 10.5, "right", gap=26.0)
            b.paragraph(intro + s_total + s_diff)
            b.line(caption, 11.0, gap=16.0)
        else:
            b.line(f"{caption}（続き）", 11.0, gap=16.0)
        b.line("（単位：百万円）", 9.5, "right", gap=8.0)
        b.table(columns, [[label, *(fmt_int(v) for v in vals)] for label, vals in chunk])
        truth_rows += [
            {"label": label, "values": list(vals), "page": b.index} for label, vals in chunk
        ]
    data = b.finish({"title": title, "author": org, "subject": caption})
    table = {
        "caption": caption,
        "columns": columns,
        "unit": "百万円",
        "page": truth_rows[0]["page"],
        "pages": sorted({r["page"] for r in truth_rows}),
        "rows": truth_rows,
    }
    truth = {
        "title": title,
        "unit": "百万円",
        "pages": b.index + 1,
        "tables": [table],
        "facts": facts,
    }
    return truth, data


def _fact(
    sentence: str, label: str, value: int | float, unit: str, text: str, page: int
) -> dict[str, Any]:
    return {
        "sentence": sentence,
        "label": label,
        "value": value,
        "unit": unit,
        "text": text,
        "page": page,
    }


def _notice_sentences(
    rng: random.Random, subjects: list[str], counts: list[str], page: int
) -> list[tuple[str, list[dict]]]:
    """3–4 sentences for one section; each figure is recorded as a fact."""
    out: list[tuple[str, list[dict]]] = []
    for _ in range(rng.randint(3, 4)):
        kind = rng.choice(["A", "A", "B", "C", "D"])
        if kind == "D" and not counts:
            kind = "A"
        if kind in "ABC" and not subjects:
            kind = "P"
        if kind in ("A", "B"):
            subject = subjects.pop()
            amount, pct, up = rng.randint(12, 99_999), percent(rng), rng.random() < 0.6
            direction = "増" if up else "減"
            a_text, p_text = f"{amount:,}億円", f"{pct:.1f}%{direction}"
            if kind == "A":
                s = f"{subject}は、前年度比{p_text}の{a_text}となりました。"
            else:
                s = f"{subject}は{a_text}（前年度比{p_text}）となっています。"
            facts = [
                _fact(s, subject, amount, "億円", a_text, page),
                _fact(s, f"{subject}の前年度比", pct if up else -pct, "%", p_text, page),
            ]
        elif kind == "C":
            subject = subjects.pop()
            amount, share = rng.randint(12, 9_999), round(rng.uniform(1.0, 60.0), 1)
            s = f"このうち{subject}は{amount:,}億円で、全体の{share:.1f}%を占めています。"
            facts = [
                _fact(s, subject, amount, "億円", f"{amount:,}億円", page),
                _fact(s, f"{subject}の構成比", share, "%", f"{share:.1f}%", page),
            ]
        elif kind == "D":
            subject = counts.pop()
            n, d = rng.randint(20, 9_999), rng.randint(1, 999)
            up = rng.random() < 0.5
            s = f"{subject}の件数は{n:,}件で、前年度から{d:,}件{'増加' if up else '減少'}しました。"
            facts = [
                _fact(s, f"{subject}の件数", n, "件", f"{n:,}件", page),
                _fact(s, f"{subject}の件数の前年度差", d if up else -d, "件", f"{d:,}件", page),
            ]
        else:
            s, facts = rng.choice(PLAIN), []
        out.append((s, facts))
    if rng.random() < 0.4:
        out.append((rng.choice(PLAIN), []))
    return out


def notice_document(rng: random.Random, pages: int, era: int, org: str) -> tuple[dict, bytes]:
    """A press release or notice whose sentences carry the figures (no tables)."""
    kind = rng.choice(["報道発表", "お知らせ"])
    topic = rng.choice(TOPICS)
    title = f"令和{era}年度{org}{topic}について"
    date = f"令和{era}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"
    subjects = rng.sample(SUBJECTS, len(SUBJECTS))
    counts = rng.sample(COUNT_SUBJECTS, len(COUNT_SUBJECTS))
    facts: list[dict] = []
    b = PdfWriter()
    section = 0
    headings = rng.sample(HEADINGS, len(HEADINGS))
    for p in range(pages):
        b.new_page()
        if p == 0:
            b.line(title, 14.0, "center", gap=22.0)
            b.line(f"{kind} {date}", 10.0, "right", gap=15.0)
            b.line(org, 10.0, "right", gap=26.0)
        for _ in range(rng.randint(1, 2)):
            section += 1
            b.line(f"{section}．{headings[(section - 1) % len(headings)]}", 11.5, gap=20.0)
            sentences = _notice_sentences(rng, subjects, counts, p)
            b.paragraph("".join(s for s, _ in sentences))
            facts += [f for _, fs in sentences for f in fs]
            b.y += 8.0
        if p == pages - 1:
            b.y += 12.0
            b.line("（問い合わせ先）", 10.0)
            b.line(f"{org}総務課 内線{rng.randint(1000, 9999)}", 10.0)
    data = b.finish({"title": title, "author": org, "subject": kind})
    truth = {"title": title, "unit": None, "pages": b.index + 1, "tables": [], "facts": facts}
    return truth, data
