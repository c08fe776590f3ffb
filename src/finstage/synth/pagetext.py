"""Reading structure out of a page's text layer: title, unit, tables, and sentence facts.

The grounded teacher may only say what the text layer supports, so this module is its eyes.
The text layer is reading-order lines whose words are joined by single spaces; a table row
reads ``歳出合計 1,234,567 1,200,000 △34,567`` (label, then number cells, △/▲ meaning minus),
the unit comes from a header such as ``（単位：百万円）``, and notices carry facts such as
``歳出総額は、前年度比3.2%増の1,234億円となった。``. Every parsed item keeps the index of the
line it came from (0-based, into ``page_lines(text)``) so questions can cite their evidence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

# A number cell: optional minus sign (△ ▲ - − －), digits with optional thousands commas,
# optional decimals, optional percent sign; full-width forms accepted.
_NUM_TOKEN = re.compile(
    r"^(?P<sign>[△▲\-−－]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?(?P<pct>%)?$"
)
# Cells that mean "nothing here" in Japanese tables; they keep column positions but hold no value.
_EMPTY_CELLS = {"-", "－", "―", "—", "‐", "…", "*", "＊", "x", "X", "ｘ", "Ｘ"}
_UNIT = re.compile(r"[（(]\s*単位\s*[:：]\s*(?P<unit>[^）)]+?)\s*[）)]")
_D = r"[0-9０-９]"
_AMOUNT = rf"{_D}{{1,3}}(?:[,，]{_D}{{3}})+(?:[.．]{_D}+)?|{_D}+(?:[.．]{_D}+)?"
_MONEY_UNIT = r"兆円|億円|百万円|千万円|千円|万円|円"
_BASE = r"対前年度比|前年度比|前年同期比|前年比|前期比"
_SUBJECT = r"[^\s、。，,（）()「」]{1,30}?"
# 「Xは、前年度比3.2%増の1,234億円」
_FACT_A = re.compile(
    rf"(?P<subject>{_SUBJECT})(?:は|が)[、，]?[^。、，はが]{{0,20}}?(?P<base>{_BASE})\s?"
    rf"(?P<rate>(?P<pct>{_D}+(?:[.．]{_D}+)?)[%％](?P<dir>増|減))の"
    rf"(?P<amount>(?P<num>{_AMOUNT})(?P<unit>{_MONEY_UNIT}))"
)
# 「Xは1,234億円（前年度比3.2%増）」
_FACT_B = re.compile(
    rf"(?P<subject>{_SUBJECT})(?:は|が)[、，]?(?P<amount>(?P<num>{_AMOUNT})(?P<unit>{_MONEY_UNIT}))"
    rf"\s?[（(](?P<base>{_BASE})\s?(?P<rate>(?P<pct>{_D}+(?:[.．]{_D}+)?)[%％](?P<dir>増|減))[）)]"
)
# 「うち国債費は838億円で、全体の28.2%を占めています」
_SHARE = re.compile(
    rf"(?P<subject>{_SUBJECT})(?:は|が)[、，]?(?P<amount>(?P<num>{_AMOUNT})(?P<unit>{_MONEY_UNIT}))で[、，]?"
    rf"(?P<base>全体)の(?P<rate>(?P<pct>{_D}+(?:[.．]{_D}+)?)[%％])を占め"
)
_CONNECTIVES = ("このうち", "そのうち", "うち", "また", "なお", "さらに", "一方", "他方")
TOTAL_WORDS = ("合計", "総計", "総額", "小計", "計")


def page_lines(text: str) -> list[str]:
    """The page's lines, indexable by the ``line_idx`` values stored in record metadata."""
    return [line.rstrip("\r") for line in (text or "").split("\n")]


def parse_cell(token: str) -> tuple[Decimal, bool] | None:
    """``'△34,567'`` → (Decimal('-34567'), False); ``'2.8%'`` → (Decimal('2.8'), True);
    anything else → None."""
    m = _NUM_TOKEN.match(unicodedata.normalize("NFKC", token))
    if m is None:
        return None
    value = Decimal(m["int"].replace(",", "") + (m["frac"] or ""))
    if m["sign"]:
        value = -value
    return value, bool(m["pct"])


def to_decimal(number: str) -> Decimal:
    """A money amount as written in a sentence (full-width digits and commas allowed)."""
    return Decimal(unicodedata.normalize("NFKC", number).replace(",", ""))


@dataclass(frozen=True)
class Cell:
    raw: str
    value: Decimal | None  # None for placeholder cells such as "－"
    percent: bool = False


@dataclass
class Row:
    line_idx: int
    line: str
    label: str
    cells: list[Cell]

    @property
    def is_total(self) -> bool:
        return any(self.label.endswith(w) or self.label.startswith(w) for w in TOTAL_WORDS)


@dataclass
class Table:
    rows: list[Row]
    columns: list[str]  # one name per cell position
    named_columns: bool  # False when no header line matched and names are generic (1列目…)
    header_idx: int | None
    unit: str | None
    unit_idx: int | None

    @property
    def ncols(self) -> int:
        return len(self.columns)


@dataclass(frozen=True)
class Fact:
    """A sentence stating an amount and either its change against the previous period
    (kind "change": 前年度比3.2%増の1,234億円) or its share of a whole (kind "share":
    838億円で、全体の28.2%を占め)."""

    line_idxs: tuple[int, ...]
    evidence: str  # the line(s) as they appear on the page, joined by "\n"
    subject: str
    amount: str  # raw, e.g. "1,234億円"
    number: Decimal
    unit: str  # "億円"
    rate: str  # raw, e.g. "3.2%増"
    pct: Decimal
    direction: str  # "増" or "減"; "" for a share
    base: str  # "前年度比" …; "全体" for a share
    kind: str = "change"


@dataclass
class PageText:
    lines: list[str]
    title: str | None = None
    title_idx: int | None = None
    unit: str | None = None
    unit_idx: int | None = None
    tables: list[Table] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)


def split_row(line: str) -> tuple[str, list[Cell]] | None:
    """A table row is label words followed by at least one number cell (placeholders allowed)."""
    tokens = line.split()
    if len(tokens) < 2:
        return None
    cells: list[Cell] = []
    i = len(tokens)
    while i > 0:
        tok = tokens[i - 1]
        parsed = parse_cell(tok)
        if parsed is not None:
            cells.append(Cell(tok, parsed[0], parsed[1]))
        elif tok in _EMPTY_CELLS:
            cells.append(Cell(tok, None))
        else:
            break
        i -= 1
    if i == 0 or not any(c.value is not None for c in cells):
        return None
    label = " ".join(tokens[:i])
    if parse_cell(label) is not None:
        return None
    return label, cells[::-1]


def _unit_of(line: str) -> str | None:
    m = _UNIT.search(line)
    return m["unit"].strip() if m else None


def parse_page_text(text: str) -> PageText:
    lines = page_lines(text)
    page = PageText(lines=lines)
    rows: dict[int, Row] = {}
    for idx, line in enumerate(lines):
        unit = _unit_of(line)
        if unit is not None and page.unit is None:
            page.unit, page.unit_idx = unit, idx
        if unit is None:
            split = split_row(line)
            if split is not None:
                rows[idx] = Row(idx, line, split[0], split[1])
    for idx, line in enumerate(lines):
        title = _UNIT.sub("", line).strip()  # a title may share its line with the unit
        if title and idx not in rows:
            page.title, page.title_idx = title, idx
            break
    page.tables = _group_tables(lines, rows)
    page.facts = _find_facts(lines, set(rows))
    return page


def _group_tables(lines: list[str], rows: dict[int, Row]) -> list[Table]:
    groups: list[list[Row]] = []
    for idx in sorted(rows):
        row = rows[idx]
        prev = groups[-1][-1] if groups else None
        if prev is not None and prev.line_idx == idx - 1 and len(prev.cells) == len(row.cells):
            groups[-1].append(row)
        else:
            groups.append([row])
    tables = []
    for group in groups:
        ncols = len(group[0].cells)
        header_idx, columns = None, None
        # the header is the nearest non-empty line above the first row, if its cell count fits
        j = group[0].line_idx - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and j not in rows:
            words = _UNIT.sub("", lines[j]).split()
            if len(words) == ncols + 1:
                header_idx, columns = j, words[1:]
            elif len(words) == ncols and ncols > 1:
                header_idx, columns = j, words
        unit, unit_idx = None, None
        for k in range(group[0].line_idx - 1, -1, -1):
            found = _unit_of(lines[k])
            if found is not None:
                unit, unit_idx = found, k
                break
            if k in rows:  # another table lies in between: its unit is not ours
                break
        tables.append(
            Table(
                rows=group,
                columns=columns or [f"{c + 1}列目" for c in range(ncols)],
                named_columns=columns is not None,
                header_idx=header_idx,
                unit=unit,
                unit_idx=unit_idx,
            )
        )
    return tables


def _find_facts(lines: list[str], row_idxs: set[int]) -> list[Fact]:
    prose = [i for i, line in enumerate(lines) if line.strip() and i not in row_idxs]
    longest = max((len(lines[i]) for i in prose), default=0)

    def wraps(i: int) -> bool:
        """Line i is a full-width prose line cut mid-sentence, continued on line i + 1."""
        line = lines[i].rstrip()
        return i + 1 in prose and not line.endswith("。") and len(line) >= 0.8 * longest

    candidates: list[tuple[tuple[int, ...], str]] = [((i,), lines[i]) for i in prose]
    candidates += [((i, i + 1), lines[i] + lines[i + 1]) for i in prose if wraps(i)]
    found: dict[tuple[str, str], Fact] = {}
    for idxs, text in candidates:
        for pattern in (_FACT_A, _FACT_B, _SHARE):
            for m in pattern.finditer(text):
                if len(idxs) == 2 and (
                    m.end() <= len(lines[idxs[0]]) or m.start() >= len(lines[idxs[0]])
                ):
                    continue  # lies on one line alone: found there
                subject = m["subject"]
                for word in _CONNECTIVES:
                    if subject.startswith(word) and len(subject) > len(word):
                        subject = subject[len(word) :]
                        break
                key = (m["amount"], m["rate"])
                if key in found and len(found[key].subject) >= len(subject):
                    continue  # keep the longest subject: a wrapped line may have cut it
                share = pattern is _SHARE
                found[key] = Fact(
                    line_idxs=idxs,
                    evidence="\n".join(lines[i] for i in idxs),
                    subject=subject,
                    amount=m["amount"],
                    number=to_decimal(m["num"]),
                    unit=m["unit"],
                    rate=m["rate"],
                    pct=to_decimal(m["pct"]),
                    direction="" if share else m["dir"],
                    base=m["base"],
                    kind="share" if share else "change",
                )
    return sorted(found.values(), key=lambda f: (f.line_idxs, f.amount))
