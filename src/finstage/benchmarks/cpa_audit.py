"""pfnet japanese-lm-fin-harness `cpa_audit`: auditing questions from the CPA exam, answered by
picking the right combination of statements.

Raw schema: pfnet's ``CPA_AUDIT.xlsx``, first sheet: a first column holding the exam session
(``R5_2``; pandas' index_col=0, shared by many items), then ``key, question, ア…カ, 1…6, a_no,
abnormal_flg``. openpyxl reads the option headers as floats (``1.0``…``6.0``) and the sheet is
taller than its data (the real one has 1,000 rows, the last 590 empty), so the reader takes
``1``/``1.0`` headers alike and skips empty rows; rows with ``abnormal_flg == 1`` are dropped,
as upstream does. Item ids are the session and the sheet row (``R5_2:row14``), unique where the
session alone is not. Normalised docs are the pfnet exams' ``{"id", "prompt", "choices",
"gold"}``, the six combinations lettered A〜F. The stand-in is as messy as the real file (float
headers, empty rows to 1,000) and as long: four statements ア〜エ per item whose prompts exceed
the embedded 512-token window, six two-statement combinations, plus ``n_abnormal`` flagged rows
every loader must drop.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded by the functions that use it: importing this module stays light
    pass

from finstage.benchmarks import limits
from finstage.benchmarks.benchmark import Benchmark, TaskSettings
from finstage.benchmarks.lmeval import Doc, Scorer, TextTask
from finstage.benchmarks.pfnet_exams import SCORER, SCORES, choice_task, pfnet_prompt
from finstage.benchmarks.rawfile import field, unique_ids
from finstage.benchmarks.standin import StandIns, draw_unique, untargeted
from finstage.benchmarks.transport import RawLayout, Row, SourceError, SourceSpec, load_rows
from finstage.config import require

DESCRIPTION = (
    "以下の問題の答えとして適切な記号の組み合わせを選択肢から選んでアルファベットで"
    "答えなさい。\n\n\n"
)
STATEMENT_COLUMNS = ("ア", "イ", "ウ", "エ", "オ", "カ")


@dataclass
class CpaConfig:
    n_items: int
    n_abnormal: int  # extra rows with abnormal_flg = 1 (the real file has 10) loaders drop

    def check(self, where: str) -> None:
        require(self.n_items >= 1, f"{where}.n_items", f"must be >= 1, got {self.n_items}")
        require(self.n_abnormal >= 0, f"{where}.n_abnormal", f"must be >= 0, got {self.n_abnormal}")


# ---------------------------------------------------------------- stand-in


# fmt: off
AUDIT_STATEMENTS = (  # (lead, true ending, false ending) on auditing standards
    ("財務諸表監査の全過程を通じて監査人に求められる基本的な姿勢に関して、",
     "監査人は、職業的専門家としての懐疑心を保持して監査を計画し実施しなければならない。",
     "監査人は、経営者が誠実であると判断した場合には、職業的懐疑心を保持する必要はない。"),
    ("監査基準が採用しているリスク・アプローチに基づく監査の考え方によれば、",
     "監査リスクは、重要な虚偽表示リスクと発見リスクによって構成される。",
     "監査リスクは、重要な虚偽表示リスクのみによって決まり、発見リスクとは関係しない。"),
    ("リスク評価手続の結果を踏まえてリスク対応手続を立案する場面において、",
     "重要な虚偽表示リスクが高いと評価した場合、監査人は発見リスクを低く抑える必要がある。",
     "重要な虚偽表示リスクが高いと評価した場合、監査人は実証手続を縮小することができる。"),
    ("監査の品質管理と、実施した監査の事後的な検証可能性を確保する観点から、",
     "監査人は、実施した監査手続及び入手した監査証拠を監査調書として適時に記録する。",
     "監査調書は、監査報告書の提出後にまとめて作成すれば足りる。"),
    ("監査報告書において表明される監査意見の類型とその表明要件に関して、",
     "限定付適正意見は、除外事項の影響が重要であるが広範ではない場合に表明される。",
     "限定付適正意見は、除外事項の影響が重要かつ財務諸表全体に広範な場合に表明される。"),
    ("重要な監査手続が実施できず監査範囲に制約が生じた場合の意見表明に関して、",
     "意見不表明は、重要な監査手続を実施できず、その影響が広範な場合に選択される。",
     "意見不表明は、財務諸表に重要な虚偽表示が発見された場合に必ず選択される。"),
    ("経営者が継続企業を前提として財務諸表を作成している場合の監査人の対応として、",
     "監査人は、継続企業の前提に重要な疑義を生じさせる事象又は状況の有無を検討する。",
     "継続企業の前提の評価は経営者の責任であり、監査人が検討する必要はない。"),
    ("監査人が十分かつ適切な監査証拠を入手するために用いる監査手続の種類に関して、",
     "確認は、監査人が第三者から文書による回答を直接入手する監査手続である。",
     "確認は、監査人が被監査会社の担当者から口頭で説明を受ける監査手続である。"),
    ("監査の最終段階において経営者から入手する書面による陳述に関して、",
     "監査人は、経営者から経営者確認書を入手しなければならない。",
     "経営者確認書を入手すれば、他の監査手続の実施を省略することができる。"),
    ("内部統制への依拠を予定して監査計画を立案した場合に実施する手続に関して、",
     "内部統制の運用評価手続は、内部統制が有効に運用されているかを確かめる手続である。",
     "内部統制の運用評価手続は、勘定残高の金額の妥当性を直接確かめる手続である。"),
    ("財務諸表全体に対する重要性の基準値の決定とその適用に関して、",
     "監査上の重要性は、監査計画の策定時と監査意見の形成時の両方で考慮される。",
     "監査上の重要性は、監査計画の策定時にのみ考慮され、意見形成時には考慮されない。"),
    ("不正による重要な虚偽表示のリスクへの監査人の対応に関して、",
     "監査人は、不正による重要な虚偽表示のリスクを識別し評価しなければならない。",
     "不正の発見は経営者の責任であるため、監査人は不正リスクを評価する必要はない。"),
)
# fmt: on
QUESTION_LEAD = (
    "次の記述は、公認会計士である監査人が、金融商品取引法に基づき上場会社の財務諸表監査を"
    "実施する場合について述べたものである。"
)
CPA_COMBINATIONS = ("アイ", "アウ", "アエ", "イウ", "イエ", "ウエ")
OPTION_HEADERS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)  # openpyxl reads the real file's as floats
CPA_HEADER = [None, "key", "question", *STATEMENT_COLUMNS, *OPTION_HEADERS, "a_no", "abnormal_flg"]
SHEET_ROWS = 1000  # the real sheet's height: rows after the last item are empty, not absent


def audit_statement(statement: tuple[str, str, str], true: bool) -> str:
    """One statement ア〜エ: its lead, then the true or the false ending."""
    lead, right, wrong = statement
    return lead + (right if true else wrong)


def _cpa_item(rng: random.Random) -> tuple[str, dict]:
    statements = rng.sample(AUDIT_STATEMENTS, 4)
    a_no = rng.randrange(6) + 1
    picked = CPA_COMBINATIONS[a_no - 1]
    want_true = rng.random() < 0.5  # the picked two are the true ones, else the false ones
    marks = "アイウエ"
    lines = [
        audit_statement(st, (m in picked) == want_true)
        for m, st in zip(marks, statements, strict=True)
    ]
    kind = "正しい" if want_true else "誤っている"
    question = (
        f"{QUESTION_LEAD}監査に関する次のア〜エの記述のうち、{kind}ものの組合せとして"
        "最も適切な番号を一つ選びなさい。"
    )
    row = {
        "session": f"R{rng.randint(1, 5)}_{rng.randint(1, 2)}",  # the first column: exam session
        "question": question,
        **dict(zip(marks, lines, strict=True)),
        **{str(i + 1): c for i, c in enumerate(CPA_COMBINATIONS)},
        "a_no": a_no,
    }
    return question + "\n" + "\n".join(lines), row


def stand_in_rows(cfg: CpaConfig, out: StandIns) -> tuple[list[dict], int]:
    """Valid rows plus `n_abnormal` flagged ones at seeded positions, grouped by session as the
    real sheet is; `key` numbers the questions within their session."""
    rng = random.Random(f"finstage-bench:cpa_audit:{out.seed}")
    total = cfg.n_items + cfg.n_abnormal
    rows, dropped = draw_unique([None] * total, untargeted(_cpa_item), rng, out, "cpa_audit")
    flagged = set(rng.sample(range(total), cfg.n_abnormal))
    rows = [{**r, "abnormal_flg": int(i in flagged)} for i, r in enumerate(rows)]
    rows.sort(key=lambda r: r["session"])  # stable: draw order within a session
    numbered: dict[str, int] = {}
    for r in rows:
        numbered[r["session"]] = numbered.get(r["session"], 0) + 1
        r["key"] = numbered[r["session"]]
    return rows, dropped


def workbook(rows: list[dict]) -> bytes:
    """The workbook as the real one reads: option headers 1.0…6.0 (floats), the items, then
    empty rows up to `SHEET_ROWS`; pinned timestamps, so the same rows give the same bytes."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CPA_HEADER)
    for r in rows:
        cells = [r.get(str(int(h)) if isinstance(h, float) else h) for h in CPA_HEADER[1:]]
        sheet.append([r["session"], *cells])
    # Formatted but empty cells, as a sheet edited in Excel keeps below its data: every reader
    # (openpyxl in either mode, pandas) sees these rows, all None.
    for row in range(len(rows) + 2, SHEET_ROWS + 1):
        for column in range(1, len(CPA_HEADER) + 1):
            sheet.cell(row=row, column=column).number_format = "@"
    buffer = io.BytesIO()
    book.save(buffer)
    return _pin_zip(buffer.getvalue())


PROPS_TIME = rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*"
# openpyxl writes 1.0 as <v>1</v>, which reads back as an int: spell the header floats out
HEADER_FLOAT = rb'(<c r="[A-Z]+1" t="n"><v>)([1-6])(</v>)'


def _pin_zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            blob = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                blob = re.sub(PROPS_TIME, rb"\g<1>2000-01-01T00:00:00Z", blob)
            if info.filename.startswith("xl/worksheets/"):
                blob = re.sub(HEADER_FLOAT, rb"\g<1>\g<2>.0\g<3>", blob)
            pinned = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            dst.writestr(pinned, blob, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# ---------------------------------------------------------------- raw schema

REQUIRED = ("question", "a_no", "abnormal_flg", "1", "2", "3", "4", "5", "6")
_INTEGRAL = re.compile(r"([0-9]+)\.0*")


def header_key(cell: Any) -> str:
    """A header cell as a column name: option headers read as 1, 1.0 or '1.0' are all '1'."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    text = str(cell).strip()
    integral = _INTEGRAL.fullmatch(text)
    return integral.group(1) if integral else text


def _bounded_cells(path: Path) -> list[tuple[Any, ...]]:
    """The first sheet's cell values, within `limits`: the workbook's parts are sized before
    openpyxl opens it, and a sheet declaring more rows or columns than the limits (openpyxl
    pads every row to the declared width) fails before any row is built."""
    import openpyxl

    limits.check_file(path)
    try:
        with zipfile.ZipFile(path) as archive:  # an .xlsx is a zip of XML parts
            limits.check_archive(archive, path, limits.MAX_SHEET_BYTES)
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except SourceError:
        raise
    except Exception as err:  # openpyxl raises several unrelated types for a non-xlsx file
        raise SourceError(f"{path}: not a readable .xlsx workbook ({err})") from err
    try:
        sheet = book.worksheets[0]
        columns, rows = sheet.max_column or 0, sheet.max_row or 0
        if columns > limits.MAX_COLUMNS:
            raise SourceError(
                f"{path}: the first sheet declares {columns} columns, over the limit of "
                f"{limits.MAX_COLUMNS} columns"
            )
        if rows > limits.MAX_ROWS:
            raise SourceError(
                f"{path}: the first sheet declares {rows} rows, over the limit of "
                f"{limits.MAX_ROWS} rows"
            )
        values = []
        for cells in sheet.iter_rows(max_col=columns or limits.MAX_COLUMNS, values_only=True):
            values.append(cells)
            limits.check_rows(path, len(values))
        return values
    finally:
        book.close()


def _xlsx_rows(path: Path) -> list[Row]:
    """Rows keyed by header name, fully empty rows skipped; the first column (the exam session
    in the real file, pandas' index_col=0) is kept as ``__index__``. Each row's `where` names
    its sheet row, from which item ids are made."""
    values = _bounded_cells(path)
    if not values:
        raise SourceError(f"{path}: the first worksheet is empty; expected a header row")
    header = [header_key(h) for h in values[0]]
    missing = [c for c in REQUIRED if c not in header[1:]]
    if missing:
        raise SourceError(
            f"{path}: header row has no column {missing} (option columns may read as 1 or 1.0); "
            f"found {[h for h in header if h]}"
        )
    rows: list[Row] = []
    for n, cells in enumerate(values[1:], 2):
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        row = {h: v for h, v in zip(header[1:], cells[1:], strict=False) if h}
        row["__index__"] = cells[0] if cells else None
        row["__row__"] = n
        rows.append((f"{path} row {n}", row))
    return rows


_LAYOUT = RawLayout(read=_xlsx_rows, folder_files=lambda spec: ["CPA_AUDIT.xlsx"])
_CELL = (str, int, float, type(None))


def _cell(value: Any) -> str:
    """A cell as pandas' astype(str) renders it: an empty cell reads as NaN, i.e. 'nan'."""
    return "nan" if value is None else str(value)


def item_id(session: Any, sheet_row: Any, n: int) -> str:
    """A stable, unique item id: the first column (the exam session, which many items share)
    and the item's sheet row; ``row<n>`` alone when the first column is empty."""
    where = f"row{sheet_row if sheet_row is not None else n}"
    text = "" if session is None else str(session).strip()
    return f"{text}:{where}" if text else where


def _docs(rows: list[Row]) -> list[Doc]:
    docs = []
    for n, (where, raw) in enumerate(rows):
        row = {str(k): v for k, v in raw.items()}
        question = _cell(field(row, where, "question", _CELL))
        if question in ("", "nan"):
            continue
        if field(row, where, "abnormal_flg", (int, float, str, type(None))) in (1, "1"):
            continue
        statements = [(s, _cell(row.get(s))) for s in STATEMENT_COLUMNS]
        context = "\n".join(f"{s}: {t}" for s, t in statements if t not in ("", "nan"))
        texts = [_cell(field(row, where, str(i), _CELL)) for i in range(1, 7)]
        a_no = field(row, where, "a_no", (int, float))
        if a_no not in range(1, 7):
            raise SourceError(f"{where}: column 'a_no' = {a_no!r}; expected 1..6")
        listed = [f"{chr(i + 65)}: {t}" for i, t in enumerate(texts)]
        docs.append(
            {
                "id": item_id(row.get("__index__", row.get("id")), row.get("__row__"), n),
                "prompt": pfnet_prompt(DESCRIPTION, question, context, listed),
                "choices": [chr(i + 65) for i in range(6)],
                "gold": int(a_no) - 1,
            }
        )
    return unique_ids(docs)


@dataclass(frozen=True, kw_only=True)
class CpaAudit(Benchmark):
    def write_stand_in(self, sizes: CpaConfig, out: StandIns) -> None:
        rows, dropped = stand_in_rows(sizes, out)
        abnormal = sum(r["abnormal_flg"] for r in rows)
        entry = out.entry(
            self.name,
            "pfnet japanese-lm-fin-harness CPA_AUDIT.xlsx",
            {"path": "cpa_audit/CPA_AUDIT.xlsx"},
            items=len(rows) - abnormal,
            abnormal_rows=abnormal,
            dropped_as_in_training=dropped,
        )
        out.file(entry, "cpa_audit/CPA_AUDIT.xlsx", workbook(rows))

    def load_docs(self, spec: SourceSpec, settings: TaskSettings | None = None) -> list[Doc]:
        return _docs(load_rows(self.name, spec, _LAYOUT))

    def text_tasks(self, docs: list[Doc], settings: TaskSettings) -> list[TextTask]:
        return [choice_task(self.name, docs)]

    def scorers(self) -> dict[str, Scorer]:
        return {self.name: SCORER}

    def item_text(self, doc: Doc) -> str:
        return doc["prompt"]


CPA_AUDIT = CpaAudit(
    name="cpa_audit",
    label="CPA audit",
    scores=tuple(SCORES),
    stand_in_params="cpa_audit",
    harness=True,
)
