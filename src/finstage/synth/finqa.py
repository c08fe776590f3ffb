"""Finance QA with computed answers, asked over the page image or over its lines as text.

Questions combine two numbers the page states (a difference, a sum, a change rate, a share, or a
previous-period amount from a rate sentence); the answer is computed with `arith`, rounded as the
question says, and the operands' lines are recorded so `grounding` can recompute it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from finstage.config import require
from finstage.pagestore import Page
from finstage.records import Record, make_record
from finstage.synth import arith
from finstage.synth.pagetext import Fact, PageText, Row, Table
from finstage.synth.tasks import (
    column_phrase,
    page_meta,
    round_robin,
    unique_cells,
    unique_facts,
    user_image,
)

SENTENCE_OPS = ("prev_from_rate", "total_from_share")
_CHANGE_WORDS = ("増減", "差", "比", "率", "%", "％")
_BASE_PERIOD = {
    "対前年度比": "前年度",
    "前年度比": "前年度",
    "前年同期比": "前年同期",
    "前年比": "前年",
    "前期比": "前期",
}


@dataclass
class FinqaConfig:
    per_page: int
    percent_places: int  # percentages: round half-up to this many decimals
    amount_places: int  # amounts computed by division (previous-period amounts)
    text_max_rows: int  # table rows shown in a text-only question
    show_work: bool  # the answer gives the calculation before 答え：

    def check(self, where: str) -> None:
        require(self.per_page >= 0, f"{where}.per_page", f"must be >= 0, got {self.per_page}")
        for name in ("percent_places", "amount_places"):
            value = getattr(self, name)
            require(0 <= value <= 4, f"{where}.{name}", f"must be in [0, 4], got {value}")
        require(
            self.text_max_rows >= 2,
            f"{where}.text_max_rows",
            f"must be >= 2, got {self.text_max_rows}",
        )


def _value_columns(table: Table) -> list[int]:
    """Columns holding amounts (not changes or rates), usable as operands of diff/sum/ratio."""
    cols = []
    for c, name in enumerate(table.columns):
        if table.named_columns and any(w in name for w in _CHANGE_WORDS):
            continue
        if any(r.cells[c].percent for r in table.rows):
            continue
        if _is_difference_column(table, c):
            continue
        cols.append(c)
    return cols


def _is_difference_column(table: Table, c: int) -> bool:
    """Column c equals column a minus column b on every row (an unlabelled 増減 column).
    Only columns to its left count as operands: in (A, B, A−B), B = A − (A−B) too."""
    for a in range(c):
        for b in range(c):
            if a == b:
                continue
            rows = [
                r
                for r in table.rows
                if None not in (r.cells[a].value, r.cells[b].value, r.cells[c].value)
            ]
            if len(rows) >= 2 and all(
                r.cells[c].value == r.cells[a].value - r.cells[b].value for r in rows
            ):
                return True
    return False


@dataclass(frozen=True)
class _Operand:
    line_idx: int
    name: str  # row label or sentence subject
    column: str  # column name, or the quantity in a sentence ("amount", "pct")
    raw: str
    value: Decimal
    kind: str = "cell"  # "cell" (table cell), "amount" or "pct" (parts of a sentence)


@dataclass(frozen=True)
class FinQuestion:
    op: str
    question_visual: str
    question_text: str  # the question as asked after the context text
    context_idxs: tuple[int, ...]  # lines shown as context in the text-only variant
    operands: tuple[_Operand, ...]
    unit: str | None
    places: int
    direction: str | None = None

    def result(self) -> Decimal:
        return arith.compute(self.op, [o.value for o in self.operands], self.direction)

    def answer(self) -> str:
        return arith.format_answer(self.op, self.result(), self.places, self.unit)


def _operand(row: Row, table: Table, c: int) -> _Operand:
    cell = row.cells[c]
    assert cell.value is not None
    return _Operand(row.line_idx, row.label, table.columns[c], cell.raw, cell.value)


def _oriented(table: Table, a: int, b: int, vcols: list[int]) -> tuple[int, int]:
    """Order a column pair the way the table's own change column (増減額, 差額) subtracts them,
    e.g. 補正後予算額 − 当初予算額, 決算額 − 予算額; left to right when there is none."""
    for c in range(table.ncols):
        if c in vcols or any(r.cells[c].percent for r in table.rows):
            continue
        rows = [
            r
            for r in table.rows
            if None not in (r.cells[a].value, r.cells[b].value, r.cells[c].value)
        ]
        if not rows:
            continue
        if all(r.cells[c].value == r.cells[a].value - r.cells[b].value for r in rows):
            return a, b
        if all(r.cells[c].value == r.cells[b].value - r.cells[a].value for r in rows):
            return b, a
    return a, b


def _table_questions(table: Table, cfg: FinqaConfig, rng: random.Random) -> list[FinQuestion]:
    out: list[FinQuestion] = []
    vcols = _value_columns(table)
    unit = table.unit
    unit_note = f"単位（{unit}）を付けて答えてください。" if unit else ""
    rule = arith.rounding_rule(cfg.percent_places)
    ctx_base = tuple(i for i in (table.unit_idx, table.header_idx) if i is not None)
    for i, j in [_oriented(table, a, b, vcols) for a in vcols for b in vcols if a < b]:
        ci, cj = column_phrase(table, i), column_phrase(table, j)
        for row in table.rows:
            if row.cells[i].value is None or row.cells[j].value is None:
                continue
            ops = (_operand(row, table, i), _operand(row, table, j))
            places = arith.result_places(
                "diff", [o.value for o in ops], cfg.percent_places, cfg.amount_places
            )
            q = (
                f"「{row.label}」について、{ci}の値から{cj}の値を差し引くと"
                f"いくらになりますか。{unit_note}"
            )
            out.append(FinQuestion("diff", q, q, (*ctx_base, row.line_idx), ops, unit, places))
            if ops[1].value > 0:
                q = f"「{row.label}」の{cj}に対する{ci}の増減率は何%ですか。{rule}"
                out.append(
                    FinQuestion(
                        "pct_change", q, q, (*ctx_base, row.line_idx), ops, unit, cfg.percent_places
                    )
                )
    plain = [r for r in table.rows if not r.is_total]
    totals = [r for r in table.rows if r.is_total]
    for c in vcols:
        cc = column_phrase(table, c)
        rows = [r for r in plain if r.cells[c].value is not None]
        pairs = [(a, b) for n, a in enumerate(rows) for b in rows[n + 1 :]]
        rng.shuffle(pairs)
        for a, b in pairs[:3]:
            ops = (_operand(a, table, c), _operand(b, table, c))
            places = arith.result_places(
                "sum", [o.value for o in ops], cfg.percent_places, cfg.amount_places
            )
            q = f"{cc}における「{a.label}」と「{b.label}」の合計はいくらですか。{unit_note}"
            out.append(
                FinQuestion("sum", q, q, (*ctx_base, a.line_idx, b.line_idx), ops, unit, places)
            )
        dens = [t for t in totals if (t.cells[c].value or 0) > 0] or [
            r for r in rows if (r.cells[c].value or 0) > 0
        ]
        shares = [(a, d) for a in rows for d in dens if a is not d and (a.cells[c].value or 0) >= 0]
        rng.shuffle(shares)
        for a, d in shares[:2]:
            ops = (_operand(a, table, c), _operand(d, table, c))
            if (
                arith.round_half_up(
                    arith.compute("share", [o.value for o in ops]), cfg.percent_places
                )
                == 0
            ):
                continue  # rounds to 0%: says nothing
            q = f"{cc}において、「{a.label}」は「{d.label}」の何%に当たりますか。{rule}"
            out.append(
                FinQuestion(
                    "share",
                    q,
                    q,
                    (*ctx_base, a.line_idx, d.line_idx),
                    ops,
                    unit,
                    cfg.percent_places,
                )
            )
    return out


def _fact_questions(fact: Fact, cfg: FinqaConfig) -> list[FinQuestion]:
    period = _BASE_PERIOD.get(fact.base, "比較対象の期")
    rule = f"{fact.unit}単位で、" + arith.rounding_rule(cfg.amount_places)
    ops = (
        _Operand(fact.line_idxs[0], fact.subject, "amount", fact.amount, fact.number, "amount"),
        _Operand(fact.line_idxs[0], fact.subject, "pct", fact.rate, fact.pct, "pct"),
    )
    if fact.kind == "share":
        qt = f"「{fact.subject}」が全体に占める割合から、全体の金額はいくらと計算されますか。{rule}"
        qv = "ページの記述によると、" + qt
        return [
            FinQuestion(
                "total_from_share", qv, qt, fact.line_idxs, ops, fact.unit, cfg.amount_places
            )
        ]
    qv = f"ページの記述によると、{period}の「{fact.subject}」はいくらと計算されますか。{rule}"
    qt = f"{period}の「{fact.subject}」はいくらと計算されますか。{rule}"
    return [
        FinQuestion(
            "prev_from_rate",
            qv,
            qt,
            fact.line_idxs,
            ops,
            fact.unit,
            cfg.amount_places,
            fact.direction,
        )
    ]


def finqa_candidates(pt: PageText, cfg: FinqaConfig, rng: random.Random) -> list[FinQuestion]:
    by_op: dict[str, list[FinQuestion]] = {}
    cell_ok = {(t.columns[c], r.line_idx) for t, r, c in unique_cells(pt)}
    for table in pt.tables:
        for q in _table_questions(table, cfg, rng):
            if all((o.column, o.line_idx) in cell_ok for o in q.operands):
                by_op.setdefault(q.op, []).append(q)
    for fact in unique_facts(pt):
        for q in _fact_questions(fact, cfg):
            by_op.setdefault(q.op, []).append(q)
    groups = [by_op[op] for op in arith.OPS if op in by_op]
    for g in groups:
        rng.shuffle(g)
    rng.shuffle(groups)
    return round_robin(groups, sum(len(g) for g in groups))


def _fmt_operand(o: _Operand) -> str:
    return arith.format_number(o.value, arith.decimals_of(o.value))


def explain(q: FinQuestion) -> str:
    """The calculation, written out, ending with the answer line."""
    v = [_fmt_operand(o) for o in q.operands]
    x = q.result()
    approx = arith.format_number(x, q.places + 2)
    if q.op == "diff":
        a, b = q.operands
        work = f"{a.column}の{v[0]} − {b.column}の{v[1]} = {arith.format_number(x, q.places)}"
    elif q.op == "sum":
        work = f"{v[0]} + {v[1]} = {arith.format_number(x, q.places)}"
    elif q.op == "pct_change":
        work = f"({v[0]} − {v[1]}) ÷ {v[1]} × 100 ≒ {approx}"
    elif q.op == "share":
        work = f"{v[0]} ÷ {v[1]} × 100 ≒ {approx}"
    elif q.op == "total_from_share":
        work = f"{v[0]} ÷ {v[1]} × 100 ≒ {approx}"
    else:
        sign = "+" if q.direction == "増" else "−"
        work = f"{v[0]} ÷ (1 {sign} {v[1]} ÷ 100) ≒ {approx}"
    return f"計算：{work}\n答え：{q.answer()}"


def _finqa_record(
    page: Page, pt: PageText, q: FinQuestion, k: int, visual: bool, cfg: FinqaConfig
) -> Record:
    answer = q.answer()
    content = explain(q) if cfg.show_work else answer
    if visual:
        source, images, user = "finqa_visual", [page["page_id"]], user_image(q.question_visual)
        context_idxs: list[int] = []
    else:
        source, images = "finqa_text", []
        context_idxs = _text_context(pt, q, cfg)
        lead = (
            "次の文章をもとに、質問に答えてください。"
            if q.op in SENTENCE_OPS
            else "次の表をもとに、質問に答えてください。"
        )
        # a sentence wrapped over lines is given whole; table lines keep their line breaks
        context = ("" if q.op in SENTENCE_OPS else "\n").join(pt.lines[i] for i in context_idxs)
        user = {"role": "user", "content": f"{lead}\n{context}\n\n質問：{q.question_text}"}
    meta = page_meta(page, q.op) | {
        "op": q.op,
        "direction": q.direction,
        "places": q.places,
        "unit": q.unit,
        "result": str(arith.round_half_up(q.result(), q.places)),
        "operands": [
            {
                "line_idx": o.line_idx,
                "name": o.name,
                "column": o.column,
                "kind": o.kind,
                "raw": o.raw,
                "value": str(o.value),
            }
            for o in q.operands
        ],
        "context_line_idxs": context_idxs,
        "question": q.question_visual if visual else q.question_text,
    }
    return make_record(
        id=f"{source}:{page['page_id']}:{k}",
        source=source,
        images=images,
        messages=[user, {"role": "assistant", "content": content}],
        answer=answer,
        meta=meta,
    )


def _text_context(pt: PageText, q: FinQuestion, cfg: FinqaConfig) -> list[int]:
    """Title, unit, header and the operand rows, plus neighbouring rows up to `text_max_rows`."""
    needed = set(q.context_idxs) | {o.line_idx for o in q.operands}
    if q.op not in SENTENCE_OPS:
        table = next(t for t in pt.tables if any(r.line_idx in needed for r in t.rows))
        rows = [r.line_idx for r in table.rows]
        extra = [i for i in rows if i not in needed]
        budget = cfg.text_max_rows - len([i for i in needed if i in rows])
        needed |= set(extra[: max(0, budget)])
        if pt.title_idx is not None:
            needed.add(pt.title_idx)
    return sorted(needed)


def build_finqa(
    page: Page,
    pt: PageText,
    cfg: FinqaConfig,
    rng_visual: random.Random,
    rng_text: random.Random,
    tasks: tuple[str, ...] = ("finqa_visual", "finqa_text"),
) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for task, rng in (("finqa_visual", rng_visual), ("finqa_text", rng_text)):
        if task not in tasks:
            continue
        questions = finqa_candidates(pt, cfg, rng)[: cfg.per_page]
        out[task] = [
            _finqa_record(page, pt, q, k, task == "finqa_visual", cfg)
            for k, q in enumerate(questions)
        ]
    return out
