"""The document layouts: 予算 and 決算 tables, and 報道発表/お知らせ notices, with their truth.

Each layout draws its content from one ``random.Random``, writes the PDF page by page and returns
the truth record of everything it printed (see `finstage.corpus.generate` for its format), so
the numbers a question is asked about are known exactly. A `Style` adds what real ministry PDFs
mix in: charts, two-column notice pages, a scanned last page, full-width digits.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from finstage.corpus.charts import Point, draw_chart
from finstage.corpus.numerals import (
    fiscal_year,
    fullwidth,
    random_amount,
    random_date,
    wareki,
)
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


@dataclass(frozen=True)
class Style:
    """What a document mixes in besides its tables and prose (drawn per document)."""

    charts: int  # charts to draw; one that does not fit goes on a page of its own
    two_column: bool  # notice pages set in two columns (table documents ignore it)
    scan: bool  # the last page becomes an image-only scan
    fullwidth_share: float  # chance that a date or amount in prose is printed in full-width digits


def _printed(rng: random.Random, style: Style, text: str) -> str:
    return fullwidth(text) if rng.random() < style.fullwidth_share else text


def _date_fact(
    rng: random.Random, style: Style, date: dt.date, label: str, line: str, page: int
) -> dict[str, Any]:
    """The fact of a 和暦 date printed in ``line`` (where it says ``{date}``); the fact's
    sentence is the line as printed."""
    text = _printed(rng, style, wareki(date))
    return _fact(line.format(date=text), label, date.isoformat(), "date", text, page)


def _series(rng: random.Random, era: int, last: int | float, unit: str) -> list[Point]:
    """Five fiscal years up to 令和``era``年度 ending at ``last``, each year within ±8%."""
    values = [last]
    for _ in range(4):
        prev = values[0] / (1 + rng.uniform(-0.08, 0.08))
        values.insert(0, round(prev, 1) if unit == "兆円" else max(1, int(round(prev))))
    return [
        (fiscal_year(era - 4 + k), v, f"{v:.1f}" if unit == "兆円" else f"{v:,}")
        for k, v in enumerate(values)
    ]


def fmt_int(value: int) -> str:
    """Japanese government style: thousands commas, △ for negatives."""
    return f"△{-value:,}" if value < 0 else f"{value:,}"


def table_document(
    layout: str,
    rng: random.Random,
    pages: int,
    rows_per_page: int,
    era: int,
    org: str,
    style: Style,
) -> tuple[dict, bytes]:
    """A budget or settlement table over about ``pages`` pages, its caption repeated with （続き）;
    the last row is the total of the rows above it. Its charts follow the table: the largest
    items as horizontal bars, then the total over five years."""
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
        note = "補正後予算額は、第1次補正後の計数である。"
        intro = (
            f"本資料は、{org}の{fy}一般会計{side}予算{{mark}}について、当初予算及び補正後予算の"
            f"状況を取りまとめたものである。"
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
        note = "決算額は、出納整理期間終了後の確定値である。"
        intro = f"本資料は、{org}の{fy}一般会計{side}決算{{mark}}の概要を示したものである。"
        subject, diff_sentence = f"{side}決算額の合計", "予算額に対する差額は{d}百万円となった。"
        diff_label = "予算額に対する差額"

    pct, up = percent(rng), rng.random() < 0.65
    direction = "増" if up else "減"
    total_text = _printed(rng, style, f"{totals[1]:,}百万円")
    diff_text = _printed(rng, style, f"{fmt_int(totals[2])}百万円")
    s_total = f"{subject}は、前年度比{pct:.1f}%{direction}の{total_text}となった。"
    s_diff = diff_sentence.replace("{d}百万円", diff_text)
    date_fact = _date_fact(rng, style, random_date(rng, era), "公表日", "{date} 公表", 0)
    facts = [
        date_fact,
        _fact(s_total, subject, totals[1], "百万円", total_text, 0),
        _fact(
            s_total, f"{subject}の前年度比", pct if up else -pct, "%", f"{pct:.1f}%{direction}", 0
        ),
        _fact(s_diff, diff_label, totals[2], "百万円", diff_text, 0),
    ]

    b = PdfWriter(header=f"{title}（{org}）")
    truth_rows = []
    for chunk_no in range(0, len(rows), rpp):
        chunk = rows[chunk_no : chunk_no + rpp]
        b.new_page()
        if chunk_no == 0:
            b.line(title, 15.0, "center", gap=24.0)
            b.line(date_fact["sentence"], 10.0, "right", gap=15.0)
            b.line(org, 10.5, "right", gap=26.0)
            b.paragraph(intro.format(mark=b.footnote(note)) + s_total + s_diff)
            b.line(caption, 11.0, gap=16.0)
        else:
            b.line(f"{caption}（続き）", 11.0, gap=16.0)
        b.line("（単位：百万円）", 9.5, "right", gap=8.0)
        b.table(columns, [[label, *(fmt_int(v) for v in vals)] for label, vals in chunk])
        truth_rows += [
            {"label": label, "values": list(vals), "page": b.index} for label, vals in chunk
        ]
    charts = []
    source = f"出典：{org}調べ。"
    for k in range(style.charts):
        if k == 0:
            top = sorted(rows[:-1], key=lambda r: -r[1][1])[:5]
            points = [(label, vals[1], f"{vals[1]:,}") for label, vals in top]
            chart_title = f"主な{side}の{columns[2]}"
            charts.append(draw_chart(b, "bar", "horizontal", chart_title, "百万円", points, source))
        else:
            kind = rng.choice(["bar", "line"])
            points = _series(rng, era, totals[1], "百万円")
            chart_title = f"{side}{columns[2]}の推移"
            charts.append(draw_chart(b, kind, "vertical", chart_title, "百万円", points, source))
        b.y += 12.0
    if style.scan:
        b.scan(rng)
    data, rotations = b.finish({"title": title, "author": org, "subject": caption})
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
        "charts": charts,
        "page_info": b.page_info(rotations),
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
    rng: random.Random,
    subjects: list[str],
    counts: list[str],
    page: int,
    era: int,
    style: Style,
) -> list[tuple[str, list[dict]]]:
    """3–4 sentences for one section; each figure (and 和暦 date) is recorded as a fact."""
    out: list[tuple[str, list[dict]]] = []
    for _ in range(rng.randint(3, 4)):
        kind = rng.choice(["A", "A", "B", "C", "D", "E"])
        if kind == "D" and not counts:
            kind = "A"
        if kind in "ABCE" and not subjects:
            kind = "P"
        if kind in "ABCE":
            subject = subjects.pop()
            amount, unit, a_text = random_amount(rng)
            a_text = _printed(rng, style, a_text)
        if kind in ("A", "B"):
            pct, up = percent(rng), rng.random() < 0.6
            direction = "増" if up else "減"
            p_text = f"{pct:.1f}%{direction}"
            if kind == "A":
                s = f"{subject}は、前年度比{p_text}の{a_text}となりました。"
            else:
                s = f"{subject}は{a_text}（前年度比{p_text}）となっています。"
            facts = [
                _fact(s, subject, amount, unit, a_text, page),
                _fact(s, f"{subject}の前年度比", pct if up else -pct, "%", p_text, page),
            ]
        elif kind == "C":
            share = round(rng.uniform(1.0, 60.0), 1)
            s = f"このうち{subject}は{a_text}で、全体の{share:.1f}%を占めています。"
            facts = [
                _fact(s, subject, amount, unit, a_text, page),
                _fact(s, f"{subject}の構成比", share, "%", f"{share:.1f}%", page),
            ]
        elif kind == "E":
            line = f"{{date}}現在の{subject}は{a_text}となっています。"
            date_fact = _date_fact(
                rng, style, random_date(rng, era + 1), f"{subject}の基準日", line, page
            )
            s = date_fact["sentence"]
            facts = [date_fact, _fact(s, subject, amount, unit, a_text, page)]
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


def notice_document(
    rng: random.Random, pages: int, era: int, org: str, style: Style
) -> tuple[dict, bytes]:
    """A press release or notice whose sentences carry the figures (no tables); in two columns
    below the title block when ``style.two_column``; its charts show one subject over five
    years, each after a page's sections."""
    kind = rng.choice(["報道発表", "お知らせ"])
    topic = rng.choice(TOPICS)
    title = f"令和{era}年度{org}{topic}について"
    subjects = rng.sample(SUBJECTS, len(SUBJECTS))
    counts = rng.sample(COUNT_SUBJECTS, len(COUNT_SUBJECTS))
    chart_subjects = rng.sample(SUBJECTS, style.charts)
    date_fact = _date_fact(rng, style, random_date(rng, era), "発表日", f"{kind} {{date}}", 0)
    facts: list[dict] = [date_fact]
    charts: list[dict] = []
    b = PdfWriter(header=f"{kind}（{org}）")
    section = 0
    headings = rng.sample(HEADINGS, len(HEADINGS))
    for p in range(pages):
        b.new_page()
        if p == 0:
            b.line(title, 14.0, "center", gap=22.0)
            b.line(date_fact["sentence"], 10.0, "right", gap=15.0)
            b.line(org, 10.0, "right", gap=26.0)
        blocks: list[tuple[str, str]] = []
        for _ in range(rng.randint(2, 3) if style.two_column else rng.randint(1, 2)):
            section += 1
            heading = f"{section}．{headings[(section - 1) % len(headings)]}"
            if section == 1:
                heading += b.footnote("計数は速報値であり、今後変更されることがある。")
            sentences = _notice_sentences(rng, subjects, counts, b.index, era, style)
            blocks += [("heading", heading), ("paragraph", "".join(s for s, _ in sentences))]
            facts += [f for _, fs in sentences for f in fs]
        if style.two_column:
            b.columns(blocks)
            b.y += 8.0
        else:
            for block_kind, text in blocks:
                if block_kind == "heading":
                    b.line(text, 11.5, gap=20.0)
                else:
                    b.paragraph(text)
                    b.y += 8.0
        for k in range(p, style.charts, pages):
            subject = chart_subjects[k]
            last, unit, _ = random_amount(rng)
            points = _series(rng, era, last, unit)
            chart_kind = rng.choice(["bar", "line"])
            charts.append(
                draw_chart(
                    b,
                    chart_kind,
                    "vertical",
                    f"{subject}の推移",
                    unit,
                    points,
                    f"出典：{org}調べ。",
                )
            )
            b.y += 12.0
        if p == pages - 1:
            if not b.room(48.0):
                b.new_page()
            b.y += 12.0
            b.line("（問い合わせ先）", 10.0)
            b.line(f"{org}総務課 内線{rng.randint(1000, 9999)}", 10.0)
    if style.scan:
        b.scan(rng)
    data, rotations = b.finish({"title": title, "author": org, "subject": kind})
    truth = {
        "title": title,
        "unit": None,
        "pages": b.index + 1,
        "tables": [],
        "facts": facts,
        "charts": charts,
        "page_info": b.page_info(rotations),
    }
    return truth, data
