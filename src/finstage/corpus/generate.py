"""A small corpus of Japanese government-style financial PDFs whose content is known exactly.

The embedded pipeline cannot crawl ministries, and even a real crawl gives no ground truth to
score OCR or question answering against. So this module writes PDFs that look like the
documents a real crawl returns — 予算 tables (当初予算額/補正後予算額/増減額), 決算 tables
(予算額/決算額/差額, negatives written with △), and 報道発表/お知らせ notices whose sentences
carry figures such as ``前年度比3.2%増の1,234億円`` — and records every number in
``truth.jsonl``. Tables may span pages (the caption repeats with （続き）).

Outputs under ``out``:

- ``pdfs/<doc_id>.pdf``: one file per document, doc ids like ``budget-003``.
- ``truth.jsonl``: one JSON object per valid document::

    {"doc_id", "file" (relative to out), "sha256", "bytes", "layout" (budget|settlement|notice),
     "title", "org", "fiscal_year" ("令和6年度"), "fiscal_year_ad" (2024), "unit" ("百万円" or
     null), "pages" (count),
     "tables": [{"caption", "columns" (header words, label column first), "unit", "page" (first
                 0-based page), "pages", "rows": [{"label", "values": [int, ...], "page"}]}],
     "facts": [{"sentence", "label", "value" (int or float, negative for △/減), "unit"
                ("百万円"|"億円"|"%"|"件"), "text" (the figure as printed), "page"}]}

  Page numbers are 0-based, like ``page_index`` in the page store. The last table row is the
  total (label ending in 合計) and equals the sum of the rows above it.
- ``corrupt.jsonl``: the deliberately broken files (``corrupt: N``) — alternately a truncated PDF
  and an HTML error page saved as ``.pdf`` — so the fetch stage's quarantine is exercised.

Files stay small: text is written with PyMuPDF's built-in fonts, which are referenced by name and
never embedded — ``helv`` for ASCII runs and the CJK font ``japan`` (Adobe-Japan1, UniJIS-UTF16-H)
for everything else. ``insert_htmlbox`` is deliberately avoided: it embeds a full CJK font on every
page (one 3,000-page file reached 10.9 GB). A page is 1–3 KB. The same params give byte-identical
files (fixed metadata dates, no random /ID, one ``random.Random`` per document seeded from the
corpus seed and the document number).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pymupdf

from finstage.config import require

LAYOUTS = ("budget", "settlement", "notice")
Layout = Literal["budget", "settlement", "notice"]


@dataclass
class CorpusConfig:
    """``corpus:`` in params.yaml."""

    seed: int = 0
    documents: int = 24  # valid documents, layouts assigned round-robin
    layouts: list[Layout] = field(default_factory=lambda: list(LAYOUTS))
    min_pages: int = 1
    max_pages: int = 3
    rows_per_page: int = 12  # table rows on one page; longer tables continue on the next
    corrupt: int = 2  # extra broken files (truncated PDF, HTML saved as .pdf), alternating

    def check(self, where: str) -> None:
        require(
            self.documents >= 1, f"{where}.documents", f"must be at least 1, got {self.documents}"
        )
        require(
            bool(self.layouts), f"{where}.layouts", f"must name at least one of {list(LAYOUTS)}"
        )
        require(
            len(set(self.layouts)) == len(self.layouts),
            f"{where}.layouts",
            f"lists a layout twice: {self.layouts}",
        )
        require(
            self.min_pages >= 1, f"{where}.min_pages", f"must be at least 1, got {self.min_pages}"
        )
        require(
            self.min_pages <= self.max_pages <= 20,
            f"{where}.max_pages",
            f"must be between {where}.min_pages ({self.min_pages}) and 20, got {self.max_pages}",
        )
        require(
            3 <= self.rows_per_page <= 28,
            f"{where}.rows_per_page",
            f"must be between 3 and 28 (what fits on an A4 page), got {self.rows_per_page}",
        )
        require(self.corrupt >= 0, f"{where}.corrupt", f"must be 0 or more, got {self.corrupt}")


# ---------------------------------------------------------------------------------------------
# text placement with non-embedded fonts

LATIN, CJK = "helv", "japan"
PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
LEFT, RIGHT = 56.0, PAGE_W - 56.0
PDF_DATE = "D:20250401000000+09'00'"

# figures stay whole when a paragraph wraps, so "1,234億円" or "3.2%増" is never split
_TOKEN = re.compile(
    r"△?\d[\d,]*(?:\.\d+)?(?:%[増減]?|兆円|億円|百万円|千円|円|件|人)?|[A-Za-z]+|.", re.S
)
_NO_LINE_START = set("、。，．）」』")


def _runs(text: str) -> list[tuple[str, str]]:
    """Split text into (font, run): ASCII in Helvetica, the rest in the CJK font."""
    return [
        (LATIN if latin else CJK, "".join(group))
        for latin, group in itertools.groupby(text, key=lambda ch: ch < "\x80")
    ]


def text_width(text: str, size: float) -> float:
    return sum(
        pymupdf.get_text_length(run, fontname=font, fontsize=size) for font, run in _runs(text)
    )


def put(
    shape: pymupdf.Shape, x: float, y: float, text: str, size: float, align: str = "left"
) -> None:
    """Write ``text`` with its baseline at ``y``; ``align`` is relative to ``x``."""
    width = text_width(text, size)
    if align == "right":
        x -= width
    elif align == "center":
        x -= width / 2
    for font, run in _runs(text):
        shape.insert_text((x, y), run, fontname=font, fontsize=size)
        x += pymupdf.get_text_length(run, fontname=font, fontsize=size)


def wrap(text: str, width: float, size: float, indent: float = 0.0) -> list[str]:
    """Greedy line breaking for Japanese prose (no spaces); figures are never split."""
    lines: list[str] = []
    current, used = "", indent
    for token in _TOKEN.findall(text):
        w = text_width(token, size)
        if current and used + w > width and token not in _NO_LINE_START:
            lines.append(current)
            current, used = "", 0.0
        current += token
        used += w
    if current:
        lines.append(current)
    return lines


def fmt_int(value: int) -> str:
    """Japanese government style: thousands commas, △ for negatives."""
    return f"△{-value:,}" if value < 0 else f"{value:,}"


# ---------------------------------------------------------------------------------------------
# vocabulary (all organisations are fictional)

_PLACES = [
    "青葉",
    "若葉",
    "東雲",
    "朝霧",
    "星野",
    "白波",
    "緑川",
    "桜台",
    "紅葉",
    "汐見",
    "高嶺",
    "月見",
]
_BUREAUS = ["財務局", "金融監督局", "経済財政局", "主計局", "税務局", "財政企画局"]
_REVENUE = [
    "所得税",
    "法人税",
    "消費税",
    "相続税",
    "揮発油税",
    "酒税",
    "たばこ税",
    "関税",
    "自動車重量税",
    "印紙収入",
    "官業益金及官業収入",
    "政府資産整理収入",
    "雑収入",
    "公債金",
    "前年度剰余金受入",
    "手数料収入",
    "貸付金償還金",
    "財産売払収入",
    "寄附金収入",
    "納付金",
    "国庫補助金受入",
    "使用料収入",
    "利子収入",
    "配当金収入",
    "繰入金",
    "諸収入",
    "地方譲与税",
    "電源開発促進税",
    "石油石炭税",
    "航空機燃料税",
    "登録免許税",
    "地価税",
    "特別法人事業税",
    "森林環境税",
]
_EXPENDITURE = [
    "社会保障関係費",
    "文教及び科学振興費",
    "国債費",
    "地方交付税交付金",
    "防衛関係費",
    "公共事業関係費",
    "経済協力費",
    "中小企業対策費",
    "エネルギー対策費",
    "食料安定供給関係費",
    "恩給関係費",
    "予備費",
    "人件費",
    "庁舎等施設費",
    "情報システム経費",
    "調査研究費",
    "広報啓発費",
    "国際協力費",
    "地域振興費",
    "職員研修費",
    "統計調査費",
    "金融監督費",
    "税務行政費",
    "国有財産管理費",
    "災害復旧費",
    "環境対策費",
    "子ども・子育て支援費",
    "デジタル化推進費",
    "科学技術振興費",
    "住宅対策費",
    "観光振興費",
    "農林水産業振興費",
    "雇用対策費",
    "保健衛生費",
    "消防防災費",
]
_QUALIFIERS = ["一般分", "特別分", "復興分", "経常分", "臨時分"]
_SUBJECTS = [
    "一般会計歳出総額",
    "歳入総額",
    "税収",
    "公債発行額",
    "社会保障関係費",
    "地方交付税交付金",
    "公共事業関係費",
    "防衛関係費",
    "国債費",
    "貸出残高",
    "預金残高",
    "手数料収入",
    "中小企業向け融資額",
    "補助金交付額",
    "基金残高",
    "国庫納付金",
    "特別会計繰入額",
    "保険料収入",
    "設備投資額",
    "企業向け貸出額",
]
_COUNT_SUBJECTS = ["立入検査", "補助金交付決定", "苦情相談", "登録申請", "行政処分", "融資承認"]
_TOPICS = ["予算の概要", "決算の概要", "金融機関の貸出動向", "補助金の交付状況", "税収の動向"]
_HEADINGS = ["概要", "主な内容", "前年度との比較", "今後の見通し", "内訳", "背景", "主な増減要因"]
_PLAIN = [
    "詳細については、別添資料をご参照ください。",
    "引き続き、効率的かつ適正な予算執行に努めてまいります。",
    "なお、計数はそれぞれ四捨五入しているため、合計と一致しない場合があります。",
    "本件に関する今後の予定は、決まり次第お知らせします。",
]


def _labels(pool: list[str], n: int, rng: random.Random) -> list[str]:
    """n distinct row labels: the pool shuffled, then qualified variants, then numbered ones."""
    labels = rng.sample(pool, len(pool))
    labels += [f"{p}（{q}）" for q in _QUALIFIERS for p in pool]
    labels += [f"その他経費（その{i}）" for i in range(1, max(0, n - len(labels)) + 1)]
    return labels[:n]


def _magnitude(rng: random.Random, low: float = 3.0, high: float = 6.5) -> int:
    return int(round(10 ** rng.uniform(low, high)))


def _pct(rng: random.Random) -> float:
    return round(rng.uniform(0.1, 12.0), 1)


# ---------------------------------------------------------------------------------------------
# page builder


class _Builder:
    """Lays out one document page by page and records ground truth as it writes."""

    BODY = 10.5
    LEADING = 17.0
    ROW_H = 18.0
    TABLE_SIZE = 9.5
    COL_EDGES = (LEFT, LEFT + 183.0, LEFT + 283.0, LEFT + 383.0, RIGHT)

    def __init__(self) -> None:
        self.doc = pymupdf.open()
        self.page: pymupdf.Page | None = None
        self.shape: pymupdf.Shape | None = None
        self.y = 0.0
        self.index = -1

    def new_page(self) -> None:
        self.flush()
        self.page = self.doc.new_page(width=PAGE_W, height=PAGE_H)
        self.shape = self.page.new_shape()
        self.y = 72.0
        self.index += 1

    def flush(self) -> None:
        if self.shape is not None:
            self.shape.commit()
            self.shape = None

    def line(
        self, text: str, size: float | None = None, align: str = "left", gap: float | None = None
    ) -> None:
        size = size or self.BODY
        x = {"left": LEFT, "right": RIGHT, "center": PAGE_W / 2}[align]
        put(self.shape, x, self.y, text, size, align)
        self.y += gap if gap is not None else self.LEADING

    def paragraph(self, text: str) -> None:
        indent = self.BODY
        for i, line in enumerate(wrap(text, RIGHT - LEFT, self.BODY, indent)):
            put(self.shape, LEFT + (indent if i == 0 else 0.0), self.y, line, self.BODY)
            self.y += self.LEADING
        self.y += 4.0

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A ruled grid; every row's cells share one baseline so text extraction rebuilds rows."""
        edges = self.COL_EDGES
        top = self.y
        ys = [top + i * self.ROW_H for i in range(len(rows) + 2)]
        for y in ys:
            self.shape.draw_line((edges[0], y), (edges[-1], y))
        for x in edges:
            self.shape.draw_line((x, ys[0]), (x, ys[-1]))
        self.shape.finish(width=0.6, color=(0, 0, 0))
        base = self.ROW_H - 5.5
        for i, cell in enumerate(header):
            put(
                self.shape,
                (edges[i] + edges[i + 1]) / 2,
                ys[0] + base,
                cell,
                self.TABLE_SIZE,
                "center",
            )
        for r, row in enumerate(rows, start=1):
            put(self.shape, edges[0] + 6.0, ys[r] + base, row[0], self.TABLE_SIZE)
            for c, cell in enumerate(row[1:], start=1):
                put(self.shape, edges[c + 1] - 6.0, ys[r] + base, cell, self.TABLE_SIZE, "right")
        self.y = ys[-1] + 24.0

    def finish(self, metadata: dict[str, str]) -> bytes:
        self.flush()
        total = self.doc.page_count
        for page in self.doc:
            shape = page.new_shape()
            put(shape, PAGE_W / 2, PAGE_H - 36.0, f"- {page.number + 1} -", 9.0, "center")
            shape.commit()
        self.doc.set_metadata(
            {
                **metadata,
                "creator": "finstage corpus generator",
                "producer": "finstage",
                "creationDate": PDF_DATE,
                "modDate": PDF_DATE,
            }
        )
        data = self.doc.tobytes(garbage=4, deflate=True, no_new_id=True)
        self.doc.close()
        assert total >= 1
        return data


# ---------------------------------------------------------------------------------------------
# layouts


def _table_doc(
    layout: str, rng: random.Random, pages: int, cfg: CorpusConfig, era: int, org: str
) -> tuple[dict, bytes]:
    side = rng.choice(["歳入", "歳出"])
    fy = f"令和{era}年度"
    rpp = cfg.rows_per_page
    n_rows = max(3, rng.randint((pages - 1) * rpp + 1, pages * rpp))
    labels = _labels(_REVENUE if side == "歳入" else _EXPENDITURE, n_rows - 1, rng)
    values: list[list[int]] = []
    for _ in labels:
        first = _magnitude(rng)
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

    pct, up = _pct(rng), rng.random() < 0.65
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

    b = _Builder()
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
            amount, pct, up = rng.randint(12, 99_999), _pct(rng), rng.random() < 0.6
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
            s, facts = rng.choice(_PLAIN), []
        out.append((s, facts))
    if rng.random() < 0.4:
        out.append((rng.choice(_PLAIN), []))
    return out


def _notice_doc(rng: random.Random, pages: int, era: int, org: str) -> tuple[dict, bytes]:
    kind = rng.choice(["報道発表", "お知らせ"])
    topic = rng.choice(_TOPICS)
    title = f"令和{era}年度{org}{topic}について"
    date = f"令和{era}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"
    subjects = rng.sample(_SUBJECTS, len(_SUBJECTS))
    counts = rng.sample(_COUNT_SUBJECTS, len(_COUNT_SUBJECTS))
    facts: list[dict] = []
    b = _Builder()
    section = 0
    headings = rng.sample(_HEADINGS, len(_HEADINGS))
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


# ---------------------------------------------------------------------------------------------


def generate_document(cfg: CorpusConfig, number: int) -> tuple[dict[str, Any], bytes]:
    """Document ``number``: its truth record and PDF bytes (independent of the other documents)."""
    rng = random.Random(f"finstage-corpus/{cfg.seed}/{number}")
    layout = cfg.layouts[number % len(cfg.layouts)]
    pages = rng.randint(cfg.min_pages, cfg.max_pages)
    era = rng.randint(2, 7)
    org = rng.choice(_PLACES) + rng.choice(_BUREAUS)
    if layout == "notice":
        truth, data = _notice_doc(rng, pages, era, org)
    else:
        truth, data = _table_doc(layout, rng, pages, cfg, era, org)
    doc_id = f"{layout}-{number:03d}"
    record = {
        "doc_id": doc_id,
        "file": f"pdfs/{doc_id}.pdf",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "layout": layout,
        "title": truth["title"],
        "org": org,
        "fiscal_year": f"令和{era}年度",
        "fiscal_year_ad": 2018 + era,
        "unit": truth["unit"],
        "pages": truth["pages"],
        "tables": truth["tables"],
        "facts": truth["facts"],
    }
    return record, data


_HTML_ERROR = (
    '<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8">'
    "<title>404 Not Found</title></head>\n"
    "<body><h1>お探しのページは見つかりませんでした</h1></body></html>\n"
).encode()


def corrupt_bytes(kind: str, valid_pdf: bytes) -> bytes:
    """A broken file of ``kind``: ``truncated`` (a PDF cut short, no %%EOF) or ``not_pdf``."""
    if kind == "truncated":
        cut = valid_pdf[: max(64, int(len(valid_pdf) * 0.6))]
        assert b"%%EOF" not in cut[-1024:]
        return cut
    if kind == "not_pdf":
        return _HTML_ERROR
    raise ValueError(f"unknown corrupt kind {kind!r}; use 'truncated' or 'not_pdf'")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def generate_corpus(cfg: CorpusConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Write the corpus under ``out`` (see the module docstring); returns a summary."""
    from tqdm import tqdm

    out = Path(out)
    pdf_dir = out / "pdfs"
    if pdf_dir.exists():
        shutil.rmtree(pdf_dir)  # stale files from a larger earlier run would otherwise be fetched
    pdf_dir.mkdir(parents=True)
    truth, pages, total_bytes, first_pdf = [], 0, 0, b""
    for number in tqdm(range(cfg.documents), desc="corpus", unit="doc", disable=not progress):
        record, data = generate_document(cfg, number)
        (out / record["file"]).write_bytes(data)
        truth.append(record)
        pages += record["pages"]
        total_bytes += len(data)
        first_pdf = first_pdf or data
    broken = []
    for j in range(cfg.corrupt):
        kind = ("truncated", "not_pdf")[j % 2]
        data = corrupt_bytes(kind, first_pdf)
        name = f"pdfs/broken-{j:03d}.pdf"
        (out / name).write_bytes(data)
        broken.append(
            {
                "file": name,
                "kind": kind,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    _write_jsonl(out / "truth.jsonl", truth)
    _write_jsonl(out / "corrupt.jsonl", broken)
    return {
        "documents": len(truth),
        "pages": pages,
        "bytes": total_bytes,
        "bytes_per_page": total_bytes / max(pages, 1),
        "corrupt": len(broken),
        "layouts": {name: sum(r["layout"] == name for r in truth) for name in cfg.layouts},
    }


def read_truth(corpus_dir: Path) -> list[dict[str, Any]]:
    """The truth records of a generated corpus, in document order."""
    path = Path(corpus_dir) / "truth.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `dvc repro corpus` first")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
